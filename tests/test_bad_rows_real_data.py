"""The bad-rows policy on the five universe files a new user could not use before (real data in
../shared/data/universe, read in place, never copied): a crash the closes confirm is kept as it
is, bad ticks are repaired from the closes, and ``fail`` names the row."""

from __future__ import annotations

import pytest

from volforecast.config import build_settings
from volforecast.data import load_market_data
from volforecast.errors import DataError

from .conftest import SHARED_DATA

UNIVERSE = SHARED_DATA / "universe"
pytestmark = pytest.mark.skipif(
    not (UNIVERSE / "aig_daily.csv").is_file(),
    reason="../shared/data/universe is not beside the checkout",
)


def _load(symbol: str, bad_rows: str = "repair"):  # type: ignore[no-untyped-def]
    settings = build_settings(
        data_source="csv", data_dir=UNIVERSE, symbol=symbol, start="1993-01-01", bad_rows=bad_rows
    )
    return load_market_data(settings)


def test_aig_crash_day_is_kept_with_its_whole_range_when_the_closes_confirm_it():
    market = _load("AIG")
    day = market.frame.loc["2008-09-16"]
    assert (day["spy_high"], day["spy_low"], day["spy_close"]) == (84.8983, 20.2548, 60.7597)
    assert market.repaired == []


@pytest.mark.parametrize(
    ("symbol", "day", "field", "before", "after"),
    [
        ("LOW", "2009-02-05", "spy_high", 49.0579, 15.2578),
        ("BEN", "2002-09-18", "spy_low", 0.709999, 7.19543),
        ("PCG", "1999-10-15", "spy_low", 1.7777, 17.826),
        ("LUMN", "2010-05-06", "spy_low", 4.0353, 13.3135),
    ],
)
def test_bad_tick_is_repaired_from_the_closes_and_named_when_no_close_confirms_it(
    symbol, day, field, before, after
):
    market = _load(symbol)
    assert market.frame.loc[day, field] == after
    assert any(r.startswith(day) and f"{before:g} -> {after:g}" in r for r in market.repaired)
    assert market.frame.loc[day, "spy_close"] > 0  # the day and its close are kept


def test_fail_policy_names_the_row_of_a_bad_tick():
    with pytest.raises(DataError, match=r"\(2009-02-05\) has high 49.0579"):
        _load("LOW", bad_rows="fail")
