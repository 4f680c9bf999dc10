from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from volforecast.data import align, validate_prices
from volforecast.features import (
    FEATURE_COLUMNS,
    TARGET,
    WARMUP_ROWS,
    build_dataset,
    build_features,
    realized_vol_target,
)

from .conftest import synthetic_market


def _zigzag_frame(n: int = 80) -> pd.DataFrame:
    """Returns alternate +1% / -1%; high/low span 2% around the close; VIX fixed at 20."""
    r = np.where(np.arange(n) % 2 == 0, 0.01, -0.01)
    r[0] = 0.0
    close = 100 * np.exp(np.cumsum(r))
    idx = pd.DatetimeIndex(pd.bdate_range("2020-01-01", periods=n), name="date")
    return pd.DataFrame(
        {
            "spy_open": close,
            "spy_high": close * np.exp(0.01),
            "spy_low": close * np.exp(-0.01),
            "spy_close": close,
            "spy_adj_close": close,
            "vix_close": 20.0,
        },
        index=idx,
    )


def _market(n_days: int = 400, seed: int = 3) -> pd.DataFrame:
    spy, vix = synthetic_market(n_days=n_days, seed=seed)
    return align(validate_prices(spy, "spy"), validate_prices(vix, "vix"))


def test_build_features_returns_twenty_prefixed_columns():
    out = build_features(_zigzag_frame())
    assert list(out.columns) == list(FEATURE_COLUMNS)
    assert len(FEATURE_COLUMNS) == 20
    assert all(c.startswith(("spy_", "vix_")) for c in FEATURE_COLUMNS)
    assert {"spy_ret_1d", "spy_ret_5d"} <= set(FEATURE_COLUMNS)


def test_build_features_matches_hand_values_when_returns_alternate():
    row = build_features(_zigzag_frame()).iloc[-1]  # last row: return of -0.01 (odd index 79)
    expected = {
        "spy_ret_1d": -0.01,
        "spy_ret_5d": -0.01,
        "spy_ret_22d": 0.0,
        "spy_rv_1d": 0.01,
        "spy_rv_5d": 0.01,
        "spy_rv_22d": 0.01,
        "spy_rv_66d": 0.01,
        "spy_downside_rv_22d": 0.01 / np.sqrt(2),
        "spy_parkinson_1d": 0.02 / np.sqrt(4 * np.log(2)),  # 0.0120112
        "spy_parkinson_22d": 0.02 / np.sqrt(4 * np.log(2)),
        "spy_garman_klass_5d": np.sqrt(0.5 * 0.02**2),  # open == close
        "spy_overnight_rv_5d": 0.01,  # each open equals the previous close times e^{±0.01}
        "vix_level": 0.20 / np.sqrt(252),  # 0.0125988
        "vix_chg_1d": 0.0,
        "vix_chg_5d": 0.0,
        "vix_rel_22d": 0.0,
        "vix_rv_spread": 0.20 / np.sqrt(252) - 0.01,
        "vix_rv_ratio_5d": np.log(0.20 / np.sqrt(252) / 0.01),  # 0.231049
    }
    for name, value in expected.items():
        assert row[name] == pytest.approx(value, abs=1e-12), name


def test_build_features_gives_drawdown_zero_at_a_new_high_and_negative_below_it():
    frame = _zigzag_frame()
    out = build_features(frame)
    assert out["spy_drawdown_66d"].iloc[-2] == pytest.approx(
        0.0, abs=1e-12
    )  # on a +1% day: the high
    assert out["spy_drawdown_66d"].iloc[-1] == pytest.approx(-0.01, abs=1e-12)


def test_realized_vol_target_is_forward_rms_of_log_returns():
    adj = pd.Series([100.0, 101.0, 99.0, 100.0, 102.0])
    r = np.diff(np.log(adj.to_numpy()))
    target = realized_vol_target(adj, horizon=2)
    assert target.iloc[0] == pytest.approx(np.sqrt((r[0] ** 2 + r[1] ** 2) / 2))
    assert target.iloc[2] == pytest.approx(np.sqrt((r[2] ** 2 + r[3] ** 2) / 2))
    assert target.iloc[3:].isna().all()


def test_build_dataset_leaves_last_horizon_rows_unlabeled():
    data = build_dataset(_market(), horizon=5)
    assert data[TARGET].isna().sum() == 5
    assert data[TARGET].iloc[-5:].isna().all()
    assert not data[list(FEATURE_COLUMNS)].isna().any().any()


def test_build_dataset_drops_warmup_rows():
    market = _market()
    data = build_dataset(market, horizon=5)
    assert data.index[0] == market.index[WARMUP_ROWS - 1]


@pytest.mark.parametrize("cut", [120, 200, 333])
def test_features_unchanged_at_or_before_t_when_later_rows_are_appended_or_altered(cut):
    market = _market(seed=cut)
    before = build_features(market.iloc[:cut])
    later = market.copy()
    rng = np.random.default_rng(cut)
    shock = np.exp(rng.normal(0, 0.2, len(later) - cut))
    for col in ("spy_open", "spy_high", "spy_low", "spy_close", "spy_adj_close", "vix_close"):
        later.iloc[cut:, later.columns.get_loc(col)] *= shock
    after = build_features(later)
    pd.testing.assert_frame_equal(after.iloc[:cut], before)


def test_target_at_t_depends_only_on_the_next_horizon_days():
    market = _market()
    base = build_dataset(market, 5)[TARGET]
    changed = market.copy()
    changed.iloc[300:, changed.columns.get_loc("spy_adj_close")] *= 1.5  # a jump at row 300
    moved = build_dataset(changed, 5)[TARGET]
    position = market.index[299]
    pd.testing.assert_series_equal(moved.loc[: market.index[293]], base.loc[: market.index[293]])
    assert moved.loc[position] != base.loc[position]
