from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from volforecast.baselines import (
    EWMA,
    HAR,
    GARCHForecaster,
    HARCore,
    LogHARX,
    RandomWalk,
    default_baselines,
)
from volforecast.data import align, validate_prices
from volforecast.ensemble import StackedEnsemble
from volforecast.features import FEATURE_COLUMNS, TARGET, build_dataset, labeled, log_returns
from volforecast.metrics import qlike
from volforecast.walkforward import REALIZED, schedule, walk_forward

from .conftest import synthetic_market


def _market(n_days: int, seed: int, flat_vix: bool = False) -> tuple[pd.DataFrame, pd.Series]:
    spy, vix = synthetic_market(n_days=n_days, seed=seed)
    if flat_vix:
        # A VIX that carries no information, so only the returns can tell the volatility.
        noise = np.random.default_rng(seed + 1).uniform(15.0, 25.0, len(vix))
        vix = vix.assign(open=noise, high=noise * 1.01, low=noise * 0.99, close=noise)
    frame = align(validate_prices(spy, "s"), validate_prices(vix, "v"))
    return labeled(build_dataset(frame, 5)), log_returns(frame["spy_adj_close"])


@pytest.fixture(scope="module")
def market() -> tuple[pd.DataFrame, pd.Series]:
    return _market(700, 21)


def test_har_rv_coefficients_equal_hand_ols_on_realized_variances_when_fitted(market):
    data, returns = market
    model = HAR("rv").fit(data, returns)
    X = np.column_stack(
        [np.ones(len(data))]
        + [data[c].to_numpy() ** 2 for c in ("spy_rv_1d", "spy_rv_5d", "spy_rv_22d")]
    )
    coef = np.linalg.solve(X.T @ X, X.T @ (data[TARGET].to_numpy() ** 2))
    np.testing.assert_allclose(model.coef_, coef, rtol=1e-7)
    floor = float(np.quantile(data[TARGET] ** 2, 0.01))
    np.testing.assert_allclose(model.predict(data, returns) ** 2, np.maximum(X @ coef, floor))


def test_har_parkinson_uses_the_range_estimator_columns_when_kind_is_parkinson(market):
    data, returns = market
    rv = HAR("rv").fit(data, returns).predict(data, returns)
    pk = HAR("parkinson").fit(data, returns).predict(data, returns)
    assert not np.allclose(rv, pk)
    assert HAR("parkinson").name == "har_parkinson"


def test_log_har_vix_forecast_is_bias_corrected_by_duan_smearing(market):
    data, returns = market
    model = LogHARX().fit(data, returns)
    cols = ["spy_rv_1d", "spy_rv_5d", "spy_rv_22d", "vix_level"]
    X = np.column_stack([np.ones(len(data)), np.log(np.maximum(data[cols].to_numpy(), 1e-5))])
    y = 2.0 * np.log(data[TARGET].to_numpy())
    coef = np.linalg.lstsq(X, y, rcond=None)[0]
    smearing = float(np.mean(np.exp(y - X @ coef)))
    expected = np.sqrt(np.exp(X @ coef) * smearing)
    np.testing.assert_allclose(model.predict(data, returns), expected, rtol=1e-8)


def test_log_har_vix_is_unbiased_in_variance_at_horizon_one_where_normal_correction_fails():
    spy, vix = synthetic_market(n_days=1500, seed=8)
    frame = align(validate_prices(spy, "s"), validate_prices(vix, "v"))
    data = labeled(build_dataset(frame, 1))
    data = data.loc[data[TARGET] > 0]
    returns = log_returns(frame["spy_adj_close"])
    model = LogHARX().fit(data, returns)
    mean_forecast = float(np.mean(model.predict(data, returns) ** 2))
    mean_realized = float(np.mean(data[TARGET] ** 2))
    # In-sample, smearing matches the mean variance (log chi-square residuals at h = 1) ...
    assert mean_forecast == pytest.approx(mean_realized, rel=0.15)
    # ... where exp(s^2 / 2) overshoots by a factor of about two or more.
    normal = mean_forecast / model.smearing_ * np.exp(model.resid_var_ / 2.0)
    assert normal > 1.8 * mean_realized


def test_regression_forecasts_are_floored_at_the_first_percentile_of_training_variance(market):
    data, returns = market
    model = HAR("rv").fit(data, returns)
    model.coef_ = np.array([-1.0, 0.0, 0.0, 0.0])  # a forecast of negative variance
    floor = float(np.quantile(data[TARGET] ** 2, 0.01))
    np.testing.assert_allclose(model.predict(data.iloc[:3], returns), np.sqrt(floor))


@pytest.mark.parametrize("horizon", [1, 5, 22])
def test_random_walk_forecast_is_the_realized_volatility_of_the_last_horizon_days(market, horizon):
    data, returns = market
    r = returns.loc[: data.index[-1]].iloc[-horizon:]
    model = RandomWalk(horizon).fit(data, returns)
    floor = np.sqrt(np.quantile(data[TARGET] ** 2, 0.01))
    assert model.predict(data, returns)[-1] == pytest.approx(max(np.sqrt(np.mean(r**2)), floor))


