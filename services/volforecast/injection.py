"""Faults injected into a replay, to measure whether and how fast the monitor notices them.

An ``Injection`` is a fault kind and the day it starts. ``inject`` changes what the loop sees
from that day on through the market data itself (the loop then loads, trains, monitors and
forecasts through the services' own code); the two faults of the model side are carried out
by the loop (``replaying.replay_injection``): it stops training, or publishes a wrong set.

Kinds (services/monitor/README.md, "Which alarm to trust"):

- ``frozen_price``: the price source repeats its last bar from the day on (dates go on);
- ``frozen_vix``: the VIX source does;
- ``vix_decimal``: VIX arrives divided by 100 (a decimal feed);
- ``price_x100``: prices arrive in cents;
- ``split``: an unadjusted 2:1 split: every price, the adjusted close included, halves;
- ``regime``: daily log returns and intraday log ranges twice as large from the day on, VIX
  unchanged (an honest loss of calibration);
- ``stopped``: no scheduled training on or after the day (the cron job died);
- ``wrong_set``: on the day, a set trained on another series (``--inject-other``, TLT by
  default) but labelled as this one is published (a training pointed at the wrong file).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from volforecast.data import MarketData
from volforecast.errors import ConfigError

PRICES = ("spy_open", "spy_high", "spy_low", "spy_close", "spy_adj_close")
DATA_KINDS = ("frozen_price", "frozen_vix", "vix_decimal", "price_x100", "split", "regime")
MODEL_KINDS = ("stopped", "wrong_set")
KINDS = (*DATA_KINDS, *MODEL_KINDS)


@dataclass(frozen=True)
class Injection:
    kind: str
    start: dt.date

    @property
    def name(self) -> str:
        return f"{self.kind}@{self.start}"


def parse_injections(text: str) -> list[Injection]:
    """``KIND@YYYY-MM-DD[,KIND@YYYY-MM-DD...]`` (``--inject``).

    Examples
    --------
    >>> parse_injections("split@2015-06-01, stopped@2019-03-04")
    [Injection(kind='split', start=datetime.date(2015, 6, 1)), Injection(kind='stopped', start=datetime.date(2019, 3, 4))]
    """
    out = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        kind, sep, day = item.partition("@")
        if not sep or kind not in KINDS:
            raise ConfigError(
                f"--inject {item!r}: expected KIND@YYYY-MM-DD with KIND one of {', '.join(KINDS)}."
            )
        try:
            out.append(Injection(kind, dt.date.fromisoformat(day)))
        except ValueError:
            raise ConfigError(f"--inject {item!r}: {day!r} is not a YYYY-MM-DD date.") from None
    if not out:
        raise ConfigError("--inject: give at least one KIND@YYYY-MM-DD.")
    return out


def _doubled(frame: pd.DataFrame, after: pd.Series) -> pd.DataFrame:
    """Log returns and intraday log ranges twice as large on the rows in ``after``."""
    out = frame.copy()
    adj = np.log(frame["spy_adj_close"])
    first = int(np.argmax(after.to_numpy()))
    base = adj.iloc[first - 1]
    new_adj = np.exp(base + 2.0 * (adj - base))
    for col in ("spy_open", "spy_high", "spy_low", "spy_close"):
        # Each price keeps its place in the bar, twice as far (in logs) from the close.
        rel = np.log(frame[col] / frame["spy_close"])
        close = new_adj * frame["spy_close"] / frame["spy_adj_close"]
        out.loc[after, col] = (close * np.exp(2.0 * rel))[after]
    out.loc[after, "spy_adj_close"] = new_adj[after]
    return out


def inject(market: MarketData, injection: Injection) -> MarketData:
    """The market as the loop sees it under ``injection`` (model-side kinds: unchanged)."""
    if injection.kind in MODEL_KINDS:
        return market
    frame = market.frame.copy()
    after = pd.Series(frame.index >= pd.Timestamp(injection.start), index=frame.index)
    if not after.any() or after.all():
        raise ConfigError(
            f"--inject {injection.name}: the day must fall inside the data "
            f"({market.first_date}..{market.last_date}), after its first row."
        )
    last = frame.loc[~after].iloc[-1]
    kind = injection.kind
    if kind == "frozen_price":
        for col in PRICES:
            frame.loc[after, col] = last[col]
    elif kind == "frozen_vix":
        frame.loc[after, "vix_close"] = last["vix_close"]
    elif kind == "vix_decimal":
        frame.loc[after, "vix_close"] = frame.loc[after, "vix_close"] / 100.0
    elif kind == "price_x100":
        frame.loc[after, list(PRICES)] = frame.loc[after, list(PRICES)] * 100.0
    elif kind == "split":
        frame.loc[after, list(PRICES)] = frame.loc[after, list(PRICES)] * 0.5
    elif kind == "regime":
        frame = _doubled(frame, after)
    return dataclasses.replace(
        market, frame=frame, source=f"{market.source}, with {injection.name} injected"
    )
