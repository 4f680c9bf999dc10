from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from volforecast.data import align, validate_prices
from volforecast.ensemble import (
    HAR_CORE,
    HAR_CORE_LOGS,
    FoldedMix,
    HARBoostRegressor,
    LossMix,
    MixingRidge,
    StackedEnsemble,
    default_lgbm_params,
    default_xgb_params,
    fold_core_share,
    predict_artifact,
    purged_folds,
    simplex_grid,
)
from volforecast.features import FEATURE_COLUMNS, TARGET, build_dataset, labeled

from .conftest import synthetic_market

SMALL = {"n_estimators": 30}


@pytest.fixture(scope="module")
def dataset() -> pd.DataFrame:
    spy, vix = synthetic_market(n_days=600, seed=11)
    return labeled(build_dataset(align(validate_prices(spy, "s"), validate_prices(vix, "v")), 5))


def _fit(dataset: pd.DataFrame, seed: int = 42) -> StackedEnsemble:
    return StackedEnsemble(horizon=5, seed=seed).fit(
        dataset[list(FEATURE_COLUMNS)], dataset[TARGET]
    )


@pytest.mark.parametrize("gap", [1, 5, 22])
def test_purged_folds_leave_gap_rows_between_train_and_prediction_when_fitting_oof(gap):
    for train_idx, pred_idx in purged_folds(300, 5, gap):
        assert train_idx.max() + gap < pred_idx.min()
        assert train_idx.min() == 0  # expanding window


def test_meta_learner_is_fit_on_out_of_fold_predictions_only(dataset):
    model = _fit(dataset)
    oof = model.oof_predictions_
    covered = ~np.isnan(oof).any(axis=1)
    first_block = purged_folds(len(dataset), 5, 5)[0][1].min()
    assert not covered[:first_block].any() and covered[first_block:].all()
    refit = MixingRidge(alpha=model.meta_alpha).fit(
        oof[covered], dataset[TARGET].to_numpy()[covered]
    )
    np.testing.assert_allclose(model.meta_model_.coef_, refit.coef_)
    # In-sample base predictions differ from the out-of-fold ones the meta-learner saw.
    in_sample = model.xgb_model_.predict(dataset[list(FEATURE_COLUMNS)])
    assert not np.allclose(in_sample[covered], oof[covered, 0])


def test_fit_gives_identical_predictions_when_repeated_with_same_seed(dataset):
    X = dataset[list(FEATURE_COLUMNS)]
    np.testing.assert_array_equal(_fit(dataset).predict(X), _fit(dataset).predict(X))


def test_artifact_snippet_prediction_equals_ensemble_predict_in_target_units(dataset):
    model = _fit(dataset)
    X = dataset[list(FEATURE_COLUMNS)]
    artifact = model.artifact(list(FEATURE_COLUMNS), run_id="r")
    X_meta = np.column_stack([artifact["xgb_model"].predict(X), artifact["lgbm_model"].predict(X)])
    snippet = artifact["meta_model"].predict(X_meta)
    np.testing.assert_allclose(snippet, model.predict(X))
    np.testing.assert_allclose(predict_artifact(artifact, X.to_numpy()), snippet)
    ratio = np.median(snippet) / np.median(dataset[TARGET])
    assert 0.5 < ratio < 2.0  # target units (daily volatility), not logs


def test_mixing_ridge_weights_sum_to_one_and_favour_the_exact_forecast_when_penalty_is_small():
    rng = np.random.default_rng(3)
    y = rng.uniform(0.005, 0.03, 500)
    P = np.column_stack([y, y * rng.lognormal(0.0, 0.3, 500)])
    meta = MixingRidge(alpha=1e-6).fit(P, y)
    assert meta.coef_.sum() == pytest.approx(1.0)
    assert meta.coef_[0] > 0.95


def test_mixing_ridge_gives_equal_weights_when_penalty_is_huge():
    rng = np.random.default_rng(4)
    y = rng.uniform(0.005, 0.03, 300)
    P = np.column_stack([y, 2.0 * y])
    np.testing.assert_allclose(MixingRidge(alpha=1e9).fit(P, y).coef_, [0.5, 0.5], atol=1e-6)


def test_mixing_ridge_never_extrapolates_beyond_the_base_forecasts_when_one_is_biased():
    y = np.linspace(0.01, 0.02, 200)
    P = np.column_stack([1.2 * y, 3.0 * y])
    meta = MixingRidge(alpha=0.0).fit(P, y)
    np.testing.assert_allclose(meta.coef_, [1.0, 0.0])  # clipped, not 1.9 / -0.9