def test_random_walk_never_forecasts_zero_after_a_day_without_a_price_change(market):
    data, returns = market
    flat = returns.copy()
    flat.loc[data.index[-1]] = 0.0
    model = RandomWalk(1).fit(data, returns)
    assert model.predict(data, flat)[-1] == pytest.approx(np.sqrt(model.floor_))
    assert model.floor_ > 0


def test_random_walk_at_horizon_five_equals_the_five_day_feature(market):
    data, returns = market
    model = RandomWalk(5).fit(data, returns)
    floor = np.sqrt(model.floor_)
    np.testing.assert_allclose(model.predict(data, returns), np.maximum(data["spy_rv_5d"], floor))


def test_ewma_variance_follows_the_riskmetrics_recursion_when_lambda_is_094():
    returns = pd.Series([0.01, -0.02, 0.015] * 10, index=pd.bdate_range("2020-01-01", periods=30))
    var = EWMA(0.94).variance(returns)
    seed = float(np.mean(returns.iloc[:22] ** 2))
    expected_first = 0.94 * seed + 0.06 * 0.01**2
    assert var.iloc[0] == pytest.approx(expected_first)
    assert var.iloc[1] == pytest.approx(0.94 * expected_first + 0.06 * 0.02**2)


def test_ewma_forecast_ignores_returns_after_the_forecast_date(market):
    data, returns = market
    rows = data.iloc[300:310]
    shocked = returns.copy()
    shocked.loc[shocked.index > rows.index[-1]] = 0.5
    np.testing.assert_array_equal(EWMA().predict(rows, returns), EWMA().predict(rows, shocked))


@pytest.mark.parametrize("asymmetric", [False, True])
def test_garch_forecast_ignores_returns_after_the_forecast_date(market, asymmetric):
    data, returns = market
    train, rows = data.iloc[:400], data.iloc[410:420]
    model = GARCHForecaster(5, asymmetric=asymmetric).fit(train, returns)
    shocked = returns.copy()
    shocked.loc[shocked.index > rows.index[-1]] = 0.5
    np.testing.assert_allclose(model.predict(rows, returns), model.predict(rows, shocked))
    assert model.name == ("gjr_garch_t" if asymmetric else "garch_t")


def test_garch_fitted_from_stored_parameters_forecasts_as_the_fit_did(market):
    data, returns = market
    train, rows = data.iloc[:400], data.iloc[410:420]
    model = GARCHForecaster(5, asymmetric=True, distribution=True).fit(train, returns)
    stored = {k: float(v) for k, v in model.params_.items()}
    again = GARCHForecaster.fitted(stored, 5, True, distribution=True)
    pd.testing.assert_frame_equal(again.predict(rows, returns), model.predict(rows, returns))


def test_garch_distribution_on_gives_the_columns_predict_returns(market):
    data, returns = market
    train, rows = data.iloc[:400], data.iloc[410:420]
    model = GARCHForecaster(5, asymmetric=True, distribution=True).fit(train, returns)
    frame = model.predict(rows, returns)
    dist = model.distribution_on(rows.index, returns)
    assert set(dist) == set(frame.columns) - {"point"}
    for key, values in dist.items():
        np.testing.assert_array_equal(values, frame[key].to_numpy())


def test_garch_distribution_raises_when_a_forecast_date_is_not_a_trading_day(market):
    data, returns = market
    model = GARCHForecaster(5, asymmetric=True, distribution=True).fit(data.iloc[:400], returns)
    index = data.index[410:420].insert(5, data.index[414] + pd.Timedelta(hours=12))
    with pytest.raises(ValueError, match="no return to forecast from"):
        model.distribution_on(index, returns)


def test_garch_baseline_forecasts_a_garch_process_best_when_vix_is_uninformative():
    data, returns = _market(1600, 5, flat_vix=True)
    blocks = schedule(len(data), 800, 200, 5)
    fc = walk_forward(data, returns, default_baselines(5), blocks)
    losses = {m: qlike(fc[REALIZED], fc[m]) for m in fc.columns if m != REALIZED}
    best = min(losses, key=lambda m: losses[m])
    assert best in {"garch_t", "gjr_garch_t"}, losses


def test_har_core_equals_the_ensembles_own_core_when_fitted_on_the_same_rows(market):
    data, returns = market
    core = HARCore().fit(data, returns)
    learner = StackedEnsemble(horizon=5)._base_learners()[0]
    features = data.loc[:, list(FEATURE_COLUMNS)].to_numpy()
    learner.fit(features, data[TARGET].to_numpy())
    np.testing.assert_allclose(core.coef_, learner.linear_coef_, rtol=1e-10)
    np.testing.assert_allclose(
        core.predict(data, returns), np.sqrt(np.exp(learner._margin(features))), rtol=1e-8
    )


def test_har_core_uses_the_vix_relative_level_as_it_is_when_it_is_a_log_already(market):
    data, returns = market
    with_rel = HARCore().fit(data, returns)
    without = HARCore(core_logs=()).fit(data, returns)
    assert len(with_rel.coef_) == len(without.coef_) + 1 == 9
    assert not np.allclose(with_rel.predict(data, returns), without.predict(data, returns))


def test_default_baselines_include_the_har_core_after_log_har_vix_when_built():
    names = [b.name for b in default_baselines(5)]
    assert names[names.index("log_har_vix") + 1] == "har_core"
    assert len(names) == len(set(names)) == 8
