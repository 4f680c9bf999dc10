"""Feed faults: what the monitor checks in the bars that arrived since its last look, before
it scores any model on them. Pure functions of the aligned market frame.

A fault is something a market does not do, so that reporting it as model drift would send the
on-call quant after the wrong problem:

- **frozen price bars**: a bar whose open, high, low and close all equal the previous bar's
  (the source repeats its last bar). Never seen in SPY, QQQ, TLT, GLD, VTI, AGG, IEF or TIP
  since their starts; 13 times in EWJ and twice in IYR in their thin early years (measured:
  services/monitor/README.md, "Which alarm to trust").
- **frozen VIX**: more than ``MAX_VIX_FILL`` repeats in a row of the same VIX close. The data
  layer itself carries VIX over up to ``MAX_VIX_FILL`` missing days, and a VIX that does not
  move for a day happens (47 times in SPY's 8,222 days), so a frozen VIX is told from a quiet
  one only on its fourth frozen bar.
- **a jump no market makes**: a one-day move of the adjusted close larger than
  ``JUMP_LOG`` (x1.5 either way) and larger than ``JUMP_SIGMAS`` times its RiskMetrics
  volatility, or a VIX move beyond x3 (the data layer's plausibility bound). An unadjusted
  2:1 split (x0.5), prices quoted in cents (x100) or VIX as a decimal (x0.01) are all such
  jumps. In 190 real series (1.5 million days) 16 stock days qualify (AES on 2001-09-26, DAL
  on 2001-09-17, ...): real crashes of single stocks, none in an ETF or index fund.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from volforecast.calibration import ewma_volatility
from volforecast.data import MAX_DAILY_FACTOR, MAX_VIX_FILL
from volforecast.errors import DataFaultError
from volforecast.features import log_returns

PRICE_BAR = ("spy_open", "spy_high", "spy_low", "spy_close")
JUMP_LOG = math.log(1.5)
JUMP_SIGMAS = 12.0


def feed_faults(frame: pd.DataFrame, since: pd.Timestamp | None) -> list[str]:
    """Every fault in the bars of ``frame`` dated after ``since`` (all bars when None), one
    plain line each, oldest first. Each bar is judged against the bars before it, which may
    be older than ``since``."""
    if frame.empty:
        return []
    new = frame.index > since if since is not None else np.ones(len(frame), dtype=bool)
    found: list[tuple[pd.Timestamp, str]] = []
    bars = frame.loc[:, list(PRICE_BAR)]
    repeated = (bars.diff() == 0).all(axis=1).to_numpy() & new
    for day in frame.index[repeated]:
        found.append((day, f"{day.date()}: the price bar repeats the previous one (open, high, "
                           "low and close unchanged): a frozen feed"))  # fmt: skip
    vix = frame["vix_close"]
    same = (vix.diff() == 0).to_numpy()
    run = np.zeros(len(vix), dtype=int)
    for i in range(1, len(vix)):
        run[i] = run[i - 1] + 1 if same[i] else 0
    frozen_vix = (run > MAX_VIX_FILL) & new
    for day in frame.index[frozen_vix]:
        found.append((day, f"{day.date()}: VIX has closed at {vix.loc[day]:g} for "
                           f"{run[frame.index.get_loc(day)] + 1} bars in a row: a frozen feed"))  # fmt: skip
    r = log_returns(frame["spy_adj_close"])
    sigma = ewma_volatility(r).shift(1).reindex(frame.index)
    big = (r.abs() > JUMP_LOG) & (r.abs() > JUMP_SIGMAS * sigma.fillna(0.0))
    for day in frame.index[big.to_numpy() & new]:
        found.append((day, f"{day.date()}: the adjusted close moved x{math.exp(r.loc[day]):.3g} "
                           f"in a day ({r.loc[day] / sigma.loc[day]:+.0f} times its volatility): an "
                           "unadjusted split, a unit change or a bad print"))  # fmt: skip
    v = np.log(vix).diff()
    for day in frame.index[(v.abs() > math.log(MAX_DAILY_FACTOR)).to_numpy() & new]:
        found.append((day, f"{day.date()}: VIX moved x{math.exp(v.loc[day]):.3g} in a day: a "
                           "unit change (VIX as a decimal?) or a bad print"))  # fmt: skip
    return [line for _, line in sorted(found, key=lambda item: item[0])]


def check_feed(
    frame: pd.DataFrame,
    since: pd.Timestamp | None,
    origin: str,
    accepted_through: dt.date | None = None,
) -> None:
    """Raise DataFaultError (exit 13) naming every fault in the bars after ``since``, and
    after ``accepted_through`` (``--accept-data-through``: bars a user confirmed real)."""
    if accepted_through is not None:
        accepted = pd.Timestamp(accepted_through)
        since = accepted if since is None else max(since, accepted)
    faults = feed_faults(frame, since)
    if faults:
        raise DataFaultError(
            f"{origin}: the feed has {len(faults)} fault(s) in the bars since the last check: "
            + "; ".join(faults)
            + ". Nothing was scored. Fix: correct the source (a frozen or mis-scaled feed, an "
            "unadjusted split) and run again; a real move of that size can be confirmed with "
            "--accept-data-through DAY (VOLF_ACCEPT_DATA_THROUGH)."
        )
