"""Walk-forward, out-of-sample forecasts: an expanding window refit on a fixed schedule.

At each refit point ``s`` (a position in the labeled rows) every model is fitted on the rows
before ``s - purge`` — so no training target, which looks ``horizon`` days ahead, reaches into
the block it then forecasts — and forecasts rows ``s .. s + refit_every - 1``. Every model sees
the same training rows and forecasts the same days.

``build_walk`` prepares one walk (a series at a horizon, its models and its refit schedule) for
``evaluate`` and ``select`` alike; ``run_walks`` runs any number of them on a Dask engine, one
model on one block per piece of work; ``walk_forward`` runs one in this process.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from volforecast import selection
from volforecast.blending import fit_shipped
from volforecast.config import Settings
from volforecast.data import MarketData
from volforecast.distributions import POINT, SEP, distribution_frame
from volforecast.engine import Engine, Piece
from volforecast.ensemble import FloatArray, StackedEnsemble
from volforecast.errors import DataError
from volforecast.features import FEATURE_COLUMNS, TARGET, build_dataset, labeled, log_returns
from volforecast.pooling import PanelCore, PoolData, PoolPriors
from volforecast.progress import Progress
from volforecast.splits import MIN_LABELED_ROWS

REALIZED = "realized"
ENSEMBLE = "ensemble"
# The ensemble as train --pool-universe fits it (evaluate --pool-universe).
ENSEMBLE_POOLED = "ensemble_pooled"
ENSEMBLE_VARIANTS: tuple[str, ...] = (ENSEMBLE_POOLED,)


class Forecaster(Protocol):
    @property
    def name(self) -> str: ...

    def fit(self, train: pd.DataFrame, returns: pd.Series) -> Any: ...

    def predict(self, rows: pd.DataFrame, returns: pd.Series) -> FloatArray: ...


@dataclass(frozen=True)
class Block:
    """One refit: training rows [0, train_end) and forecast rows [start, stop)."""

    train_end: int
    start: int
    stop: int


def schedule(n_rows: int, first: int, refit_every: int, purge: int) -> list[Block]:
    """Refit points from position ``first`` to the end, every ``refit_every`` rows, each
    training on the rows before ``start - purge``.

    Examples
    --------
    >>> [(b.train_end, b.start, b.stop) for b in schedule(10, 4, 3, purge=2)]
    [(2, 4, 7), (5, 7, 10)]
    """
    if refit_every < 1:
        raise ValueError("refit_every must be at least 1")
    if first - purge < 1:
        raise ValueError(f"no training rows before position {first} with a {purge}-row purge")
    return [
        Block(train_end=s - purge, start=s, stop=min(s + refit_every, n_rows))
        for s in range(first, n_rows, refit_every)
    ]


def forecast_block(
    model: Forecaster, data: pd.DataFrame, returns: pd.Series, block: Block
) -> FloatArray:
    """One model's out-of-sample forecasts of one block: fit on the rows before the purge,
    forecast the block's rows. Pure (the model is a fresh copy on every call that matters:
    a Dask task gets its own), so blocks and models can run in any order, anywhere."""
    model.fit(data.iloc[: block.train_end], returns)
    return model.predict(data.iloc[block.start : block.stop], returns)


def assemble(
    data: pd.DataFrame, blocks: Sequence[Block], forecasts: Mapping[str, Sequence[Any]]
) -> pd.DataFrame:
    """The realized target and every model's forecasts (``forecasts[name][k]`` for block k)
    on the forecast rows, in date order. A forecast with a distribution (a DataFrame,
    ``distributions.distribution_frame``) gives ``name`` its point column, if it has one, and
    ``name@column`` for each of the rest."""
    pieces = []
    for k, block in enumerate(blocks):
        rows = data.iloc[block.start : block.stop]
        out = pd.DataFrame({REALIZED: rows[TARGET].to_numpy()}, index=rows.index)
        for name, per_block in forecasts.items():
            value = per_block[k]
            if not isinstance(value, pd.DataFrame):
                out[name] = value
                continue
            for column in value.columns:
                key = name if column == POINT else f"{name}{SEP}{column}"
                out[key] = value[column].to_numpy()
        pieces.append(out)
    return pd.concat(pieces)


def point_forecasts(forecasts: pd.DataFrame) -> pd.DataFrame:
    """The realized target and the point forecasts, without any distribution's columns."""
    return forecasts.loc[:, [c for c in forecasts.columns if SEP not in c]]


