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
