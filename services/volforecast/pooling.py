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
- ``level_shift``: the level anchor. A series' own level is its few years' mean; the panel's
  line is moved towards the long run by how far the market's mean log VIX over those years lies
  from its mean over every pool day (``PanelCore.raw_coef``), and that move, the panel's share
  of it, is added to the log-variance forecast after the bias correction.

- ``load_pool``: the ``--pool-universe`` series' labeled rows, for ``evaluate`` and ``train``.
- ``PanelShrinkage`` / ``PoolPriors``: the same shrinkage as the ensemble's core prior
  (``volforecast.ensemble.CorePrior``): ``train --pool-universe`` fits each out-of-fold and
  final base learner on a core shrunk towards the panel of the pool's rows up to that fit's
  last training day, so no fold reads a later day of any series.

``kappa`` and the level anchor are chosen on the development period (``bench/pooling.py``;
services/train/README.md, "Partial pooling").
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from volforecast import selection
from volforecast.baselines import HARCore, core_design, log_variance
from volforecast.config import Settings
from volforecast.data import Downloader, load_market_data
from volforecast.ensemble import HAR_CORE, HAR_CORE_LOGS, core_with
from volforecast.errors import DataError, VolforecastError
from volforecast.features import build_dataset, labeled
from volforecast.progress import Progress
from volforecast.schemas import PoolingInfo

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
# The shrinkage constant the development-period protocol chose (bench/pooling.py).
POOL_KAPPA = 1000.0
# A series enters the panel at a cut-off only with this many rows by then.
MIN_PANEL_ROWS = 250
# The pool's history starts here (the shared data's stocks begin in 1993).
POOL_START = dt.date(1990, 1, 1)
POOL_PROGRESS_EVERY = 25
# The level anchor b (``PanelCore.raw_coef``) the development-period protocol chose.
POOL_LEVEL_ANCHOR = 1.0
# The core regressor that is the VIX, and the prefixes of those that are log volatilities.
VIX_REGRESSOR = "vix_level"
VOL_PREFIXES = ("spy_rv_", "spy_parkinson_")


@dataclass(frozen=True)
class PanelCore:
    """Pooled slopes of demeaned log variance on demeaned regressors, and what they pooled."""

    intercept: float
    slopes: FloatArray
    rows: int
    series: int

    through: dt.date | None = None  # the last day of any series' rows in the panel
    symbols: tuple[str, ...] = ()
    # For the level anchor (``raw_coef``): the mean log VIX over every pool day by the cut,
    # and which regressors are the VIX and which are log volatilities.
    vix_mean: float | None = None
    vix_column: int | None = None
    vol_columns: tuple[int, ...] = ()

    def raw_coef(self, x_mean: FloatArray, y_mean: float, anchor: float = 0.0) -> FloatArray:
        """The panel's regression on one series' own level: intercept first.

        ``anchor`` b > 0 moves that level towards the long run: when the market's mean log
        VIX over the series' rows lies δ above the pool's long-run mean, its log-volatility
        regressors' means move by −bδ, its log-variance target's by −2bδ and its VIX mean to
        the long-run one, so a series whose few years were calm (or turbulent) is not pulled
        back to those years' level alone. b = 0: the series' own means as they are.
        """
        if anchor and self.vix_mean is not None and self.vix_column is not None:
            delta = float(x_mean[self.vix_column]) - self.vix_mean
            x_mean = np.array(x_mean, dtype=np.float64)
            x_mean[list(self.vol_columns)] -= anchor * delta
            x_mean[self.vix_column] = self.vix_mean
            y_mean = y_mean - 2.0 * anchor * delta
        return np.concatenate([[y_mean + self.intercept - x_mean @ self.slopes], self.slopes])


