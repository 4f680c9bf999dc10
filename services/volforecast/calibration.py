"""Calibrating a volatility forecast into distributions, from what the model got wrong out of
sample inside its own training window (no later row is read). Pure functions.

- ``VolatilityCalibration``: quantiles of the h-day realized volatility as the forecast times
  ``exp(q)``, ``q`` the split-conformal quantiles of the out-of-fold log residuals
  ``ln(realized / forecast)``. With exchangeable residuals each one-sided quantile covers at
  least its level in finite samples (the rank is rounded outwards).
- ``ReturnRisk``: VaR and expected shortfall of the h-day log return by filtered historical
  simulation — the training window's returns divided by their (out-of-fold) volatility forecast
  times sqrt(h), whose empirical tail gives multipliers of the new forecast.

- ``ForecastCalibration``: both, for one model, with the settings of a ``CalibrationMethod``
  (the window calibrated on, the returns' scale, a tail margin), fitted on a training window
  and stored in the model pickles as plain numbers. ``SHIPPED_METHOD`` is the method the
  development-period protocol chose (``bench/risk.py``; services/train/README.md);
  ``blending`` averages its quantiles with GJR-GARCH-t's, as shipped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
QUANTILE_LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
VAR_LEVELS = (0.95, 0.99)
EWMA_LAMBDA = 0.94
# The VaR levels a tail margin applies to: the Basel backtest's 99%.
MARGIN_FROM = 0.99
# Fewer out-of-sample rows than this and a 1% tail is a handful of days.
MIN_CALIBRATION_ROWS = 250


def conformal_quantile(scores: npt.ArrayLike, level: float) -> float:
    """The split-conformal ``level`` quantile of calibration ``scores``: the k-th smallest with
    k = ceil((n + 1) * level) above the median and floor((n + 1) * level) below it (clipped to
    1..n), so that a new exchangeable score falls on the far side with probability at most
    ``1 - level`` (above) or ``level`` (below).

    Examples
    --------
    >>> conformal_quantile(range(1, 20), 0.9)  # n = 19: the 18th smallest
    18.0
    >>> conformal_quantile(range(1, 20), 0.1)  # the 2nd smallest
    2.0
    """
    values = np.sort(np.asarray(scores, dtype=np.float64))
    n = values.size
    if n == 0:
        raise ValueError("no calibration scores")
    rank = math.ceil((n + 1) * level) if level >= 0.5 else math.floor((n + 1) * level)
    return float(values[min(max(rank, 1), n) - 1])


@dataclass(frozen=True)
class VolatilityCalibration:
    """Quantiles of the realized volatility around a forecast, from log residuals.

    With ``bins`` above 1 the residuals are split by the level of the forecast (Mondrian
    conformal): ``log_forecast_edges`` are the calibration rows' log-forecast quantiles that
    cut them into ``bins`` equal groups, and each group has its own quantiles
    (``bin_quantiles``), so the interval's width can differ between calm and turbulent days.
    ``log_residual_quantiles`` are always those of all rows.
    """

    log_residual_quantiles: dict[float, float]
    n: int
    log_forecast_edges: tuple[float, ...] = ()
    bin_quantiles: tuple[dict[float, float], ...] = ()

    @property
    def bins(self) -> int:
        return max(len(self.bin_quantiles), 1)

    @classmethod
    def fit(
        cls,
        realized: npt.ArrayLike,
        forecast: npt.ArrayLike,
        levels: Sequence[float] = QUANTILE_LEVELS,
        bins: int = 1,
    ) -> VolatilityCalibration:
        """From out-of-fold pairs; days of zero realized volatility are left out (ln 0)."""
        if bins < 1:
            raise ValueError(f"bins must be at least 1, got {bins}")
        y = np.asarray(realized, dtype=np.float64)
        f = np.asarray(forecast, dtype=np.float64)
        keep = (y > 0) & (f > 0) & np.isfinite(y) & np.isfinite(f)
        residuals = np.log(y[keep] / f[keep])
        pooled = {lv: conformal_quantile(residuals, lv) for lv in levels}
        if bins == 1:
            return cls(pooled, int(keep.sum()))
        log_f = np.log(f[keep])
        edges = tuple(float(e) for e in np.quantile(log_f, np.arange(1, bins) / bins))
        group = np.searchsorted(edges, log_f, side="right")
        per_bin = tuple(
            {lv: conformal_quantile(residuals[group == b], lv) for lv in levels}
            for b in range(bins)
        )
        return cls(pooled, int(keep.sum()), edges, per_bin)

    def quantiles(self, forecast: npt.ArrayLike) -> dict[float, FloatArray]:
        """Each level's quantile of the realized volatility, per forecast.

        Examples
        --------
        >>> cal = VolatilityCalibration({0.5: 0.0, 0.95: np.log(2.0)}, n=100)
        >>> cal.quantiles([0.01])[0.95]
        array([0.02])
        >>> two = VolatilityCalibration(
        ...     {0.95: 0.0}, n=100, log_forecast_edges=(np.log(0.02),),
        ...     bin_quantiles=({0.95: np.log(2.0)}, {0.95: np.log(1.5)}),
        ... )
        >>> two.quantiles([0.01, 0.04])[0.95]  # calm days: x2; turbulent days: x1.5
        array([0.02, 0.06])
        """
        f = np.asarray(forecast, dtype=np.float64)
        if not self.bin_quantiles:
            return {lv: f * math.exp(q) for lv, q in self.log_residual_quantiles.items()}
        with np.errstate(divide="ignore", invalid="ignore"):
            group = np.searchsorted(self.log_forecast_edges, np.log(f), side="right")
        return {
            lv: f * np.exp(np.array([b[lv] for b in self.bin_quantiles])[group])
            for lv in self.log_residual_quantiles
        }


@dataclass(frozen=True)
class ReturnRisk:
    """VaR and ES multipliers of standardized h-day log returns (filtered historical
    simulation): a loss is a positive number in log-return units."""

    horizon: int
    var_multipliers: dict[float, float]
    es_multipliers: dict[float, float]
    n: int

    @classmethod
    def fit(
        cls,
        returns: npt.ArrayLike,
        forecast: npt.ArrayLike,
        horizon: int,
        levels: Sequence[float] = VAR_LEVELS,
        tail_margin: float = 1.0,
    ) -> ReturnRisk:
        """``returns``: each day's next-``horizon``-day log return; ``forecast``: that day's
        volatility forecast in daily units (the return's scale is forecast * sqrt(horizon));
        ``tail_margin``: the VaR at levels of ``MARGIN_FROM`` and above is taken at tail
        probability ``(1 - level) * tail_margin`` (see ``CalibrationMethod``)."""
        r = np.asarray(returns, dtype=np.float64)
        f = np.asarray(forecast, dtype=np.float64)
        keep = np.isfinite(r) & np.isfinite(f) & (f > 0)
        z = r[keep] / (f[keep] * math.sqrt(horizon))
        var, es = {}, {}
        for level in levels:
            # The loss at `level` is the lower (1 - level) tail of the return, taken outwards.
            margin = tail_margin if level >= MARGIN_FROM else 1.0
            q = conformal_quantile(z, (1.0 - level) * margin)
            var[level] = -q
            es[level] = -float(np.mean(z[z <= q]))
        return cls(horizon, var, es, int(keep.sum()))

    def var(self, forecast: npt.ArrayLike) -> dict[float, FloatArray]:
        """VaR per level of the next-``horizon``-day log return, per volatility forecast."""
        scale = np.asarray(forecast, dtype=np.float64) * math.sqrt(self.horizon)
        return {lv: m * scale for lv, m in self.var_multipliers.items()}

    def es(self, forecast: npt.ArrayLike) -> dict[float, FloatArray]:
        """Expected shortfall per level (the mean loss beyond the VaR), per forecast."""
        scale = np.asarray(forecast, dtype=np.float64) * math.sqrt(self.horizon)
        return {lv: m * scale for lv, m in self.es_multipliers.items()}


def ewma_variance(returns: pd.Series, lam: float = EWMA_LAMBDA) -> pd.Series:
    """RiskMetrics variance at each date, after that date's return: sigma2_t = lam *
    sigma2_{t-1} + (1 - lam) * r_t^2, seeded with the mean of the first 22 squared returns.
    The ``ewma`` baseline's forecast and, as its square root, ``ewma_volatility``."""
    clean = returns.dropna()
    r2 = np.asarray(clean, dtype=np.float64) ** 2
    out = np.empty_like(r2)
    level = float(np.mean(r2[:22])) if r2.size else 0.0
    for i, x in enumerate(r2):
        level = lam * level + (1.0 - lam) * x
        out[i] = level
    return pd.Series(out, index=clean.index)


def ewma_volatility(returns: pd.Series, lam: float = EWMA_LAMBDA) -> pd.Series:
    """RiskMetrics volatility at each date after that date's return (``ewma_variance``): the
    fast-reacting scale ``scale="max_ewma"`` puts under the forecast.

    Examples
    --------
    >>> r = pd.Series([0.01] * 30, index=pd.bdate_range("2020-01-01", periods=30))
    >>> float(ewma_volatility(r).iloc[-1])
    0.01
    """
    variance = ewma_variance(returns, lam)
    return pd.Series(np.sqrt(variance.to_numpy()), index=variance.index)


@dataclass(frozen=True)
class CalibrationMethod:
    """How a point forecast becomes a distribution: the settings the protocol chooses.

    window : calibrate on the last ``window`` out-of-sample rows of the training window (None:
        all of them).
    scale : the returns' scale, ``"forecast"`` (the volatility forecast) or ``"max_ewma"``
        (the larger of the forecast and the RiskMetrics volatility, which reacts to yesterday's
        shock at once).
    tail_margin : the 1-day 99% VaR (what the Basel traffic light counts) is the standardized
        returns' ``0.01 * tail_margin`` quantile (below 1: a deliberately conservative VaR, for
        exceedances that cluster); the 95% VaR and the h-day VaR take their nominal quantile.
    quantile_bins : the realized-volatility quantiles' residuals split into this many groups by
        the forecast's level (``VolatilityCalibration``); 1: one set of quantiles for all days.
    ewma_lambda : the decay of the EWMA volatility in ``scale="max_ewma"`` (RiskMetrics' is
        0.94; lower reacts faster to a run of shocks).
    """

    window: int | None = None
    scale: Literal["forecast", "max_ewma"] = "forecast"
    tail_margin: float = 1.0
    quantile_bins: int = 1
    ewma_lambda: float = EWMA_LAMBDA

    @property
    def name(self) -> str:
        window = "all" if self.window is None else str(self.window)
        # Without bins the name is the one sets trained before bins existed carry.
        bins = "" if self.quantile_bins == 1 else f", quantile_bins={self.quantile_bins}"
        lam = "" if self.ewma_lambda == EWMA_LAMBDA else f", ewma_lambda={self.ewma_lambda:g}"
        return (
            f"conformal+fhs(window={window}, scale={self.scale}, "
            f"tail_margin={self.tail_margin:g}{bins}{lam})"
        )

    def ewma(self, returns: pd.Series, index: pd.Index) -> FloatArray:
        """The EWMA volatility of ``returns`` (this method's decay) on the dates ``index``; it
        reads no return after each date."""
        vol = ewma_volatility(returns, self.ewma_lambda)
        return vol.reindex(pd.DatetimeIndex(index)).to_numpy(dtype=np.float64)


def risk_scale(forecast: npt.ArrayLike, ewma: npt.ArrayLike, scale: str) -> FloatArray:
    """The daily scale of returns under ``scale`` (``CalibrationMethod.scale``)."""
    f = np.asarray(forecast, dtype=np.float64)
    if scale == "forecast":
        return f
    if scale == "max_ewma":
        return np.maximum(f, np.asarray(ewma, dtype=np.float64))
    raise ValueError(f"unknown scale {scale!r} (forecast or max_ewma)")


@dataclass(frozen=True)
class ForecastCalibration:
    """A model's forecast distribution: quantiles of the h-day realized volatility, and VaR
    and ES of the 1-day and h-day log returns, fitted on the training window only.

    ``to_dict`` / ``from_dict`` give the plain-number form stored in the model pickles (key
    ``"calibration"``), so reading it back needs no class of ours.
    """

    method: CalibrationMethod
    horizon: int
    volatility: VolatilityCalibration
    risk_1d: ReturnRisk
    risk_h: ReturnRisk

    @classmethod
    def fit(
        cls,
        realized: npt.ArrayLike,
        forecast: npt.ArrayLike,
        returns: pd.Series,
        index: pd.DatetimeIndex,
        horizon: int,
        method: CalibrationMethod = CalibrationMethod(),
        levels: Sequence[float] = QUANTILE_LEVELS,
        var_levels: Sequence[float] = VAR_LEVELS,
    ) -> ForecastCalibration:
        """Fit on training rows: ``realized`` (their targets), ``forecast`` (the model's
        out-of-sample forecasts of them, NaN where it has none), ``returns`` (daily log returns
        by date, at least through the last row's target window) and ``index`` (the rows'
        dates). Every number used is inside the training window: a row's next-day and next-h
        returns are its target's own days.
        """
        y = np.asarray(realized, dtype=np.float64)
        f = np.asarray(forecast, dtype=np.float64)
        known = np.isfinite(f) & (f > 0)
        if method.window is not None:
            known &= np.cumsum(known[::-1])[::-1] <= method.window
        if known.sum() < MIN_CALIBRATION_ROWS:
            raise ValueError(
                f"only {int(known.sum())} out-of-sample rows to calibrate on; need "
                f"{MIN_CALIBRATION_ROWS}"
            )
        ahead_1, ahead_h = forward_returns(returns, index, horizon)
        scale = risk_scale(f, method.ewma(returns, index), method.scale)
        rows = np.flatnonzero(known)
        return cls(
            method=method,
            horizon=horizon,
            volatility=VolatilityCalibration.fit(y[rows], f[rows], levels, method.quantile_bins),
            risk_1d=ReturnRisk.fit(ahead_1[rows], scale[rows], 1, var_levels, method.tail_margin),
            # The margin is for the backtest it was chosen on, the 1-day 99% VaR.
            risk_h=ReturnRisk.fit(ahead_h[rows], scale[rows], horizon, var_levels),
        )

    def distribution(self, forecast: npt.ArrayLike, ewma: npt.ArrayLike) -> dict[str, FloatArray]:
        """Per forecast: ``q<level>`` (realized-volatility quantiles), ``var<level>`` and
        ``es<level>`` (1-day) and ``var<level>_h`` / ``es<level>_h`` (h-day), losses > 0,
        and ``scale`` (the returns' daily scale).
        ``ewma``: the EWMA volatility on each forecast's date (``CalibrationMethod.ewma``)."""
        scale = risk_scale(forecast, ewma, self.method.scale)
        out = {f"q{lv:g}": q for lv, q in self.volatility.quantiles(forecast).items()}
        out["scale"] = scale
        for suffix, risk in (("", self.risk_1d), ("_h", self.risk_h)):
            for lv, v in risk.var(scale).items():
                out[f"var{lv:g}{suffix}"] = v
            for lv, e in risk.es(scale).items():
                out[f"es{lv:g}{suffix}"] = e
        return out

    def distribution_on(
        self, forecast: npt.ArrayLike, returns: pd.Series, index: pd.Index
    ) -> dict[str, FloatArray]:
        """``distribution`` of forecasts made on the dates ``index``, with the EWMA volatility
        of ``returns`` on those dates (it reads no return after each date)."""
        return self.distribution(forecast, self.method.ewma(returns, index))

    def to_dict(self) -> dict[str, Any]:
        def levels(d: dict[float, float]) -> dict[str, float]:
            return {f"{k:g}": float(v) for k, v in d.items()}

        return {
            "method": self.method.name,
            "window": self.method.window,
            "scale": self.method.scale,
            "tail_margin": self.method.tail_margin,
            "ewma_lambda": self.method.ewma_lambda,
            "horizon": self.horizon,
            "rows": self.volatility.n,
            "log_residual_quantiles": levels(self.volatility.log_residual_quantiles),
            "quantile_bins": self.volatility.bins,
            "log_forecast_edges": list(self.volatility.log_forecast_edges),
            "log_residual_quantiles_by_bin": [levels(b) for b in self.volatility.bin_quantiles],
            "var_multipliers_1d": levels(self.risk_1d.var_multipliers),
            "es_multipliers_1d": levels(self.risk_1d.es_multipliers),
            "var_multipliers_h": levels(self.risk_h.var_multipliers),
            "es_multipliers_h": levels(self.risk_h.es_multipliers),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ForecastCalibration:
        def levels(x: dict[str, float]) -> dict[float, float]:
            return {float(k): float(v) for k, v in x.items()}

        # Sets calibrated before quantile bins (or the decay) were stored carry none of their
        # keys: one bin, the RiskMetrics decay.
        bins = int(d.get("quantile_bins", 1))
        lam = float(d.get("ewma_lambda", EWMA_LAMBDA))
        method = CalibrationMethod(d["window"], d["scale"], float(d["tail_margin"]), bins, lam)
        h, n = int(d["horizon"]), int(d["rows"])
        volatility = VolatilityCalibration(
            levels(d["log_residual_quantiles"]),
            n,
            tuple(float(e) for e in d.get("log_forecast_edges", ())),
            tuple(levels(b) for b in d.get("log_residual_quantiles_by_bin", ())),
        )
        return cls(
            method=method,
            horizon=h,
            volatility=volatility,
            risk_1d=ReturnRisk(
                1, levels(d["var_multipliers_1d"]), levels(d["es_multipliers_1d"]), n
            ),
            risk_h=ReturnRisk(h, levels(d["var_multipliers_h"]), levels(d["es_multipliers_h"]), n),
        )


def forward_returns(
    returns: pd.Series, index: pd.DatetimeIndex, horizon: int
) -> tuple[FloatArray, FloatArray]:
    """Each date's next-day and next-``horizon``-day log returns (NaN past the data's end)."""
    r = returns.dropna()
    ahead_1 = r.shift(-1)
    ahead_h = r.rolling(horizon, min_periods=horizon).sum().shift(-horizon)
    return (
        ahead_1.reindex(index).to_numpy(dtype=np.float64),
        ahead_h.reindex(index).to_numpy(dtype=np.float64),
    )


# The method the development-period protocol chose (bench/risk.py; services/train/README.md).
SHIPPED_METHOD = CalibrationMethod(window=1000, scale="max_ewma", tail_margin=0.8, ewma_lambda=0.9)