@pytest.mark.parametrize("booster", ["xgb", "lgbm"])
def test_har_boost_linear_core_equals_hand_ols_in_logs_when_fitted(dataset, booster):
    params = default_xgb_params(0) if booster == "xgb" else default_lgbm_params(0)
    import lightgbm as lgb
    import xgboost as xgb

    est = xgb.XGBRegressor(**params) if booster == "xgb" else lgb.LGBMRegressor(**params)
    core = [list(FEATURE_COLUMNS).index(c) for c in HAR_CORE]
    logs = [list(FEATURE_COLUMNS).index(c) for c in HAR_CORE_LOGS]
    X = dataset[list(FEATURE_COLUMNS)].to_numpy()
    y = dataset[TARGET].to_numpy()
    model = HARBoostRegressor(est, core, logs).fit(X, y)
    # Same floor as the model: a day without a price change has zero absolute return.
    design = np.column_stack([np.ones(len(X)), np.log(np.maximum(X[:, core], 1e-5)), X[:, logs]])
    coef, *_ = np.linalg.lstsq(design, 2.0 * np.log(y), rcond=None)
    np.testing.assert_allclose(model.linear_coef_, coef, rtol=1e-8)
    resid = 2.0 * np.log(y) - design @ coef
    # Duan's smearing by default: the log of the mean of exp(residual).
    assert model.log_bias_ == pytest.approx(np.log(np.mean(np.exp(resid))))
    normal = HARBoostRegressor(est, core, logs, bias="normal").fit(X, y)
    assert normal.log_bias_ == pytest.approx(resid @ resid / (len(y) - len(coef)) / 2.0)
    # Predictions are volatilities near the target's scale, not log variances.
    ratio = np.median(model.predict(X)) / np.median(y)
    assert 0.8 < ratio < 1.25


def test_ensemble_core_is_unbiased_in_variance_at_horizon_one_where_normal_correction_overshoots():
    spy, vix = synthetic_market(n_days=1500, seed=8)
    data = labeled(build_dataset(align(validate_prices(spy, "s"), validate_prices(vix, "v")), 1))
    data = data.loc[data[TARGET] > 0]
    X = data[list(FEATURE_COLUMNS)].to_numpy()
    y = data[TARGET].to_numpy()
    core = [list(FEATURE_COLUMNS).index(c) for c in HAR_CORE]
    est = xgb_regressor()
    duan = HARBoostRegressor(est, core).fit(X, y)
    normal = HARBoostRegressor(est, core, bias="normal").fit(X, y)
    mean_realized = float(np.mean(y**2))
    # The core's own forecast (before the trees), in variance: exp(margin).
    assert float(np.mean(np.exp(duan._margin(X)))) == pytest.approx(mean_realized, rel=0.15)
    assert float(np.mean(np.exp(normal._margin(X)))) > 1.8 * mean_realized


def test_har_boost_refuses_an_unknown_bias_correction_when_fitted(dataset):
    X = dataset[list(FEATURE_COLUMNS)].to_numpy()
    core = [list(FEATURE_COLUMNS).index(c) for c in HAR_CORE]
    with pytest.raises(ValueError, match="bias must be one of"):
        HARBoostRegressor(xgb_regressor(), core, bias="median").fit(X, dataset[TARGET])


def test_stacked_ensemble_fits_on_a_named_core_when_given_one(dataset):
    model = StackedEnsemble(horizon=5, core=("spy_rv_5d", "vix_level"), core_logs=(),
                            xgb_params=SMALL, lgbm_params=SMALL)  # fmt: skip
    model.fit(dataset[list(FEATURE_COLUMNS)], dataset[TARGET])
    assert len(model.xgb_model_.linear_coef_) == 3
    with pytest.raises(ValueError, match="lacks the HAR core columns"):
        StackedEnsemble(core=("spy_rv_5d", "nope")).fit(
            dataset[list(FEATURE_COLUMNS)], dataset[TARGET]
        )


def xgb_regressor():
    import xgboost as xgb

    return xgb.XGBRegressor(**{**default_xgb_params(0), **SMALL})


@pytest.fixture(scope="module")
def core_mix(dataset: pd.DataFrame) -> StackedEnsemble:
    return StackedEnsemble(horizon=5, seed=42, meta="core_mix").fit(
        dataset[list(FEATURE_COLUMNS)], dataset[TARGET]
    )


