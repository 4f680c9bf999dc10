"""Walk-forward, out-of-sample forecasts: an expanding window refit on a fixed schedule.

At each refit point ``s`` (a position in the labeled rows) every model is fitted on the rows
before ``s - purge`` — so no training target, which looks ``horizon`` days ahead, reaches into
the block it then forecasts — and forecasts rows ``s .. s + refit_every - 1``. Every model sees
the same training rows and forecasts the same days.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from volforecast.ensemble import FloatArray, Progress
from volforecast.features import TARGET

REALIZED = "realized"


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
    """Refit points from position ``first`` to the end, every ``refit_every`` rows."""
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
    data: pd.DataFrame, blocks: Sequence[Block], forecasts: Mapping[str, Sequence[FloatArray]]
) -> pd.DataFrame:
    """The realized target and every model's forecasts (``forecasts[name][k]`` for block k)
    on the forecast rows, in date order."""
    pieces = []
    for k, block in enumerate(blocks):
        rows = data.iloc[block.start : block.stop]
        out = pd.DataFrame({REALIZED: rows[TARGET].to_numpy()}, index=rows.index)
        for name, per_block in forecasts.items():
            out[name] = per_block[k]
        pieces.append(out)
    return pd.concat(pieces)


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
