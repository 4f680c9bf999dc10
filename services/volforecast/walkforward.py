"""Walk-forward, out-of-sample forecasts: an expanding window refit on a fixed schedule.

At each refit point ``s`` (a position in the labeled rows) every model is fitted on the rows
before ``s - purge`` — so no training target, which looks ``horizon`` days ahead, reaches into
the block it then forecasts — and forecasts rows ``s .. s + refit_every - 1``. Every model sees
the same training rows and forecasts the same days.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def walk_forward(
    data: pd.DataFrame,
    returns: pd.Series,
    models: Sequence[Forecaster],
    blocks: Sequence[Block],
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Out-of-sample forecasts of every model on every block's rows, plus the realized target.

    ``data`` holds labeled rows (features and ``target``); ``returns`` the daily log returns
    by date, including the forecast dates (a model only reads them up to each forecast date).
    """
    say = progress or (lambda _m: None)
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be unique, got {names}")
    pieces = []
    for k, block in enumerate(blocks, start=1):
        train = data.iloc[: block.train_end]
        rows = data.iloc[block.start : block.stop]
        say(
            f"refit {k}/{len(blocks)}: train on {len(train)} rows to {train.index[-1].date()}, "
            f"forecast {len(rows)} days {rows.index[0].date()}..{rows.index[-1].date()}"
        )
        out = pd.DataFrame({REALIZED: rows[TARGET].to_numpy()}, index=rows.index)
        for model in models:
            model.fit(train, returns)
            out[model.name] = model.predict(rows, returns)
        pieces.append(out)
    return pd.concat(pieces)
