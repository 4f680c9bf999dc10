"""Forecast distributions in the walk-forward: the ensemble's and the baselines a risk desk
would otherwise use, each from its own training window only.

A distribution is a set of columns per forecast day (``calibration.ForecastCalibration``'s
names): ``q<level>`` (quantiles of the h-day realized volatility), ``var<level>`` and
``es<level>`` (the next day's VaR and ES, losses > 0) and ``scale`` (the next day's volatility).
A forecaster that has one returns a ``distribution_frame`` from ``predict`` instead of an
array; ``walkforward.assemble`` spreads it into ``<model>@<column>`` columns.

- ``EnsembleForecaster(distribution=True)`` (``walkforward``): the shipped distribution of the
  ensemble's out-of-fold forecasts (``blending.fit_shipped``: ``calibration.SHIPPED_METHOD``,
  its quantiles averaged with GJR-GARCH-t's).
- ``GARCHForecaster(distribution=True)`` (``baselines``): GARCH-t and GJR-GARCH-t, the
  Student-t's own VaR and ES, and realized-volatility quantiles simulated by ``arch``.
- ``FilteredHS``: filtered historical simulation, the RiskMetrics volatility standardizing the
  training window's returns and realized volatilities (Barone-Adesi et al. 1999).
- ``HistoricalSimulation``: the last 250 days' returns and realized volatilities, unfiltered.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from volforecast.calibration import (
    QUANTILE_LEVELS,
    VAR_LEVELS,
    CalibrationMethod,
    ForecastCalibration,
    conformal_quantile,
    ewma_volatility,
)
from volforecast.ensemble import FloatArray
from volforecast.features import TARGET

POINT = "point"
SEP = "@"
HS_WINDOW = 250


def distribution_frame(
    index: pd.Index, dist: Mapping[str, FloatArray], point: FloatArray | None = None
) -> pd.DataFrame:
    """A forecaster's output with a distribution: ``point`` (the point forecast, if the model
    has one that evaluate scores) and the distribution's columns, one row per forecast."""
    columns = ({POINT: point} if point is not None else {}) | {
        k: v for k, v in dist.items() if not k.endswith("_h")
    }
    return pd.DataFrame(columns, index=index)


def one_day(columns: Iterable[str], model: str) -> dict[str, str]:
    """``assemble``'s ``<model>@<column>`` names of one model's distribution -> column."""
    prefix = f"{model}{SEP}"
    return {c[len(prefix) :]: c for c in columns if c.startswith(prefix)}


class FilteredHS:
    """RiskMetrics-filtered historical simulation: quantiles and tails of the training
    window's realized volatility and next-day return over the EWMA volatility."""

    name = "fhs"

    def __init__(
        self, horizon: int, levels: Sequence[float] = QUANTILE_LEVELS, lam: float = 0.94
    ) -> None:
        self.horizon = horizon
        self.levels = levels
        self.lam = lam

    def fit(self, train: pd.DataFrame, returns: pd.Series) -> FilteredHS:
        ewma = ewma_volatility(returns, self.lam).reindex(train.index).to_numpy()
        self.calibration_ = ForecastCalibration.fit(
            train[TARGET].to_numpy(), ewma, returns, pd.DatetimeIndex(train.index),
            self.horizon, CalibrationMethod(), self.levels, VAR_LEVELS,
        )  # fmt: skip
        return self

    def predict(self, rows: pd.DataFrame, returns: pd.Series) -> pd.DataFrame:
        known = returns.loc[: rows.index[-1]]
        ewma = ewma_volatility(known, self.lam).reindex(rows.index).to_numpy()
        return distribution_frame(rows.index, self.calibration_.distribution(ewma, ewma))


class HistoricalSimulation:
    """Plain historical simulation: at each day, the empirical quantiles of the last
    ``window`` daily returns (VaR, ES) and of the last ``window`` completed h-day realized
    volatilities (looking back, so all known that day)."""

    name = "hs_250"

    def __init__(
        self, horizon: int, levels: Sequence[float] = QUANTILE_LEVELS, window: int = HS_WINDOW
    ) -> None:
        self.horizon = horizon
        self.levels = levels
        self.window = window

    def fit(self, train: pd.DataFrame, returns: pd.Series) -> HistoricalSimulation:
        return self

    def predict(self, rows: pd.DataFrame, returns: pd.Series) -> pd.DataFrame:
        known = returns.loc[: rows.index[-1]].dropna()
        r = known.to_numpy(dtype=np.float64)
        back = np.sqrt(pd.Series(r**2).rolling(self.horizon).mean().to_numpy())
        ends = known.index.get_indexer(rows.index)
        dist: dict[str, FloatArray] = {f"q{lv:g}": np.full(len(rows), np.nan) for lv in self.levels}
        for level in VAR_LEVELS:
            dist[f"var{level:g}"] = np.full(len(rows), np.nan)
            dist[f"es{level:g}"] = np.full(len(rows), np.nan)
        dist["scale"] = np.full(len(rows), np.nan)
        for i, end in enumerate(ends):
            if end < 0:
                continue
            window_r = r[max(end + 1 - self.window, 0) : end + 1]
            window_v = back[max(end + 1 - self.window, 0) : end + 1]
            window_v = window_v[np.isfinite(window_v)]
            for lv in self.levels:
                dist[f"q{lv:g}"][i] = conformal_quantile(window_v, lv)
            for level in VAR_LEVELS:
                q = conformal_quantile(window_r, 1.0 - level)
                dist[f"var{level:g}"][i] = -q
                dist[f"es{level:g}"][i] = -float(np.mean(window_r[window_r <= q]))
            dist["scale"][i] = math.sqrt(float(np.mean(window_r**2)))
        return distribution_frame(rows.index, dist)