def test_core_mix_artifact_snippet_equals_ensemble_predict_when_core_share_is_folded_in(
    dataset, core_mix
):
    X = dataset[list(FEATURE_COLUMNS)]
    artifact = core_mix.artifact(list(FEATURE_COLUMNS), run_id="r")
    X_meta = np.column_stack([artifact["xgb_model"].predict(X), artifact["lgbm_model"].predict(X)])
    assert isinstance(artifact["meta_model"], FoldedMix)
    assert isinstance(artifact["meta_model"].mixing, MixingRidge)  # the Ridge, on three columns
    np.testing.assert_allclose(artifact["meta_model"].predict(X_meta), core_mix.predict(X))


def test_loss_mix_artifact_snippet_equals_ensemble_predict_and_records_the_grid_mix(dataset):
    X, y = dataset[list(FEATURE_COLUMNS)], dataset[TARGET]
    model = StackedEnsemble(horizon=5, seed=42, meta="loss_mix").fit(X, y)
    artifact = model.artifact(list(FEATURE_COLUMNS), run_id="r")
    X_meta = np.column_stack([artifact["xgb_model"].predict(X), artifact["lgbm_model"].predict(X)])
    np.testing.assert_allclose(artifact["meta_model"].predict(X_meta), model.predict(X))
    mixing = artifact["meta_model"].mixing
    assert isinstance(mixing, LossMix)
    oof = np.column_stack([model.oof_core_, model.oof_predictions_])
    covered = ~np.isnan(oof).any(axis=1)
    np.testing.assert_array_equal(mixing.coef_, LossMix().fit(oof[covered], y[covered]).coef_)
    assert np.all(np.round(mixing.coef_ * 20, 9) % 1 == 0)  # a point of the 0.05 grid


def test_core_mix_forecast_is_the_three_way_out_of_fold_mix_when_fitted(dataset, core_mix):
    X = dataset[list(FEATURE_COLUMNS)]
    oof = np.column_stack([core_mix.oof_core_, core_mix.oof_predictions_])
    covered = ~np.isnan(oof).any(axis=1)
    mix = MixingRidge(alpha=core_mix.meta_alpha).fit(oof[covered], dataset[TARGET][covered])
    w = core_mix.mix_weights_
    np.testing.assert_allclose([w["core"], w["xgb"], w["lgbm"]], mix.coef_)
    core = core_mix.xgb_model_.predict_core(X)
    np.testing.assert_allclose(core, core_mix.lgbm_model_.predict_core(X))  # one shared core
    # The same fitted learners with the core's share taken out: the pure boosted forecasts.
    pure = [
        copy.copy(m).set_params(core_weight=0.0)
        for m in (core_mix.xgb_model_, core_mix.lgbm_model_)
    ]
    expected = w["core"] * core + w["xgb"] * pure[0].predict(X) + w["lgbm"] * pure[1].predict(X)
    np.testing.assert_allclose(core_mix.predict(X), expected, rtol=1e-12)


@pytest.mark.slow
def test_core_mix_gives_the_core_most_weight_when_the_trees_only_add_noise():
    # The target is log-linear in one of the core's regressors times noise: the trees, deep and
    # quick, have nothing to learn but that noise.
    rng = np.random.default_rng(5)
    n, n_train = 2000, 1500
    X = rng.uniform(0.005, 0.03, (n, len(FEATURE_COLUMNS)))
    core = [list(FEATURE_COLUMNS).index(c) for c in HAR_CORE]
    y = np.exp(0.2 + 0.9 * np.log(X[:, core[2]]) + rng.normal(0.0, 0.3, n))
    deep = {"n_estimators": 300, "learning_rate": 0.1, "max_depth": 6, "min_child_weight": 1.0}
    leafy = {"n_estimators": 300, "learning_rate": 0.1, "num_leaves": 64, "min_child_samples": 5}
    kwargs = {"horizon": 1, "xgb_params": deep, "lgbm_params": leafy, "core_logs": ()}
    mixed = StackedEnsemble(meta="core_mix", **kwargs).fit(X[:n_train], y[:n_train])
    ridge = StackedEnsemble(**kwargs).fit(X[:n_train], y[:n_train])
    assert mixed.mix_weights_["core"] == pytest.approx(0.593, abs=0.01)  # the largest share
    assert ridge.mix_weights_["core"] == 0.0
    held_out = X[n_train:], y[n_train:]
    rmse = [np.sqrt(np.mean((m.predict(held_out[0]) - held_out[1]) ** 2)) for m in (mixed, ridge)]
    assert rmse[0] == pytest.approx(0.01059, rel=0.01)
    assert rmse[1] == pytest.approx(0.01121, rel=0.01)  # trees alone, mixed: 6% worse