def describe(data: pd.DataFrame, block: Block, k: int, n_blocks: int) -> str:
    train_end = data.index[block.train_end - 1].date()
    first, last = data.index[block.start].date(), data.index[block.stop - 1].date()
    return (
        f"refit {k}/{n_blocks}: train on {block.train_end} rows to {train_end}, "
        f"forecast {block.stop - block.start} days {first}..{last}"
    )


def walk_forward(
    data: pd.DataFrame,
    returns: pd.Series,
    models: Sequence[Forecaster],
    blocks: Sequence[Block],
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Out-of-sample forecasts of every model on every block's rows, plus the realized target,
    in this process, one block after another (``volforecast.engine`` runs the same pieces on
    Dask).

    ``data`` holds labeled rows (features and ``target``); ``returns`` the daily log returns
    by date, including the forecast dates (a model only reads them up to each forecast date).
    """
    say = progress or (lambda _m: None)
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be unique, got {names}")
    out: dict[str, list[FloatArray]] = {name: [] for name in names}
    for k, block in enumerate(blocks, start=1):
        say(describe(data, block, k, len(blocks)))
        for model in models:
            out[model.name].append(forecast_block(model, data, returns, block))
    return assemble(data, blocks, out)


class EnsembleForecaster:
    """The walk-forward face of the ensemble ``train`` builds (same class, same settings:
    ``selection.make_ensemble``); with ``distribution=True`` also its calibrated forecast
    distribution, as ``train`` stores it (``blending.fit_shipped``)."""

    def __init__(
        self,
        settings: Settings,
        name: str = ENSEMBLE,
        distribution: bool = False,
        panels: Mapping[pd.Timestamp, PanelCore | None] | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.distribution = distribution
        self.panels = panels

    def fit(self, train: pd.DataFrame, returns: pd.Series) -> EnsembleForecaster:
        self.model_: StackedEnsemble = selection.make_ensemble(self.settings)
        # With panels (``pooled_panels``), as ``train --pool-universe`` fits: every fold's core
        # shrunk towards the panel of the pool's rows up to that fold's last training day.
        priors = (
            PoolPriors(pd.DatetimeIndex(train.index), self.panels, exclude=self.settings.symbol)
            if self.panels is not None
            else None
        )
        self.model_.fit(train.loc[:, list(FEATURE_COLUMNS)], train[TARGET], core_priors=priors)
        if self.distribution:
            self.calibration_ = fit_shipped(
                train[TARGET].to_numpy(), self.model_.oof_forecast_, returns,
                pd.DatetimeIndex(train.index), self.settings,
            )  # fmt: skip
        return self

    def predict(self, rows: pd.DataFrame, returns: pd.Series) -> Any:
        point = self.model_.predict(rows.loc[:, list(FEATURE_COLUMNS)])
        if not self.distribution:
            return point
        known = returns.loc[: rows.index[-1]]
        dist = self.calibration_.distribution_on(point, known, rows.index)
        return distribution_frame(rows.index, dist, point)


def pooled_panels(
    settings: Settings, data: pd.DataFrame, blocks: Sequence[Block], pool: PoolData
) -> dict[pd.Timestamp, PanelCore | None]:
    """The panels a pooled ``EnsembleForecaster`` needs on a walk: at the last training row of
    every fit of every refit (``StackedEnsemble.fit_ends``), the walk's own series left out.
    Computed once here so that each Dask piece carries a few panels, not the pool."""
    ensemble = selection.make_ensemble(settings)
    ends = sorted({e for block in blocks for e in ensemble.fit_ends(block.train_end)})
    dates = pd.DatetimeIndex(data.index)
    return dict(PoolPriors.for_fits(pool, dates, ends, exclude=settings.symbol).panels)


@dataclass(frozen=True)
class Walk:
    """One walk-forward (a symbol at a horizon), ready to cut into pieces."""

    settings: Settings
    source: str
    data: pd.DataFrame
    returns: pd.Series
    blocks: list[Block]
    models: list[Any]

    @property
    def name(self) -> str:
        return f"{self.settings.symbol} h={self.settings.horizon}"


def build_walk(
    settings: Settings,
    market: MarketData,
    models: Sequence[Any],
    first_day: dt.date,
    *,
    first_flag: str = "--eval-start",
    start_flag: str = "--start",
) -> Walk:
    """One walk-forward of ``models`` on ``market`` (already cut to the period it may read) at
    ``settings.horizon``: forecasts from ``first_day`` to the data's end, refit every
    ``settings.refit_every`` rows with ``horizon`` rows purged. No model is fitted.

    Raises DataError, naming ``first_flag`` and ``start_flag``, when the first refit would
    have fewer than ``MIN_LABELED_ROWS`` training rows or nothing is left to forecast.
    """
    frame = market.frame
    data = labeled(build_dataset(frame, settings.horizon))
    returns = log_returns(frame["spy_adj_close"])
    name = f"{settings.symbol} h={settings.horizon}"
    if data.empty:
        until = f" to {frame.index[-1].date()}" if len(frame) else ""
        raise DataError(
            f"{name}: no labeled rows in {market.source} from {start_flag} {settings.start}"
            f"{until}. Fix: move {start_flag} earlier."
        )
    first = int(data.index.searchsorted(pd.Timestamp(first_day)))
    purge = settings.horizon
    if first >= len(data):
        raise DataError(
            f"{name}: no labeled rows on or after {first_flag} {first_day} (labeled rows end "
            f"{data.index[-1].date()}). Fix: move {first_flag} earlier."
        )
    if first - purge < MIN_LABELED_ROWS:
        raise DataError(
            f"{name}: only {max(first - purge, 0)} labeled rows before {first_flag} {first_day} "
            f"(labeled rows from {data.index[0].date()}); the first refit needs at least "
            f"{MIN_LABELED_ROWS}. Fix: move {first_flag} later or {start_flag} earlier."
        )
    blocks = schedule(len(data), first, settings.refit_every, purge)
    return Walk(settings, market.source, data, returns, blocks, list(models))


def run_walks(
    walks: Sequence[Walk], engine: Engine, progress: Progress, what: str
) -> list[pd.DataFrame | BaseException]:
    """Every walk-forward of ``walks`` on ``engine``, one model on one refit block per piece:
    each walk's forecasts (``assemble``), or the first error among its pieces."""
    pieces: list[Piece] = []
    owners: list[tuple[int, str, int]] = []  # (walk index, model name, block index)
    for w, walk in enumerate(walks):
        data, returns = engine.share(walk.data), engine.share(walk.returns)
        for k, block in enumerate(walk.blocks):
            for model in walk.models:
                label = f"{walk.name} refit {k + 1}/{len(walk.blocks)} {model.name}"
                piece = Piece(label, forecast_block, (model, data, returns, block), model.name)
                pieces.append(piece)
                owners.append((w, model.name, k))
    outcomes = engine.run(pieces, what, progress)
    per_walk: list[dict[str, list[Any]]] = [
        {m.name: [None] * len(walk.blocks) for m in walk.models} for walk in walks
    ]
    failed: dict[int, BaseException] = {}
    for (w, name, k), outcome in zip(owners, outcomes, strict=True):
        if outcome.error is not None:
            failed.setdefault(w, outcome.error)
        else:
            per_walk[w][name][k] = outcome.value
    return [
        failed[w] if w in failed else assemble(walk.data, walk.blocks, per_walk[w])
        for w, walk in enumerate(walks)
    ]
