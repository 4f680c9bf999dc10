from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from volforecast.baselines import EWMA, HAR, GARCHForecaster, LogHARX, RandomWalk, default_baselines
from volforecast.data import align, validate_prices
from volforecast.evaluation import qlike
from volforecast.features import TARGET, build_dataset, labeled, log_returns
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
    np.testing.assert_allclose(model.predict(data, returns) ** 2, np.maximum(X @ coef, 1e-10))


def test_har_parkinson_uses_the_range_estimator_columns_when_kind_is_parkinson(market):
    data, returns = market
    rv = HAR("rv").fit(data, returns).predict(data, returns)
    pk = HAR("parkinson").fit(data, returns).predict(data, returns)
    assert not np.allclose(rv, pk)
    assert HAR("parkinson").name == "har_parkinson"


def test_log_har_vix_forecast_is_bias_corrected_by_half_the_residual_variance(market):
    data, returns = market
    model = LogHARX().fit(data, returns)
    cols = ["spy_rv_1d", "spy_rv_5d", "spy_rv_22d", "vix_level"]
    X = np.column_stack([np.ones(len(data)), np.log(np.maximum(data[cols].to_numpy(), 1e-5))])
    y = 2.0 * np.log(data[TARGET].to_numpy())
    coef = np.linalg.lstsq(X, y, rcond=None)[0]
    s2 = float(np.sum((y - X @ coef) ** 2) / (len(y) - X.shape[1]))
    expected = np.sqrt(np.exp(X @ coef + s2 / 2.0))
    np.testing.assert_allclose(model.predict(data, returns), expected, rtol=1e-8)


def test_random_walk_forecast_is_the_last_five_day_realized_volatility(market):
    data, returns = market
    r = returns.loc[data.index[-1] - pd.Timedelta(days=10) : data.index[-1]].iloc[-5:]
    assert RandomWalk().predict(data, returns)[-1] == pytest.approx(np.sqrt(np.mean(r**2)))


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


def test_garch_baseline_forecasts_a_garch_process_best_when_vix_is_uninformative():
    data, returns = _market(1600, 5, flat_vix=True)
    blocks = schedule(len(data), 800, 200, 5)
    fc = walk_forward(data, returns, default_baselines(5), blocks)
    losses = {m: qlike(fc[REALIZED], fc[m]) for m in fc.columns if m != REALIZED}
    best = min(losses, key=lambda m: losses[m])
    assert best in {"garch_t", "gjr_garch_t"}, losses