@pytest.mark.parametrize(
    ("weights", "core_weight", "learners"),
    [
        ((0.2, 0.6, 0.2), 0.2, (0.75, 0.25)),
        ((1.0, 0.0, 0.0), 1.0, (0.5, 0.5)),
        ((0.0, 0.3, 0.7), 0.0, (0.3, 0.7)),
    ],
)
def test_fold_core_share_keeps_the_three_way_mix_when_split(weights, core_weight, learners):
    w, (a, b) = fold_core_share(weights)
    assert w == pytest.approx(core_weight)
    np.testing.assert_allclose((a, b), learners)


def test_stacked_ensemble_refuses_unknown_meta_learner_when_fitted(dataset):
    with pytest.raises(ValueError, match="meta must be one of"):
        StackedEnsemble(meta="mean").fit(dataset[list(FEATURE_COLUMNS)], dataset[TARGET])


def test_simplex_grid_lists_every_mix_of_three_in_steps_of_a_twentieth_when_asked():
    grid = simplex_grid(3, 0.05)
    assert grid.shape == (231, 3)  # C(22, 2)
    np.testing.assert_allclose(grid.sum(axis=1), 1.0)
    np.testing.assert_allclose(grid[:2], [[0.0, 0.0, 1.0], [0.0, 0.05, 0.95]])
    assert len({tuple(row) for row in grid.round(9)}) == 231


def test_loss_mix_picks_the_exact_forecast_when_one_column_is_the_target():
    rng = np.random.default_rng(6)
    y = rng.uniform(0.005, 0.03, 400)
    P = np.column_stack([y * rng.lognormal(0.0, 0.3, 400), y, 1.5 * y])
    np.testing.assert_allclose(LossMix().fit(P, y).coef_, [0.0, 1.0, 0.0])


def test_loss_mix_trades_squared_error_for_qlike_where_ridge_does_not():
    # Column 0 is unbiased in variance but noisy; column 1 tracks the target closely on most
    # days yet forecasts a tenth of the volatility on 5% of them: cheap under squared error,
    # ruinous under QLIKE. Ridge, blind to QLIKE, trusts column 1; LossMix keeps column 0.
    rng = np.random.default_rng(7)
    n = 2000
    y = rng.uniform(0.005, 0.03, n)
    noisy = y * rng.lognormal(-0.045, 0.3, n)
    tight = np.where(rng.uniform(size=n) < 0.05, 0.1 * y, y * rng.lognormal(0.0, 0.05, n))
    P = np.column_stack([noisy, tight])
    ridge, loss = MixingRidge(alpha=0.1).fit(P, y).coef_, LossMix().fit(P, y).coef_
    np.testing.assert_allclose(ridge, [0.352, 0.648], atol=0.001)
    np.testing.assert_allclose(loss, [0.55, 0.45])


def test_predict_raises_not_fitted_error_when_called_before_fit(dataset):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        StackedEnsemble(horizon=5).predict(dataset[list(FEATURE_COLUMNS)])


def test_predict_takes_dataframe_columns_by_name_when_their_order_is_shuffled(dataset):
    model = _fit(dataset)
    X = dataset[list(FEATURE_COLUMNS)]
    shuffled = X.loc[:, list(reversed(X.columns))]
    assert np.array_equal(model.predict(shuffled), model.predict(X))
    with pytest.raises(ValueError, match="vix_level"):
        model.predict(X.drop(columns=["vix_level"]))


@pytest.mark.parametrize("meta", ["ridge", "core_mix"])
def test_oof_forecast_is_the_meta_learners_mix_of_the_out_of_fold_predictions(dataset, meta):
    model = StackedEnsemble(horizon=5, seed=42, meta=meta).fit(
        dataset[list(FEATURE_COLUMNS)], dataset[TARGET]
    )
    covered = ~np.isnan(model.oof_predictions_).any(axis=1)
    assert np.isnan(model.oof_forecast_[~covered]).all()
    if meta == "ridge":
        expected = model.meta_model_.predict(model.oof_predictions_[covered])
    else:
        three = np.column_stack([model.oof_core_, model.oof_predictions_])[covered]
        expected = model.meta_model_.mixing.predict(three)
    np.testing.assert_allclose(model.oof_forecast_[covered], expected)