@dataclass
class PoolData:
    """The pool's labeled rows, per series: dates, the core's design, the log-variance target."""

    dates: dict[str, npt.NDArray[np.datetime64]]
    design: dict[str, FloatArray]
    target: dict[str, FloatArray]
    # The design's VIX column and log-volatility columns (``PanelCore.raw_coef``'s anchor).
    vix_column: int | None = None
    vol_columns: tuple[int, ...] = ()
    # Panels already fitted, by (cut, series left out): the benchmarks of a universe share
    # their trading days, so their refits ask for the same panels.
    _panels: dict[tuple[np.datetime64, str | None], PanelCore] = field(
        default_factory=dict, repr=False, compare=False
    )

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
            vix_column=list(core).index(VIX_REGRESSOR) if VIX_REGRESSOR in core else None,
            vol_columns=tuple(k for k, name in enumerate(core) if name.startswith(VOL_PREFIXES)),
        )

    def panel_at(self, cut: dt.date | pd.Timestamp, exclude: str | None = None) -> PanelCore:
        """The panel on every series' rows dated on or before ``cut`` (their targets' windows
        end a horizon later, inside the caller's purge), ``exclude`` left out."""
        stamp = np.datetime64(pd.Timestamp(cut), "ns")
        key = (stamp, exclude if exclude in self.dates else None)
        if key not in self._panels:
            self._panels[key] = self._fit_panel(stamp, key[1])
        return self._panels[key]

    def _fit_panel(self, stamp: np.datetime64, exclude: str | None) -> PanelCore:
        xs, ys, used = [], [], []
        days, vix = [], []
        last = np.datetime64("NaT", "ns")
        for symbol, dates in self.dates.items():
            n = int(np.searchsorted(dates, stamp, side="right"))
            if self.vix_column is not None:  # the long run: every pool day, this one's too
                days.append(dates[:n])
                vix.append(self.design[symbol][:n, self.vix_column])
            if symbol == exclude or n < MIN_PANEL_ROWS:
                continue
            x, y = self.design[symbol][:n], self.target[symbol][:n]
            xs.append(x - x.mean(axis=0))
            ys.append(y - y.mean())
            used.append(symbol)
            last = dates[n - 1] if np.isnat(last) else max(last, dates[n - 1])
        if not xs:
            raise ValueError(f"no pool series has {MIN_PANEL_ROWS} rows by {pd.Timestamp(stamp)}")
        X, y = np.vstack(xs), np.concatenate(ys)
        design = np.column_stack([np.ones(len(X)), X])
        # Normal equations: a hundred thousand rows, nine columns, well conditioned once
        # demeaned; lstsq's SVD took seconds per refit.
        coef = np.linalg.solve(design.T @ design, design.T @ y)
        vix_mean = None
        if days:  # the VIX is the same series in every pool file: each day counted once
            _, first = np.unique(np.concatenate(days), return_index=True)
            vix_mean = float(np.concatenate(vix)[first].mean())
        return PanelCore(
            float(coef[0]), np.asarray(coef[1:], dtype=np.float64), len(y), len(xs),
            pd.Timestamp(last).date(), tuple(used), vix_mean, self.vix_column, self.vol_columns,
        )  # fmt: skip


def pool_weight(n_rows: int, kappa: float = POOL_KAPPA) -> float:
    """The weight on a series' own coefficients: n / (n + kappa).

    Examples
    --------
    >>> pool_weight(1000, kappa=1000.0)
    0.5
    """
    return n_rows / (n_rows + kappa)


def shrunk_coef(
    own: FloatArray,
    panel: PanelCore,
    x: FloatArray,
    y: FloatArray,
    kappa: float = POOL_KAPPA,
    anchor: float = POOL_LEVEL_ANCHOR,
) -> FloatArray:
    """A series' core coefficients (intercept first) shrunk towards the panel's, given its
    own training design ``x`` and log-variance target ``y``."""
    w = pool_weight(len(y), kappa)
    line = panel.raw_coef(x.mean(axis=0), float(y.mean()), anchor)
    return np.asarray(w * own + (1.0 - w) * line)


def level_shift(
    panel: PanelCore,
    x: FloatArray,
    y: FloatArray,
    kappa: float = POOL_KAPPA,
    anchor: float = POOL_LEVEL_ANCHOR,
) -> float:
    """What the level anchor adds to the shrunk core's log-variance forecast: the panel's
    share of the move of its intercept (``PanelCore.raw_coef``). Added after the bias
    correction, which re-centres a core on the series' own residuals and so would undo any
    move of the intercept."""
    if not anchor:
        return 0.0
    x_mean, y_mean = x.mean(axis=0), float(y.mean())
    move = panel.raw_coef(x_mean, y_mean, anchor)[0] - panel.raw_coef(x_mean, y_mean)[0]
    return float((1.0 - pool_weight(len(y), kappa)) * move)


