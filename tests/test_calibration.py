"""Calibration of volatility forecasts into distributions (volforecast.calibration): conformal
quantiles of log residuals, FHS VaR/ES multipliers and the stored calibration, on seeded
synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from volforecast.calibration import (
    CalibrationMethod,
    ForecastCalibration,
    ReturnRisk,
    VolatilityCalibration,
    conformal_quantile,
    ewma_volatility,
    forward_returns,
    risk_scale,
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


def test_volatility_quantiles_widen_on_turbulent_days_when_binned_by_forecast_level():
    rng = np.random.default_rng(5)
    forecast = np.exp(rng.normal(-4.6, 0.4, 3000))
    # Residuals twice as wide above the median forecast as below it.
    wide = forecast > np.median(forecast)
    realized = forecast * np.exp(rng.normal(0.0, 0.2, 3000) * np.where(wide, 2.0, 1.0))
    cal = VolatilityCalibration.fit(realized, forecast, bins=2)
    assert cal.bins == 2
    assert cal.log_forecast_edges[0] == pytest.approx(np.log(np.median(forecast)))
    calm, turbulent = cal.bin_quantiles
    assert calm[0.95] == pytest.approx(1.645 * 0.2, abs=0.03)
    assert turbulent[0.95] == pytest.approx(1.645 * 0.4, abs=0.05)
    q = cal.quantiles([np.exp(-5.0), np.exp(-4.0)])[0.95]
    assert q[0] == pytest.approx(np.exp(-5.0) * np.exp(calm[0.95]))
    assert q[1] == pytest.approx(np.exp(-4.0) * np.exp(turbulent[0.95]))


def test_volatility_binned_quantiles_cover_their_levels_in_every_bin_when_exchangeable():
    rng = np.random.default_rng(29)

    def draw(n):
        f = np.exp(rng.normal(-4.6, 0.4, n))
        width = 0.15 + 0.2 * (np.log(f) + 4.6 > 0)
        return f * np.exp(rng.normal(0.0, 1.0, n) * width), f  # realized, forecast

    cal = VolatilityCalibration.fit(*draw(3000), bins=3)
    new_y, new_f = draw(30000)
    q = cal.quantiles(new_f)
    inside = (new_y >= q[0.05]) & (new_y <= q[0.95])
    group = np.searchsorted(cal.log_forecast_edges, np.log(new_f), side="right")
    for b in range(3):
        assert inside[group == b].mean() == pytest.approx(0.90, abs=0.02)


def test_volatility_calibration_refuses_fewer_than_one_bin():
    with pytest.raises(ValueError, match="bins must be at least 1"):
        VolatilityCalibration.fit([0.01, 0.02], [0.01, 0.01], bins=0)


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


def _window(n=1500, seed=11, horizon=5):
    """A seeded market: returns with a slow volatility cycle, and a noisy forecast of it."""
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2010-01-01", periods=n)
    sigma = 0.01 * np.exp(0.4 * np.sin(np.arange(n) / 60.0))
    returns = pd.Series(sigma * rng.standard_t(5, n) * np.sqrt(3 / 5), index=index)
    realized = returns.pow(2).rolling(horizon).mean().shift(-horizon).pow(0.5).to_numpy()
    forecast = sigma * np.exp(rng.normal(0, 0.1, n))
    forecast[:200] = np.nan  # the first rows have no out-of-fold forecast
    return returns, index, realized, forecast


def test_forecast_calibration_round_trips_through_plain_numbers_when_stored():
    returns, index, realized, forecast = _window()
    rows = slice(0, 1400)  # every training row's target window is inside the data
    cal = ForecastCalibration.fit(realized[rows], forecast[rows], returns, index[rows], 5)
    back = ForecastCalibration.from_dict(cal.to_dict())
    assert back == cal
    plain = float | int | str | dict | list | type(None)
    assert all(isinstance(v, plain) for v in cal.to_dict().values())


def test_forecast_calibration_round_trips_its_quantile_bins_when_stored():
    returns, index, realized, forecast = _window()
    method = CalibrationMethod(quantile_bins=3)
    cal = ForecastCalibration.fit(
        realized[:1400], forecast[:1400], returns, index[:1400], 5, method
    )
    back = ForecastCalibration.from_dict(cal.to_dict())
    assert back == cal
    assert back.method.name.endswith("quantile_bins=3)")


def test_forecast_calibration_reads_one_bin_when_stored_before_bins_existed():
    returns, index, realized, forecast = _window()
    cal = ForecastCalibration.fit(realized[:1400], forecast[:1400], returns, index[:1400], 5)
    old = {
        k: v
        for k, v in cal.to_dict().items()
        if k not in ("quantile_bins", "log_forecast_edges", "log_residual_quantiles_by_bin")
    }
    back = ForecastCalibration.from_dict(old)
    assert back == cal
    assert back.method.name == ("conformal+fhs(window=all, scale=forecast, tail_margin=1)")


def test_forecast_calibration_round_trips_its_ewma_decay_when_stored():
    returns, index, realized, forecast = _window()
    method = CalibrationMethod(scale="max_ewma", ewma_lambda=0.85)
    cal = ForecastCalibration.fit(
        realized[:1400], forecast[:1400], returns, index[:1400], 5, method
    )
    back = ForecastCalibration.from_dict(cal.to_dict())
    assert back == cal
    assert cal.to_dict()["ewma_lambda"] == 0.85
    assert back.method.name.endswith("tail_margin=1, ewma_lambda=0.85)")


def test_forecast_calibration_reads_the_riskmetrics_decay_when_stored_before_it_was():
    returns, index, realized, forecast = _window()
    method = CalibrationMethod(scale="max_ewma")
    cal = ForecastCalibration.fit(
        realized[:1400], forecast[:1400], returns, index[:1400], 5, method
    )
    old = {k: v for k, v in cal.to_dict().items() if k != "ewma_lambda"}
    back = ForecastCalibration.from_dict(old)
    assert back == cal
    assert back.method.ewma_lambda == 0.94
    assert back.method.name == "conformal+fhs(window=all, scale=max_ewma, tail_margin=1)"


def test_faster_ewma_decay_raises_the_var_scale_the_day_after_a_shock():
    index = pd.bdate_range("2020-01-01", periods=300)
    returns = pd.Series(0.01, index=index)
    returns.iloc[-1] = -0.05  # a five-sigma loss on the last day
    slow = CalibrationMethod(scale="max_ewma").ewma(returns, index[-2:])
    fast = CalibrationMethod(scale="max_ewma", ewma_lambda=0.8).ewma(returns, index[-2:])
    assert slow[0] == pytest.approx(0.01) and fast[0] == pytest.approx(0.01)
    # sqrt(0.94 * 0.01^2 + 0.06 * 0.05^2) and sqrt(0.8 * 0.01^2 + 0.2 * 0.05^2)
    assert slow[1] == pytest.approx(0.015620, abs=1e-6)
    assert fast[1] == pytest.approx(0.024083, abs=1e-6)


def test_forecast_calibration_is_unchanged_when_later_rows_are_appended():
    returns, index, realized, forecast = _window()
    cal = ForecastCalibration.fit(realized[:1000], forecast[:1000], returns, index[:1000], 5)
    # The returns known the day after the last target window: nothing later may matter.
    cut = returns.iloc[: 1000 + 5]
    again = ForecastCalibration.fit(realized[:1000], forecast[:1000], cut, index[:1000], 5)
    assert cal == again


def test_forecast_calibration_uses_only_the_last_window_rows_when_a_window_is_set():
    returns, index, realized, forecast = _window()
    method = CalibrationMethod(window=300)
    cal = ForecastCalibration.fit(
        realized[:1400], forecast[:1400], returns, index[:1400], 5, method
    )
    assert cal.volatility.n == 300


def test_forecast_calibration_raises_when_too_few_rows_have_a_forecast():
    returns, index, realized, forecast = _window()
    with pytest.raises(ValueError, match="out-of-sample rows"):
        ForecastCalibration.fit(realized[:400], forecast[:400], returns, index[:400], 5)


def test_tail_margin_moves_only_the_one_day_99_var_when_below_one():
    returns, index, realized, forecast = _window()
    args = (realized[:1400], forecast[:1400], returns, index[:1400], 5)
    plain = ForecastCalibration.fit(*args, CalibrationMethod(tail_margin=1.0))
    margin = ForecastCalibration.fit(*args, CalibrationMethod(tail_margin=0.5))
    assert margin.risk_1d.var_multipliers[0.99] > plain.risk_1d.var_multipliers[0.99]
    assert margin.risk_1d.var_multipliers[0.95] == plain.risk_1d.var_multipliers[0.95]
    assert margin.risk_h == plain.risk_h


def test_max_ewma_scale_is_never_below_the_forecast():
    assert list(risk_scale([0.01, 0.02], [0.015, 0.015], "max_ewma")) == [0.015, 0.02]
    assert list(risk_scale([0.01, 0.02], [0.015, 0.015], "forecast")) == [0.01, 0.02]
    with pytest.raises(ValueError, match="unknown scale"):
        risk_scale([0.01], [0.01], "garch")


def test_distribution_gives_quantiles_in_order_and_var_below_es_when_fitted():
    returns, index, realized, forecast = _window()
    method = CalibrationMethod(scale="max_ewma")
    cal = ForecastCalibration.fit(
        realized[:1400], forecast[:1400], returns, index[:1400], 5, method
    )
    d = cal.distribution([0.01], [0.012])
    qs = [d[f"q{lv:g}"][0] for lv in (0.05, 0.25, 0.5, 0.75, 0.95)]
    assert qs == sorted(qs)
    for suffix in ("", "_h"):
        assert 0 < d[f"var0.95{suffix}"][0] < d[f"var0.99{suffix}"][0]
        assert d[f"var0.99{suffix}"][0] < d[f"es0.99{suffix}"][0]
    assert d["scale"][0] == 0.012  # the larger of forecast and EWMA


def test_ewma_volatility_at_a_date_ignores_later_returns():
    returns, *_ = _window()
    full = ewma_volatility(returns)
    cut = ewma_volatility(returns.iloc[:700])
    assert full.iloc[:700].equals(cut)


def test_forward_returns_are_nan_past_the_data_end():
    r = pd.Series([0.01, 0.02, -0.01, 0.03], index=pd.bdate_range("2020-01-01", periods=4))
    one, two = forward_returns(r, pd.DatetimeIndex(r.index), 2)
    assert one[:3].tolist() == [0.02, -0.01, 0.03] and np.isnan(one[3])
    assert two[:2] == pytest.approx([0.01, 0.02]) and np.isnan(two[2:]).all()
