"""Forecast metrics and losses, and the Diebold–Mariano test with its Holm adjustment. Pure
functions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import norm
from statsmodels.stats.multitest import multipletests

ArrayLike = npt.ArrayLike


def _pair(
    y_true: ArrayLike, y_pred: ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape or t.size == 0:
        raise ValueError(f"need two non-empty arrays of one shape, got {t.shape} and {p.shape}")
    return t, p


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error of volatility forecasts.

    Examples
    --------
    >>> rmse([0.01, 0.02], [0.01, 0.01])
    0.007071067811865475
    """
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def r2(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Coefficient of determination against the evaluation block's own mean (may be < 0)."""
    t, p = _pair(y_true, y_pred)
    total = float(np.sum((t - t.mean()) ** 2))
    if total == 0.0:
        return float("nan")
    return 1.0 - float(np.sum((t - p) ** 2)) / total


def qlike(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Patton (2011) QLIKE of volatility forecasts, on variances: mean(s/h - ln(s/h) - 1),
    over the days whose realized volatility is positive (see ``qlike_loss``). Zero for a
    perfect forecast; it depends only on the ratio s/h, so calm and turbulent days count alike.

    Examples
    --------
    >>> qlike([0.01, 0.02], [0.01, 0.02])
    0.0
    >>> round(qlike([0.02], [0.01]), 4)  # s/h = 4: 4 - ln 4 - 1
    1.6137
    """
    losses = qlike_loss(y_true, y_pred)
    return float(np.nanmean(losses)) if np.isfinite(losses).any() else float("nan")


def qlike_excluded(y_true: ArrayLike) -> int:
    """Days QLIKE leaves out: a realized volatility of zero (at h = 1, a day whose close
    equals the previous one), where ln(s/h) is undefined."""
    return int(np.sum(np.asarray(y_true, dtype=np.float64) <= 0.0))


@dataclass(frozen=True)
class Scores:
    rmse: float
    mae: float
    r2: float
    n: int


def score(y_true: ArrayLike, y_pred: ArrayLike) -> Scores:
    t, p = _pair(y_true, y_pred)
    return Scores(rmse=rmse(t, p), mae=mae(t, p), r2=r2(t, p), n=int(t.size))


def mse_var(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean squared error of the variance forecast (both sides squared volatilities)."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean((t**2 - p**2) ** 2))


def mz_r2(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mincer–Zarnowitz R²: R² of the OLS regression of realized on forecast volatility."""
    t, p = _pair(y_true, y_pred)
    if np.ptp(p) == 0.0 or np.ptp(t) == 0.0:
        return float("nan")
    return float(np.corrcoef(t, p)[0, 1] ** 2)


def squared_error_loss(y_true: ArrayLike, y_pred: ArrayLike) -> npt.NDArray[np.float64]:
    t, p = _pair(y_true, y_pred)
    return (t - p) ** 2


def qlike_loss(y_true: ArrayLike, y_pred: ArrayLike) -> npt.NDArray[np.float64]:
    """QLIKE per observation (its mean is ``qlike``); NaN where the realized volatility is
    zero: excluded, not floored, because any floor would decide the loss by itself (a day of
    zero return would weigh like a crash)."""
    t, p = _pair(y_true, y_pred)
    ratio = t**2 / np.maximum(p, 1e-12) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = ratio - np.log(ratio) - 1.0
    return np.asarray(np.where(t > 0, loss, np.nan), dtype=np.float64)


# The two losses of every comparison (DM tests, loss plots): name -> per-observation loss.
LOSSES = {"squared_error": squared_error_loss, "qlike": qlike_loss}


def newey_west_lags(n: int, horizon: int) -> int:
    """Bartlett-kernel lags: Newey–West (1994) rule of thumb, never fewer than horizon - 1
    (overlapping horizon-day targets make losses MA(horizon - 1))."""
    return max(horizon - 1, int(np.floor(4.0 * (n / 100.0) ** (2.0 / 9.0))))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of ``p_values`` (one family of tests), in the input order:
    the k-th smallest is multiplied by (m - k + 1), made monotone and capped at 1. It controls
    the family-wise error rate without assuming the tests independent (statsmodels'
    ``multipletests(method="holm")``).

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    if not p_values:
        return []
    adjusted = multipletests(np.asarray(p_values, dtype=np.float64), method="holm")[1]
    return [float(p) for p in adjusted]


def long_run_variance(x: ArrayLike, lags: int) -> float:
    """Newey–West (Bartlett) long-run variance of a series around its mean."""
    raw = np.asarray(x, dtype=np.float64)
    d = raw - float(raw.mean())
    n = d.size
    value = float(d @ d) / n
    for k in range(1, min(lags, n - 1) + 1):
        value += 2.0 * (1.0 - k / (lags + 1.0)) * float(d[k:] @ d[:-k]) / n
    return float(value)


@dataclass(frozen=True)
class DMResult:
    """Diebold–Mariano test of equal loss; negative ``statistic`` means model 1 has lower loss."""

    statistic: float
    p_value: float
    lags: int
    mean_loss_difference: float


def diebold_mariano(loss_1: ArrayLike, loss_2: ArrayLike, horizon: int) -> DMResult:
    """Diebold–Mariano test of equal expected loss.

    Parameters
    ----------
    loss_1, loss_2 : array_like
        Per-day losses of two forecasts of the same days (non-finite days are left out).
    horizon : int
        Forecast horizon: the losses of overlapping h-day targets are autocorrelated, so the
        Newey–West variance uses ``newey_west_lags`` (at least ``horizon - 1``) lags.

    Returns
    -------
    DMResult
        The statistic of ``mean(loss_1 - loss_2)`` (negative: forecast 1 is better), its
        two-sided normal p-value, the lags and the mean difference.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(1.0, 0.1, 500)
    >>> diebold_mariano(a, a + 0.05, horizon=1).statistic < -3
    True
    """
    d = np.asarray(loss_1, dtype=np.float64) - np.asarray(loss_2, dtype=np.float64)
    d = d[np.isfinite(d)]  # days a loss leaves out (QLIKE at zero realized volatility)
    lags = newey_west_lags(d.size, horizon)
    variance = long_run_variance(d, lags) / d.size
    mean = float(np.mean(d))
    if variance <= 0.0:
        stat = 0.0 if mean == 0.0 else float(np.copysign(np.inf, mean))
    else:
        stat = mean / float(np.sqrt(variance))
    return DMResult(
        statistic=stat,
        p_value=float(2.0 * norm.sf(abs(stat))),
        lags=lags,
        mean_loss_difference=mean,
    )
