"""Fault injection (volforecast.injection, replaying.replay_injection): each fault kind,
injected into a short replay of a seeded synthetic market, is caught by the signal built for
it, through the services' own train and monitor."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from volforecast.config import build_settings
from volforecast.data import MarketData, align, validate_prices
from volforecast.errors import ConfigError
from volforecast.injection import KINDS, Injection, inject, parse_injections
from volforecast.replaying import INJECTION_LEAD, SIGNALS, replay_injection

from .conftest import synthetic_market

FAULT_DAY = 860  # of 900 synthetic days: room for the lead and the watched window


def _market(seed: int) -> MarketData:
    spy, vix = synthetic_market(n_days=900, seed=seed)
    return MarketData(align(validate_prices(spy, "s"), validate_prices(vix, "v")), "synthetic")


@pytest.fixture(scope="module")
def markets() -> tuple[MarketData, MarketData]:
    return _market(7), _market(99)


def _day(market: MarketData) -> dt.date:
    return market.frame.index[FAULT_DAY].date()


def test_parse_injections_names_the_kinds_when_one_is_unknown():
    with pytest.raises(ConfigError, match="KIND one of frozen_price"):
        parse_injections("meteor@2015-01-02")


def test_inject_changes_nothing_before_the_fault_day(markets):
    market, _ = markets
    day = _day(market)
    for kind in KINDS:
        seen = inject(market, Injection(kind, day)).frame
        before = seen.index < pd.Timestamp(day)
        pd.testing.assert_frame_equal(seen.loc[before], market.frame.loc[before])


def test_inject_regime_doubles_the_daily_log_returns_from_the_fault_day(markets):
    market, _ = markets
    day = pd.Timestamp(_day(market))
    seen = inject(market, Injection("regime", day.date())).frame
    r_seen = np.log(seen["spy_adj_close"]).diff()
    r_real = np.log(market.frame["spy_adj_close"]).diff()
    after = seen.index >= day
    np.testing.assert_allclose(r_seen[after], 2 * r_real[after], rtol=1e-9)
    np.testing.assert_array_equal(seen["vix_close"], market.frame["vix_close"])


# The signal each kind exists to be caught by, and the latest delay (trading days) allowed.
CAUGHT_BY = {
    "frozen_price": ("data_fault", 0),
    "frozen_vix": ("data_fault", 3),  # told from a quiet VIX on its fourth frozen bar
    "vix_decimal": ("data_fault", 0),
    "price_x100": ("data_fault", 0),
    "split": ("data_fault", 0),
    "regime": ("advice", 10),
    "stopped": ("set_age", 10),
    "wrong_set": ("lineage", 0),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_each_fault_kind_is_caught_by_its_signal_when_injected_into_a_short_replay(
    markets, tmp_path, kind
):
    market, other = markets
    settings = build_settings(models_dir=tmp_path / "m", train_every=20, lock_timeout=30)
    delays = replay_injection(settings, market, Injection(kind, _day(market)), other)
    assert set(delays) == set(SIGNALS)
    signal, latest = CAUGHT_BY[kind]
    assert delays[signal] is not None and delays[signal] <= latest, delays
    if kind == "stopped":  # the age check fires on the day the set passes its maximum age
        assert delays["set_age"] == settings.max_set_age + 1 - INJECTION_LEAD
