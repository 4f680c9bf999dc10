from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge

from volforecast.data import align, validate_prices
from volforecast.ensemble import LogTargetRegressor, StackedEnsemble, predict_artifact, purged_folds
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
    spread = float(np.mean(np.var(oof[covered], axis=0)))
    refit = Ridge(alpha=0.01 * spread * covered.sum(), positive=True).fit(
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


def test_log_target_regressor_returns_target_units():
    from sklearn.linear_model import LinearRegression

    X = np.arange(1, 11, dtype=float).reshape(-1, 1)
    y = np.exp(0.1 * X[:, 0])
    np.testing.assert_allclose(LogTargetRegressor(LinearRegression()).fit(X, y).predict(X), y)