class PooledHARCore(HARCore):
    """The ensemble's HAR core, its coefficients shrunk towards a panel's (``shrunk_coef``):
    ``panels`` maps each refit's last training day to the panel fitted on the pool's rows up
    to it (``PoolData.panel_at``; ``None`` on a day no pool series had ``MIN_PANEL_ROWS`` rows,
    and the refit keeps its own core), so no refit sees a later day of any series. Forecasts
    as ``HARCore`` does, with the shrunk coefficients."""

    name = "har_core_pooled"

    def __init__(
        self,
        panels: Mapping[pd.Timestamp, PanelCore | None],
        core: Sequence[str] = HAR_CORE,
        core_logs: Sequence[str] = HAR_CORE_LOGS,
        kappa: float = POOL_KAPPA,
        anchor: float = POOL_LEVEL_ANCHOR,
    ) -> None:
        super().__init__(core, core_logs, "duan")
        self.panels = panels
        self.kappa = kappa
        self.anchor = anchor

    def fit(self, train: pd.DataFrame, returns: pd.Series) -> PooledHARCore:
        super().fit(train, returns)  # the series' own core, and its forecast floor
        panel = self.panels[pd.Timestamp(train.index[-1])]
        if panel is None:  # no pool series old enough yet: the own core, as the ensemble does
            return self
        x, y = self._design(train), log_variance(train)
        # Duan's smearing of the shrunk regression's own residuals, as the core does.
        moved = core_with(shrunk_coef(self.coef_, panel, x, y, self.kappa, 0.0), x, y, "duan")
        self.coef_, self.log_bias_ = moved.coef, moved.log_bias
        self.log_bias_ += level_shift(panel, x, y, self.kappa, self.anchor)
        return self


@dataclass(frozen=True)
class PanelShrinkage:
    """A core prior (``volforecast.ensemble.CorePrior``): a series' own coefficients shrunk
    towards ``panel``'s by ``shrunk_coef``. Pickled inside the base learners it fitted, so a
    model set carries the panel it borrowed from."""

    panel: PanelCore
    kappa: float = POOL_KAPPA
    anchor: float = POOL_LEVEL_ANCHOR

    def __call__(self, own: FloatArray, x: FloatArray, y: FloatArray) -> FloatArray:
        return shrunk_coef(own, self.panel, x, y, self.kappa, 0.0)

    def level_shift(self, x: FloatArray, y: FloatArray) -> float:
        return level_shift(self.panel, x, y, self.kappa, self.anchor)


@dataclass(frozen=True)
class PoolPriors:
    """The ensemble's ``core_priors`` (``volforecast.ensemble.CorePriors``) for one series'
    training rows ``dates``: the shrinkage towards ``panels[day]``, the panel on the pool's rows
    up to the day of the last row a fit sees. Built by ``for_fits`` for the fits the ensemble
    will make (``StackedEnsemble.fit_ends``), so it carries a few small panels, never the pool
    (it travels inside Dask pieces). A fit on a day when no pool series had ``MIN_PANEL_ROWS``
    rows yet (``None``) keeps its own core: an early out-of-fold fit of a series as old as its
    pool. The final fit must have a panel (``info``)."""

    dates: pd.DatetimeIndex
    panels: Mapping[pd.Timestamp, PanelCore | None]
    kappa: float = POOL_KAPPA
    exclude: str | None = None
    anchor: float = POOL_LEVEL_ANCHOR

    @classmethod
    def for_fits(
        cls,
        pool: PoolData,
        dates: pd.DatetimeIndex,
        fit_ends: Sequence[int],
        exclude: str | None = None,
        kappa: float = POOL_KAPPA,
        anchor: float = POOL_LEVEL_ANCHOR,
    ) -> PoolPriors:
        """The panels at the dates of the rows ``fit_ends`` (``exclude`` left out of each)."""
        panels: dict[pd.Timestamp, PanelCore | None] = {}
        for end in fit_ends:
            day = pd.Timestamp(dates[end])
            if day not in panels:
                try:
                    panels[day] = pool.panel_at(day, exclude=exclude)
                except ValueError:  # no pool series old enough yet
                    panels[day] = None
        return cls(dates, panels, kappa, exclude, anchor)

    def panel(self, last_row: int) -> PanelCore | None:
        return self.panels[pd.Timestamp(self.dates[last_row])]

    def __call__(self, last_row: int) -> PanelShrinkage | None:
        panel = self.panel(last_row)
        return None if panel is None else PanelShrinkage(panel, self.kappa, self.anchor)

    def info(self, universe: str, n_rows: int) -> PoolingInfo:
        """What the final fit on the first ``n_rows`` rows pooled with, for the set's files.

        Raises DataError when no pool series had ``MIN_PANEL_ROWS`` rows by its last day."""
        panel = self.panel(n_rows - 1)
        if panel is None or panel.through is None:
            raise DataError(
                f"--pool-universe {universe}: no pool series other than {self.exclude} has "
                f"{MIN_PANEL_ROWS} labeled rows by {self.dates[n_rows - 1].date()}, so there is "
                "no panel to pool with. Fix: pool with series of longer history, or train "
                "without --pool-universe."
            )
        alone = sum(p is None for p in self.panels.values())
        if alone:
            log.info("pool: %d out-of-fold fit(s) before any panel kept their own core", alone)
        return PoolingInfo(
            universe=universe, series=list(panel.symbols), panel_rows=panel.rows,
            panel_through=panel.through, kappa=self.kappa,
            own_weight=pool_weight(n_rows, self.kappa), level_anchor=self.anchor,
            long_run_log_vix=panel.vix_mean,
        )  # fmt: skip


