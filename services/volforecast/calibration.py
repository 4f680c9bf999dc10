"""Calibrating a volatility forecast into distributions, from what the model got wrong out of
sample inside its own training window (no later row is read). Pure functions.

- ``VolatilityCalibration``: quantiles of the h-day realized volatility as the forecast times
  ``exp(q)``, ``q`` the split-conformal quantiles of the out-of-fold log residuals
  ``ln(realized / forecast)``. With exchangeable residuals each one-sided quantile covers at
  least its level in finite samples (the rank is rounded outwards).
- ``ReturnRisk``: VaR and expected shortfall of the h-day log return by filtered historical
  simulation — the training window's returns divided by their (out-of-fold) volatility forecast
  times sqrt(h), whose empirical tail gives multipliers of the new forecast.

These are the building blocks of the forecast distributions of the risk issue (#23); the method
and its settings are to be chosen under the selection protocol before anything user-facing
ships.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
QUANTILE_LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
VAR_LEVELS = (0.95, 0.99)


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
    """Quantiles of the realized volatility around a forecast, from log residuals."""

    log_residual_quantiles: dict[float, float]
    n: int

    @classmethod
    def fit(
        cls,
        realized: npt.ArrayLike,
        forecast: npt.ArrayLike,
        levels: Sequence[float] = QUANTILE_LEVELS,
    ) -> VolatilityCalibration:
        """From out-of-fold pairs; days of zero realized volatility are left out (ln 0)."""
        y = np.asarray(realized, dtype=np.float64)
        f = np.asarray(forecast, dtype=np.float64)
        keep = (y > 0) & (f > 0) & np.isfinite(y) & np.isfinite(f)
        residuals = np.log(y[keep] / f[keep])
        return cls({lv: conformal_quantile(residuals, lv) for lv in levels}, int(keep.sum()))

    def quantiles(self, forecast: npt.ArrayLike) -> dict[float, FloatArray]:
        """Each level's quantile of the realized volatility, per forecast.

        Examples
        --------
        >>> cal = VolatilityCalibration({0.5: 0.0, 0.95: np.log(2.0)}, n=100)
        >>> cal.quantiles([0.01])[0.95]
        array([0.02])
        """
        f = np.asarray(forecast, dtype=np.float64)
        return {lv: f * math.exp(q) for lv, q in self.log_residual_quantiles.items()}


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
    ) -> ReturnRisk:
        """``returns``: each day's next-``horizon``-day log return; ``forecast``: that day's
        volatility forecast in daily units (the return's scale is forecast * sqrt(horizon))."""
        r = np.asarray(returns, dtype=np.float64)
        f = np.asarray(forecast, dtype=np.float64)
        keep = np.isfinite(r) & np.isfinite(f) & (f > 0)
        z = r[keep] / (f[keep] * math.sqrt(horizon))
        var, es = {}, {}
        for level in levels:
            # The loss at `level` is the lower (1 - level) tail of the return, taken outwards.
            q = conformal_quantile(z, 1.0 - level)
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
