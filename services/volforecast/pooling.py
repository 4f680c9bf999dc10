"""Partial pooling of the HAR core across a universe: a series with a few years of history
borrows the shape of its regression from many others.

- ``PoolData``: the pool's labeled rows (the core's design and log-variance target per series),
  loaded once; ``panel_at`` fits the panel on the rows each series had by a cut-off day.
- ``PanelCore``: pooled OLS of log variance on the core's regressors, every series' target and
  regressors demeaned by that series' own means over its rows (its long-run level, known at
  training time only), so a pooled slope describes how volatility moves, not how high it is.
- ``shrunk_coef``: a series' own core coefficients moved towards the panel's by the weight
  ``n / (n + kappa)`` on its own (``n`` its training rows): empirical-Bayes style, the less
  history, the more pooling. The panel's intercept is put back on the series' own level.

``kappa`` is chosen on the development period (``bench/pooling.py``; services/train/README.md,
"Partial pooling").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from volforecast.baselines import HARCore, core_design, log_variance
from volforecast.ensemble import HAR_CORE, HAR_CORE_LOGS

FloatArray = npt.NDArray[np.float64]
# The shrinkage constant the development-period protocol chose (bench/pooling.py).
POOL_KAPPA = 1000.0
# A series enters the panel at a cut-off only with this many rows by then.
MIN_PANEL_ROWS = 250


@dataclass(frozen=True)
class PanelCore:
    """Pooled slopes of demeaned log variance on demeaned regressors, and what they pooled."""

    intercept: float
    slopes: FloatArray
    rows: int
    series: int

    def raw_coef(self, x_mean: FloatArray, y_mean: float) -> FloatArray:
        """The panel's regression on one series' own level: intercept first."""
        return np.concatenate([[y_mean + self.intercept - x_mean @ self.slopes], self.slopes])


@dataclass
class PoolData:
    """The pool's labeled rows, per series: dates, the core's design, the log-variance target."""

    dates: dict[str, npt.NDArray[np.datetime64]]
    design: dict[str, FloatArray]
    target: dict[str, FloatArray]

    @classmethod
    def from_datasets(
        cls,
        datasets: Mapping[str, pd.DataFrame],
        core: Sequence[str] = HAR_CORE,
        core_logs: Sequence[str] = HAR_CORE_LOGS,
    ) -> PoolData:
        return cls(
            dates={s: d.index.to_numpy(dtype="datetime64[ns]") for s, d in datasets.items()},
            design={s: core_design(d, core, core_logs) for s, d in datasets.items()},
            target={s: log_variance(d) for s, d in datasets.items()},
        )

    def panel_at(self, cut: dt.date | pd.Timestamp, exclude: str | None = None) -> PanelCore:
        """The panel on every series' rows dated on or before ``cut`` (their targets' windows
        end a horizon later, inside the caller's purge), ``exclude`` left out."""
        stamp = np.datetime64(pd.Timestamp(cut), "ns")
        xs, ys = [], []
        for symbol, dates in self.dates.items():
            if symbol == exclude:
                continue
            n = int(np.searchsorted(dates, stamp, side="right"))
            if n < MIN_PANEL_ROWS:
                continue
            x, y = self.design[symbol][:n], self.target[symbol][:n]
            xs.append(x - x.mean(axis=0))
            ys.append(y - y.mean())
        if not xs:
            raise ValueError(f"no pool series has {MIN_PANEL_ROWS} rows by {cut}")
        X, y = np.vstack(xs), np.concatenate(ys)
        design = np.column_stack([np.ones(len(X)), X])
        # Normal equations: a hundred thousand rows, nine columns, well conditioned once
        # demeaned; lstsq's SVD took seconds per refit.
        coef = np.linalg.solve(design.T @ design, design.T @ y)
        return PanelCore(float(coef[0]), np.asarray(coef[1:], dtype=np.float64), len(y), len(xs))


def pool_weight(n_rows: int, kappa: float = POOL_KAPPA) -> float:
    """The weight on a series' own coefficients: n / (n + kappa).

    Examples
    --------
    >>> pool_weight(1000, kappa=1000.0)
    0.5
    """
    return n_rows / (n_rows + kappa)


def shrunk_coef(
    own: FloatArray, panel: PanelCore, x: FloatArray, y: FloatArray, kappa: float = POOL_KAPPA
) -> FloatArray:
    """A series' core coefficients (intercept first) shrunk towards the panel's, given its
    own training design ``x`` and log-variance target ``y``."""
    w = pool_weight(len(y), kappa)
    return np.asarray(w * own + (1.0 - w) * panel.raw_coef(x.mean(axis=0), float(y.mean())))


class PooledHARCore(HARCore):
    """The ensemble's HAR core, its coefficients shrunk towards a panel's (``shrunk_coef``):
    ``panels`` maps each refit's last training day to the panel fitted on the pool's rows up
    to it (``PoolData.panel_at``), so no refit sees a later day of any series. Forecasts as
    ``HARCore`` does, with the shrunk coefficients."""

    name = "har_core_pooled"

    def __init__(
        self,
        panels: Mapping[pd.Timestamp, PanelCore],
        core: Sequence[str] = HAR_CORE,
        core_logs: Sequence[str] = HAR_CORE_LOGS,
        kappa: float = POOL_KAPPA,
    ) -> None:
        super().__init__(core, core_logs, "duan")
        self.panels = panels
        self.kappa = kappa

    def fit(self, train: pd.DataFrame, returns: pd.Series) -> PooledHARCore:
        super().fit(train, returns)  # the series' own core, and its forecast floor
        x, y = self._design(train), log_variance(train)
        panel = self.panels[pd.Timestamp(train.index[-1])]
        self.coef_ = shrunk_coef(self.coef_, panel, x, y, self.kappa)
        resid = y - (self.coef_[0] + x @ self.coef_[1:])
        # Duan's smearing of the shrunk regression's own residuals, as the core does.
        self.log_bias_ = float(np.log(np.mean(np.exp(resid))))
        return self
