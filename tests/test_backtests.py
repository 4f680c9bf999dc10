"""Backtests of forecast distributions (volforecast.backtests): coverage, pinball, Winkler,
Kupiec, Christoffersen and the Basel traffic light, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

from volforecast import backtests


def test_kupiec_pof_matches_the_likelihood_ratio_computed_by_hand_when_5_of_250_exceed():
    lr = -2 * (245 * np.log(0.99) + 5 * np.log(0.01) - 245 * np.log(0.98) - 5 * np.log(0.02))
    assert lr == pytest.approx(1.9568, abs=1e-4)
    got = backtests.kupiec_pof([True] * 5 + [False] * 245, 0.01)
    assert got == pytest.approx(float(chi2.sf(lr, 1)))


def test_kupiec_pof_is_one_when_the_rate_equals_p_exactly():
    assert backtests.kupiec_pof([True] * 10 + [False] * 990, 0.01) == pytest.approx(1.0)


def test_kupiec_pof_rejects_when_there_are_no_exceedances_in_a_long_sample():
    # No exceedance in 1,000 days of a 99% VaR: LR = -2 * 1000 * ln(0.99) = 20.1.
    assert backtests.kupiec_pof([False] * 1000, 0.01) == pytest.approx(
        chi2.sf(20.1007, 1), rel=1e-3
    )


def test_christoffersen_independence_rejects_clustered_exceedances_and_keeps_spread_ones():
    spread = ([True] + [False] * 49) * 5
    clustered = [True] * 5 + [False] * 245
    p_ind_spread, p_cc_spread = backtests.christoffersen(spread, 0.02)
    p_ind_clustered, _ = backtests.christoffersen(clustered, 0.02)
    assert p_ind_spread > 0.5 and p_cc_spread > 0.5
    assert p_ind_clustered < 1e-3


def test_christoffersen_conditional_coverage_adds_the_rate_test_with_two_degrees():
    hits = ([True] + [False] * 24) * 8  # 8 in 200: rate 4% against 1%, none consecutive
    p_ind, p_cc = backtests.christoffersen(hits, 0.01)
    lr_pof = chi2.isf(backtests.kupiec_pof(hits, 0.01), 1)
    lr_ind = chi2.isf(p_ind, 1)
    assert p_cc == pytest.approx(chi2.sf(lr_pof + lr_ind, 2), rel=1e-6)


@pytest.mark.parametrize(("count", "zone"), [(0, "green"), (4, "green"), (5, "yellow"),
                                             (9, "yellow"), (10, "red")])  # fmt: skip
def test_basel_zone_follows_the_traffic_light_at_and_around_its_bounds(count, zone):
    assert backtests.basel_zone(count) == zone


def test_basel_green_share_is_none_when_the_backtest_is_shorter_than_a_window():
    assert backtests.basel_green_share([False] * 249) is None


def test_coverage_counts_both_ends_of_the_interval_as_inside():
    assert backtests.coverage([1.0, 2.0], [1.0, 0.0], [1.5, 2.0]) == 1.0


def test_pinball_averages_the_quantile_losses_over_levels():
    realized = [1.0, 3.0]
    q = {0.1: [2.0, 2.0], 0.9: [2.0, 2.0]}
    # level 0.1: (0.9 * 1 + 0.1 * 1) / 2 = 0.5; level 0.9: (0.1 * 1 + 0.9 * 1) / 2 = 0.5
    assert backtests.pinball(realized, q) == pytest.approx(0.5)


def test_winkler_is_the_width_when_every_value_is_inside():
    assert backtests.winkler([1.0, 1.5], [0.5, 0.5], [2.0, 2.0], alpha=0.1) == pytest.approx(1.5)


def test_green_max_is_the_basel_count_when_the_var_is_99_percent():
    assert backtests.green_max(0.01) == backtests.BASEL_GREEN_MAX == 4
    assert backtests.green_max(0.05) == 17


def test_mcneil_frey_rejects_when_losses_beyond_the_var_exceed_the_es():
    rng = np.random.default_rng(5)
    loss = 3.0 + rng.uniform(0.5, 1.5, 40)  # every day an exceedance, 1 over the ES on average
    mean, p = backtests.mcneil_frey(loss, es=np.full(40, 3.0), var=np.full(40, 2.0),
                                    scale=np.ones(40))  # fmt: skip
    assert mean == pytest.approx(1.0, abs=0.1)
    assert p < 0.001


def test_mcneil_frey_returns_no_evidence_when_fewer_than_two_exceedances():
    assert backtests.mcneil_frey([5.0, 0.0], [3.0, 3.0], [2.0, 2.0], [1.0, 1.0]) == (0.0, 1.0)


def test_central_pairs_skips_levels_without_a_mirror():
    assert backtests.central_pairs([0.05, 0.1, 0.5, 0.95]) == {"0.9": (0.05, 0.95)}


def test_score_distribution_has_evaluates_keys_and_no_nan_when_the_backtest_is_short():
    rng = np.random.default_rng(9)
    n = 100  # under one Basel window
    y = np.exp(rng.normal(-4.6, 0.3, n))
    dist = {f"q{lv:g}": y * m for lv, m in zip((0.05, 0.25, 0.5, 0.75, 0.95),
                                                (0.5, 0.8, 1.0, 1.2, 1.6), strict=True)}  # fmt: skip
    loss = rng.normal(0, 0.01, n)
    loss[-1] = np.nan  # the next day is not known yet
    dist |= {"var0.95": np.full(n, 0.016), "var0.99": np.full(n, 0.023),
             "es0.95": np.full(n, 0.02), "es0.99": np.full(n, 0.027), "scale": np.full(n, 0.01)}  # fmt: skip
    out = backtests.score_distribution(y, loss, dist, (0.05, 0.25, 0.5, 0.75, 0.95), (0.95, 0.99))
    assert set(out) == {"days", "coverage", "pinball", "winkler_90", "var", "es"}
    assert set(out["coverage"]) == {"0.5", "0.9"}
    assert out["var"]["0.99"]["days"] == n - 1
    assert out["var"]["0.99"]["green_share"] is None
    assert set(out["var"]["0.99"]) == {"exceedances", "days", "kupiec_p", "christoffersen_p",
                                       "conditional_coverage_p", "green_share"}  # fmt: skip
    flat = [v for d in (out["var"]["0.95"], out["es"]["0.99"]) for v in d.values() if v is not None]
    assert np.isfinite([*flat, out["pinball"], out["winkler_90"]]).all()
