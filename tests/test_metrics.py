from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from volforecast.metrics import (
    diebold_mariano,
    mae,
    mse_var,
    mz_r2,
    newey_west_lags,
    qlike,
    r2,
    rmse,
)


def test_metrics_match_hand_computed_values():
    y, p = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0])
    assert rmse(y, p) == pytest.approx(np.sqrt(4 / 3))
    assert mae(y, p) == pytest.approx(2 / 3)
    assert r2(y, p) == pytest.approx(1 - 4 / 2)


def test_qlike_is_zero_for_a_perfect_forecast_and_positive_otherwise():
    y = np.array([0.01, 0.02, 0.015])
    assert qlike(y, y) == pytest.approx(0.0, abs=1e-15)
    # sigma^2/h = 0.25 -> 0.25 - ln 0.25 - 1 = 0.636294
    assert qlike(np.array([0.01]), np.array([0.02])) == pytest.approx(0.25 - np.log(0.25) - 1)


def test_mse_var_and_mz_r2_match_hand_computed_values():
    y = np.array([0.01, 0.02, 0.03, 0.04])
    f = np.array([0.012, 0.018, 0.033, 0.037])
    assert mse_var(y, f) == pytest.approx(np.mean((y**2 - f**2) ** 2))
    slope, intercept = np.polyfit(f, y, 1)
    fitted = intercept + slope * f
    expected = 1 - np.sum((y - fitted) ** 2) / np.sum((y - y.mean()) ** 2)
    assert mz_r2(y, f) == pytest.approx(expected)


@pytest.mark.parametrize(("n", "horizon", "expected"), [(50, 5, 4), (3000, 5, 8), (3000, 22, 21)])
def test_newey_west_lags_are_at_least_horizon_minus_one(n, horizon, expected):
    assert newey_west_lags(n, horizon) == expected


def test_diebold_mariano_equals_mean_over_standard_error_when_losses_are_independent():
    rng = np.random.default_rng(0)
    d = rng.normal(-0.1, 1.0, 400)
    result = diebold_mariano(d, np.zeros_like(d), horizon=1)
    lags = result.lags
    centred = d - d.mean()
    lrv = centred @ centred / d.size + sum(
        2 * (1 - k / (lags + 1)) * (centred[k:] @ centred[:-k]) / d.size for k in range(1, lags + 1)
    )
    assert result.statistic == pytest.approx(d.mean() / np.sqrt(lrv / d.size))
    assert result.p_value == pytest.approx(2 * norm.sf(abs(result.statistic)))
    assert result.statistic < 0  # model 1 has the lower loss


def test_diebold_mariano_is_not_significant_when_losses_are_equal_in_distribution():
    rng = np.random.default_rng(1)
    result = diebold_mariano(rng.normal(1, 1, 2000), rng.normal(1, 1, 2000), horizon=5)
    assert result.p_value > 0.05


def test_holm_multiplies_the_kth_smallest_p_value_by_m_minus_k_plus_one_and_keeps_order():
    from volforecast.metrics import holm

    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> raised to 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_adjusted_p_values_at_one():
    from volforecast.metrics import holm

    assert holm([0.6, 0.9]) == [1.0, 1.0]


def test_qlike_leaves_out_days_of_zero_realized_volatility_and_counts_them():
    from volforecast.metrics import qlike_excluded, qlike_loss

    realized = np.array([0.01, 0.0, 0.02])
    forecast = np.array([0.01, 0.01, 0.01])
    losses = qlike_loss(realized, forecast)
    assert np.isnan(losses[1]) and losses[0] == 0.0
    assert qlike(realized, forecast) == pytest.approx(np.mean([0.0, 4.0 - np.log(4.0) - 1.0]))
    assert qlike_excluded(realized) == 1


def test_diebold_mariano_skips_days_a_loss_leaves_out():
    rng = np.random.default_rng(5)
    a, b = rng.normal(1.0, 0.1, 300), rng.normal(1.1, 0.1, 300)
    with_gap = a.copy()
    with_gap[10] = np.nan
    full = diebold_mariano(np.delete(a, 10), np.delete(b, 10), 5)
    assert diebold_mariano(with_gap, b, 5).statistic == pytest.approx(full.statistic)