def _learner(booster: str, **kwargs: object) -> HARBoostRegressor:
    import lightgbm as lgb
    import xgboost as xgb

    est = (
        xgb.XGBRegressor(**default_xgb_params(0))
        if booster == "xgb"
        else lgb.LGBMRegressor(**default_lgbm_params(0))
    )
    core = [list(FEATURE_COLUMNS).index(c) for c in HAR_CORE]
    logs = [list(FEATURE_COLUMNS).index(c) for c in HAR_CORE_LOGS]
    return HARBoostRegressor(est, core, logs, **kwargs)


@pytest.mark.parametrize("booster", ["xgb", "lgbm"])
def test_har_boost_predictions_are_unchanged_when_its_core_prior_is_the_identity(dataset, booster):
    X, y = dataset[list(FEATURE_COLUMNS)].to_numpy(), dataset[TARGET].to_numpy()
    own = _learner(booster).fit(X, y)
    same = _learner(booster, core_prior=lambda coef, _x, _y: coef).fit(X, y)
    assert same.linear_coef_.tolist() == own.linear_coef_.tolist()
    assert same.log_bias_ == pytest.approx(own.log_bias_, rel=1e-12)
    np.testing.assert_allclose(same.predict(X), own.predict(X), rtol=1e-9)


def test_har_boost_core_takes_the_priors_coefficients_and_smears_their_residuals(dataset):
    X, y = dataset[list(FEATURE_COLUMNS)].to_numpy(), dataset[TARGET].to_numpy()
    fixed = np.r_[-1.0, np.full(len(HAR_CORE) + len(HAR_CORE_LOGS), 0.1)]
    model = _learner("xgb", core_prior=lambda _c, _x, _y: fixed).fit(X, y)
    assert model.linear_coef_.tolist() == fixed.tolist()
    core = [list(FEATURE_COLUMNS).index(c) for c in HAR_CORE]
    logs = [list(FEATURE_COLUMNS).index(c) for c in HAR_CORE_LOGS]
    design = np.column_stack([np.ones(len(X)), np.log(np.maximum(X[:, core], 1e-5)), X[:, logs]])
    resid = 2.0 * np.log(y) - design @ fixed
    assert model.log_bias_ == pytest.approx(np.log(np.mean(np.exp(resid))))


def test_stacked_ensemble_asks_the_priors_for_each_folds_last_training_row_when_fitted(dataset):
    asked: list[int] = []

    def priors(last_row: int):
        asked.append(last_row)
        return lambda coef, _x, _y: coef

    X, y = dataset[list(FEATURE_COLUMNS)], dataset[TARGET]
    StackedEnsemble(horizon=5, xgb_params=SMALL, lgbm_params=SMALL).fit(X, y, core_priors=priors)
    folds = purged_folds(len(y), 5, 5)
    assert asked == [int(tr[-1]) for tr, _ in folds] + [len(y) - 1]


class _ShiftingPrior:
    """The identity prior that also moves the forecast's log variance by ``shift``."""

    def __init__(self, shift: float) -> None:
        self.shift = shift

    def __call__(self, coef, _x, _y):
        return coef

    def level_shift(self, _x, _y) -> float:
        return self.shift


@pytest.mark.parametrize("booster", ["xgb", "lgbm"])
def test_har_boost_forecast_moves_by_the_priors_level_shift_with_the_same_trees(dataset, booster):
    X, y = dataset[list(FEATURE_COLUMNS)].to_numpy(), dataset[TARGET].to_numpy()
    own = _learner(booster, core_weight=0.3).fit(X, y)
    moved = _learner(booster, core_weight=0.3, core_prior=_ShiftingPrior(0.2)).fit(X, y)
    assert moved.level_shift_ == 0.2 and own.level_shift_ == 0.0
    # log variance +0.2 is volatility x exp(0.1), trees and core alike; xgboost's margins are
    # float32 (a log variance near -9.6 is rounded at 1e-6), so that is the tolerance.
    np.testing.assert_allclose(moved.predict(X), own.predict(X) * np.exp(0.1), rtol=2e-6)
    np.testing.assert_allclose(moved.predict_core(X), own.predict_core(X) * np.exp(0.1), rtol=1e-12)
