"""Calibration of volatility forecasts into distributions (volforecast.calibration): conformal
quantiles of log residuals, and FHS VaR/ES multipliers, on seeded synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from volforecast.calibration import (
    ReturnRisk,
    VolatilityCalibration,
    conformal_quantile,
)


def test_conformal_quantile_rounds_the_rank_outwards_on_both_sides():
    scores = np.arange(1.0, 100.0)  # n = 99
    assert conformal_quantile(scores, 0.95) == 95.0  # ceil(100 * 0.95)
    assert conformal_quantile(scores, 0.05) == 5.0  # floor(100 * 0.05)
    assert conformal_quantile(scores, 0.999) == 99.0  # clipped to n


def test_conformal_quantile_raises_when_there_is_nothing_to_calibrate_on():
    with pytest.raises(ValueError, match="no calibration scores"):
        conformal_quantile([], 0.5)


def test_volatility_quantiles_cover_their_levels_when_residuals_are_exchangeable():
    rng = np.random.default_rng(23)
    forecast = np.exp(rng.normal(-4.6, 0.3, 2000))
    realized = forecast * np.exp(rng.normal(0.0, 0.25, 2000))
    cal = VolatilityCalibration.fit(realized, forecast)
    new_f = np.exp(rng.normal(-4.6, 0.3, 20000))
    new_y = new_f * np.exp(rng.normal(0.0, 0.25, 20000))
    q = cal.quantiles(new_f)
    inside_90 = np.mean((new_y >= q[0.05]) & (new_y <= q[0.95]))
    inside_50 = np.mean((new_y >= q[0.25]) & (new_y <= q[0.75]))
    assert inside_90 == pytest.approx(0.90, abs=0.015)
    assert inside_50 == pytest.approx(0.50, abs=0.02)
    assert cal.n == 2000


def test_volatility_calibration_leaves_out_days_of_zero_realized_volatility():
    cal = VolatilityCalibration.fit([0.0, 0.01, 0.02], [0.01, 0.01, 0.01], levels=(0.5,))
    assert cal.n == 2


def test_return_risk_multipliers_are_the_normal_ones_when_standardized_returns_are_normal():
    rng = np.random.default_rng(7)
    sigma = np.exp(rng.normal(-4.6, 0.3, 200_000))
    returns = sigma * np.sqrt(5) * rng.standard_normal(200_000)
    risk = ReturnRisk.fit(returns, sigma, horizon=5)
    assert risk.var_multipliers[0.99] == pytest.approx(norm.ppf(0.99), abs=0.03)
    assert risk.var_multipliers[0.95] == pytest.approx(norm.ppf(0.95), abs=0.02)
    es_99 = norm.pdf(norm.ppf(0.99)) / 0.01  # 2.665
    assert risk.es_multipliers[0.99] == pytest.approx(es_99, abs=0.04)
    assert risk.var([0.01])[0.99][0] == pytest.approx(0.01 * np.sqrt(5) * norm.ppf(0.99), rel=0.02)