def load_pool(
    settings: Settings, downloader: Downloader | None, today: dt.date, progress: Progress
) -> PoolData:
    """The ``--pool-universe`` series' labeled rows at ``settings.horizon``, from their first
    row (not the series' own ``--start``) to ``--end`` (csv: the files in ``--pool-data-dir``).
    A series that cannot be loaded is left out with a warning; none at all is a DataError."""
    if settings.pool_universe is None:
        raise ValueError("load_pool needs settings.pool_universe")
    symbols = settings.pool_symbols() or []
    here = settings.pool_data_dir or settings.pool_universe.parent
    spec = selection.ensemble_spec(settings)
    datasets, skipped, repaired = {}, [], 0
    progress(f"pool: loading {len(symbols)} series from {here}")
    # One line per pool series would bury the run's own log: the data layer's per-load line is
    # held back, and the pool reports every POOL_PROGRESS_EVERY series and a total instead.
    data_log = logging.getLogger("volforecast.data")
    level = data_log.level
    data_log.setLevel(max(level, logging.WARNING))
    try:
        for k, symbol in enumerate(symbols, start=1):
            # Every row the pool has up to --end, whatever the series' own --start: its long
            # history is what pooling lends (each panel still reads only rows up to its fit).
            one = settings.for_symbol(
                symbol, data_dir=here if settings.data_source.value == "csv" else settings.data_dir,
                pool_universe=None, start=POOL_START,
            )  # fmt: skip
            try:
                market = load_market_data(one, downloader=downloader, today=today)
            except VolforecastError as exc:
                skipped.append(f"{symbol} ({exc})")
                continue
            repaired += len(market.repaired)
            datasets[symbol] = labeled(build_dataset(market.frame, settings.horizon))
            if k % POOL_PROGRESS_EVERY == 0 and k < len(symbols):
                progress(f"pool: {k}/{len(symbols)} series loaded")
    finally:
        data_log.setLevel(level)
    for line in skipped:
        log.warning("pool: left out %s", line)
    if not datasets:
        raise DataError(
            f"--pool-universe {settings.pool_universe}: none of its {len(symbols)} series could "
            f"be loaded from {here}. Fix: point --pool-data-dir at their <symbol>_daily.csv files."
        )
    progress(
        f"pool: {len(datasets)} of {len(symbols)} series from {here}"
        + (f" ({repaired} bad ticks repaired by the bad-rows policy)" if repaired else "")
    )
    return PoolData.from_datasets(datasets, spec.core, spec.core_logs)


# One process's loaded pools: a universe train fits every symbol against the same pool, and a
# Dask worker trains many symbols. Keyed by what the load reads.
_POOLS: dict[tuple[object, ...], PoolData] = {}


def cached_pool(
    settings: Settings, downloader: Downloader | None, today: dt.date, progress: Progress
) -> PoolData:
    """``load_pool``, loaded once per process for the same pool, data and cut-off."""
    key = (
        settings.pool_universe, settings.pool_data_dir, settings.data_dir,
        settings.data_source, settings.horizon, settings.as_of,
        settings.bad_rows, downloader, today,
    )  # fmt: skip
    if key not in _POOLS:
        _POOLS.clear()  # one pool at a time: a panel's rows are large
        _POOLS[key] = load_pool(settings, downloader, today, progress)
    else:
        progress(f"pool: {len(_POOLS[key].dates)} series, already loaded in this process")
    return _POOLS[key]
