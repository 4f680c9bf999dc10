"""The shipped forecast distribution (volforecast.blending): the calibration's quantiles
averaged with a GJR-GARCH-t model's, its stored form, and what it reads, on seeded GARCH
returns."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from volforecast.baselines import GARCHForecaster
from volforecast.blending import (
    SHIPPED_NAME,
    BlendedCalibration,
    blend_name,
    stored_calibration,
)
from volforecast.calibration import SHIPPED_METHOD, ForecastCalibration

H = 5
TRAIN = 1200


@pytest.fixture(scope="module")
def returns() -> pd.Series:
    """Seeded GARCH(1,1) returns with Student-t(6) shocks."""
    rng = np.random.default_rng(11)
    r = np.empty(1600)
    v = 1e-4
    for t in range(len(r)):
        r[t] = np.sqrt(v) * rng.standard_t(6) * np.sqrt(4 / 6)
        v = 2e-6 + 0.08 * r[t] ** 2 + 0.9 * v
    return pd.Series(r, index=pd.bdate_range("2010-01-01", periods=len(r)))


def rolling_forecast(returns: pd.Series, index: pd.Index) -> np.ndarray:
    return returns.rolling(22).std().reindex(index).to_numpy()


@pytest.fixture(scope="module")
def calibration(returns: pd.Series) -> ForecastCalibration:
    train = returns.index[:TRAIN]
    realized = (returns**2).rolling(H).mean().pow(0.5).shift(-H).reindex(train).to_numpy()
    return ForecastCalibration.fit(
        realized, rolling_forecast(returns, train), returns, train, H, SHIPPED_METHOD
    )


@pytest.fixture(scope="module")
def blend(calibration: ForecastCalibration, returns: pd.Series) -> BlendedCalibration:
    return BlendedCalibration.fit(calibration, returns.index[:TRAIN], returns, weight=0.5)


@pytest.fixture(scope="module")
def rows(returns: pd.Series) -> pd.DatetimeIndex:
    return returns.index[TRAIN : TRAIN + 100]


def test_fit_gives_the_partner_parameters_of_the_seeded_returns(blend: BlendedCalibration):
    params = blend.partner_params
    assert params is not None
    assert params["nu"] == pytest.approx(6.2995, abs=1e-3)
    assert params["beta[1]"] == pytest.approx(0.7858, abs=1e-3)
    assert params["alpha[1]"] == pytest.approx(0.1096, abs=1e-3)


def test_quantiles_are_the_weighted_mean_of_both_models_when_blended(
    blend: BlendedCalibration, calibration, returns, rows
):
    forecast = rolling_forecast(returns, rows)
    ours = calibration.distribution_on(forecast, returns, rows)
    partner = GARCHForecaster.fitted(
        blend.partner_params or {}, H, True, levels=blend.levels
    ).distribution_on(rows, returns)
    mixed = blend.distribution_on(forecast, returns, rows)
    for lv in blend.levels:
        key = f"q{lv:g}"
        np.testing.assert_allclose(mixed[key], 0.5 * ours[key] + 0.5 * partner[key], rtol=1e-12)
    assert mixed["q0.5"][0] == pytest.approx(0.008001, rel=1e-3)


def test_var_and_es_are_the_calibrations_when_blended(
    blend: BlendedCalibration, calibration, returns, rows
):
    forecast = rolling_forecast(returns, rows)
    ours = calibration.distribution_on(forecast, returns, rows)
    mixed = blend.distribution_on(forecast, returns, rows)
    for key in ("var0.95", "var0.99", "es0.99", "var0.99_h", "es0.95_h", "scale"):
        np.testing.assert_array_equal(mixed[key], ours[key])


def test_distribution_is_the_calibrations_when_the_weight_is_one(calibration, returns, rows):
    forecast = rolling_forecast(returns, rows)
    alone = BlendedCalibration.fit(calibration, returns.index[:TRAIN], returns, weight=1.0)
    assert alone.partner_params is None
    got = alone.distribution_on(forecast, returns, rows)
    want = calibration.distribution_on(forecast, returns, rows)
    assert all(np.array_equal(got[k], want[k]) for k in want)
    assert alone.method_name == SHIPPED_METHOD.name


def test_distribution_on_is_unchanged_when_later_returns_are_appended(
    blend: BlendedCalibration, returns, rows
):
    forecast = rolling_forecast(returns, rows)
    early = blend.distribution_on(forecast, returns.loc[: rows[-1]], rows)
    late = blend.distribution_on(forecast, returns, rows)
    assert all(np.array_equal(early[k], late[k]) for k in early)


def test_fit_reads_no_return_after_the_last_target_window(calibration, returns):
    train = returns.index[:TRAIN]
    changed = returns.copy()
    changed.iloc[TRAIN + H :] *= 3.0  # every return after the last row's target window
    a = BlendedCalibration.fit(calibration, train, returns, weight=0.5)
    b = BlendedCalibration.fit(calibration, train, changed, weight=0.5)
    assert a.partner_params == b.partner_params


def test_stored_form_reads_back_to_the_same_distribution(blend, returns, rows):
    forecast = rolling_forecast(returns, rows)
    stored = json.loads(json.dumps(blend.to_dict()))  # plain numbers and strings only
    back = BlendedCalibration.from_dict(stored)
    assert back == blend
    got = back.distribution_on(forecast, returns, rows)
    want = blend.distribution_on(forecast, returns, rows)
    assert all(np.array_equal(got[k], want[k]) for k in want)


def test_stored_form_names_the_blend_and_its_partner(blend: BlendedCalibration):
    stored = blend.to_dict()
    assert stored["method"] == SHIPPED_NAME == blend.method_name
    assert SHIPPED_NAME.endswith("+gjr_garch_t(weight=0.5)")
    assert stored["blend"]["model"] == "gjr_garch_t" and stored["blend"]["weight"] == 0.5


def test_stored_calibration_is_the_calibration_alone_when_the_set_predates_the_blend(
    calibration: ForecastCalibration,
):
    back = stored_calibration({"calibration": calibration.to_dict()})
    assert back is not None
    assert back.weight == 1.0 and back.partner_params is None
    assert back.method_name == calibration.method.name


def test_from_dict_raises_naming_the_fix_when_the_blend_has_an_unknown_model(blend):
    stored = blend.to_dict()
    stored["blend"]["model"] = "egarch"
    with pytest.raises(ValueError, match="upgrade volforecast or retrain"):
        BlendedCalibration.from_dict(stored)


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_blend_raises_when_the_weight_is_outside_zero_to_one(calibration, weight):
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        BlendedCalibration(calibration, weight, {"nu": 5.0})


def test_blend_raises_when_a_partial_weight_has_no_partner(calibration):
    with pytest.raises(ValueError, match="needs the partner's parameters"):
        BlendedCalibration(calibration, 0.5)


def test_blend_name_gives_the_partners_weight_when_below_one():
    assert blend_name(SHIPPED_METHOD, 0.75) == f"{SHIPPED_METHOD.name}+gjr_garch_t(weight=0.25)"
    assert blend_name(SHIPPED_METHOD, 1.0) == SHIPPED_METHOD.name
