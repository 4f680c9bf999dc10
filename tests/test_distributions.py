"""Forecast distributions in the walk-forward (volforecast.distributions, the GARCH models'
distributions in volforecast.baselines, their columns in walkforward.assemble), on a seeded
synthetic market."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as student_t

from volforecast.baselines import GARCHForecaster
from volforecast.data import align, validate_prices
from volforecast.distributions import (
    FilteredHS,
    HistoricalSimulation,
    distribution_frame,
    one_day,
)
from volforecast.features import build_dataset, labeled, log_returns
from volforecast.walkforward import Block, assemble, forecast_block, point_forecasts

from .conftest import synthetic_market

DIST_COLUMNS = {"q0.05", "q0.25", "q0.5", "q0.75", "q0.95", "var0.95", "var0.99", "es0.95",
                "es0.99", "scale"}  # fmt: skip


@pytest.fixture(scope="module")
def market() -> tuple[pd.DataFrame, pd.Series]:
    """(labeled rows at h = 5, daily returns)."""
    spy, vix = synthetic_market(n_days=900, seed=3)
    frame = align(validate_prices(spy, "s"), validate_prices(vix, "v"))
    return labeled(build_dataset(frame, 5)), log_returns(frame["spy_adj_close"])


BLOCK = Block(train_end=595, start=600, stop=660)


def test_historical_simulation_var_is_the_last_250_returns_quantile(market):
    data, returns = market
    out = forecast_block(HistoricalSimulation(5), data, returns, BLOCK)
    day = data.index[BLOCK.start]
    window = returns.loc[:day].dropna().iloc[-250:].to_numpy()
    k = int(np.floor(251 * 0.01))  # conformal rank, rounded outwards
    assert out["var0.99"].iloc[0] == pytest.approx(-np.sort(window)[k - 1])
    assert set(out.columns) == DIST_COLUMNS


def test_filtered_hs_forecasts_only_from_returns_known_on_each_day(market):
    data, returns = market
    full = forecast_block(FilteredHS(5), data, returns, BLOCK)
    cut = returns.loc[: data.index[BLOCK.stop - 1]]
    assert full.equals(forecast_block(FilteredHS(5), data, cut, BLOCK))


def test_garch_distribution_keeps_the_point_forecast_and_repeats_bit_for_bit(market):
    data, returns = market
    point = forecast_block(GARCHForecaster(5), data, returns, BLOCK)
    first = forecast_block(GARCHForecaster(5, distribution=True), data, returns, BLOCK)
    again = forecast_block(GARCHForecaster(5, distribution=True), data, returns, BLOCK)
    assert np.array_equal(first["point"].to_numpy(), point)
    assert first.equals(again)
    assert set(first.columns) == DIST_COLUMNS | {"point"}


def test_garch_one_day_quantiles_are_the_student_t_ones_when_horizon_is_one(market):
    data, returns = market
    model = GARCHForecaster(1, distribution=True)
    out = forecast_block(model, data, returns, BLOCK)
    nu = float(model.params_["nu"])
    unit = np.sqrt((nu - 2) / nu)
    expected = student_t.ppf(0.975, nu) * unit * out["scale"]
    assert out["q0.95"].to_numpy() == pytest.approx(expected.to_numpy())


def test_assemble_spreads_distribution_columns_under_the_model_name():
    data = pd.DataFrame({"target": [0.01, 0.02]}, index=pd.bdate_range("2020-01-01", periods=2))
    block = Block(0, 0, 2)
    frame = distribution_frame(data.index, {"q0.5": np.array([1.0, 2.0])}, np.array([3.0, 4.0]))
    only = distribution_frame(data.index, {"var0.99": np.array([5.0, 6.0])})
    out = assemble(data, [block], {"m": [frame], "d": [only], "p": [np.array([7.0, 8.0])]})
    assert list(out.columns) == ["realized", "m", "m@q0.5", "d@var0.99", "p"]
    assert list(point_forecasts(out).columns) == ["realized", "m", "p"]
    assert one_day(out.columns, "m") == {"q0.5": "m@q0.5"}
