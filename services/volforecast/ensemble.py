"""Stacked ensemble: XGBoost and LightGBM base learners, a Ridge meta-learner on out-of-fold
predictions from purged chronological folds.

scikit-learn's StackingRegressor refuses time-series splits (its cross_val_predict needs every
row predicted once), so the stacking is done here: expanding-window folds, each training set
purged of the ``horizon`` rows whose forward window reaches into the fold it predicts; the first
block, which has no past to learn from, gets no out-of-fold prediction and is not used by the
meta-learner.

The base learners model log(volatility): volatility is positive and right-skewed, and squared
error in logs weighs calm and stressed periods alike. ``LogTargetRegressor`` wraps each so that
``predict`` returns volatility in target units, as the artifact contract requires; the Ridge
meta-learner (with an intercept) then calibrates the level.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import xgboost as xgb
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import TimeSeriesSplit

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[str], None]
# Volatility below this (five days of unchanged prices) would make log() explode.
MIN_VOL = 1e-5


def _as_matrix(X: Any) -> FloatArray:
    # Base learners are fitted on plain arrays so that callers may pass a DataFrame (columns in
    # feature_cols order) or an array without feature-name warnings.
    return np.asarray(X, dtype=np.float64)


class LogTargetRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Fits ``estimator`` on log(y); ``predict`` returns exp(prediction), in units of y."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any) -> LogTargetRegressor:
        target = np.log(np.maximum(np.asarray(y, dtype=np.float64), MIN_VOL))
        self.estimator_ = clone(self.estimator).fit(_as_matrix(X), target)
        self.n_features_in_ = _as_matrix(X).shape[1]
        return self

    def predict(self, X: Any) -> FloatArray:
        return np.exp(np.asarray(self.estimator_.predict(_as_matrix(X)), dtype=np.float64))


def default_xgb_params(seed: int) -> dict[str, Any]:
    return {
        "n_estimators": 400,
        "learning_rate": 0.03,
        "max_depth": 3,
        "min_child_weight": 5.0,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "reg_lambda": 1.0,
        "tree_method": "hist",
        "random_state": seed,
        "n_jobs": 2,
    }


def default_lgbm_params(seed: int) -> dict[str, Any]:
    return {
        "n_estimators": 400,
        "learning_rate": 0.03,
        "num_leaves": 15,
        "min_child_samples": 30,
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.8,
        "reg_lambda": 1.0,
        "random_state": seed,
        "n_jobs": 2,
        # Same data and seed give the same trees, whatever the thread timing.
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }


def purged_folds(n_rows: int, n_folds: int, gap: int) -> list[tuple[FloatArray, FloatArray]]:
    """Expanding-window (train, predict) index pairs; each train set ends ``gap`` rows before
    the block it predicts, so no training target overlaps that block."""
    splitter = TimeSeriesSplit(n_splits=n_folds, gap=gap)
    return [(tr, te) for tr, te in splitter.split(np.arange(n_rows))]


class StackedEnsemble(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """XGBoost + LightGBM, stacked by a non-negative Ridge on out-of-fold predictions.

    Parameters
    ----------
    horizon : purge gap (rows) between a fold's training rows and the rows it predicts.
    n_folds : number of out-of-fold blocks for the meta-learner.
    seed : random seed of both base learners.
    meta_alpha : Ridge penalty relative to the spread of the base predictions (scale-free).
    """

    def __init__(
        self,
        horizon: int = 5,
        n_folds: int = 5,
        seed: int = 42,
        meta_alpha: float = 0.01,
        xgb_params: dict[str, Any] | None = None,
        lgbm_params: dict[str, Any] | None = None,
    ) -> None:
        self.horizon = horizon
        self.n_folds = n_folds
        self.seed = seed
        self.meta_alpha = meta_alpha
        self.xgb_params = xgb_params
        self.lgbm_params = lgbm_params

    def _base_learners(self) -> tuple[LogTargetRegressor, LogTargetRegressor]:
        xgb_params = self.xgb_params or default_xgb_params(self.seed)
        lgbm_params = self.lgbm_params or default_lgbm_params(self.seed)
        return (
            LogTargetRegressor(xgb.XGBRegressor(**xgb_params)),
            LogTargetRegressor(lgb.LGBMRegressor(**lgbm_params)),
        )

    def fit(self, X: Any, y: Any, progress: Progress | None = None) -> StackedEnsemble:
        say = progress or (lambda _msg: None)
        features = _as_matrix(X)
        target = np.asarray(y, dtype=np.float64)
        n = len(target)
        folds = purged_folds(n, self.n_folds, self.horizon)
        oof = np.full((n, 2), np.nan)
        for k, (train_idx, pred_idx) in enumerate(folds, start=1):
            say(
                f"out-of-fold {k}/{len(folds)}: fit on {len(train_idx)} rows, predict {len(pred_idx)}"
            )
            for j, learner in enumerate(self._base_learners()):
                learner.fit(features[train_idx], target[train_idx])
                oof[pred_idx, j] = learner.predict(features[pred_idx])
        covered = ~np.isnan(oof).any(axis=1)
        spread = float(np.mean(np.var(oof[covered], axis=0)))
        self.meta_model_ = Ridge(alpha=self.meta_alpha * spread * covered.sum(), positive=True).fit(
            oof[covered], target[covered]
        )
        say(f"final base learners on all {n} rows")
        self.xgb_model_, self.lgbm_model_ = self._base_learners()
        self.xgb_model_.fit(features, target)
        self.lgbm_model_.fit(features, target)
        self.oof_predictions_ = oof
        self.n_features_in_ = features.shape[1]
        return self

    def predict(self, X: Any) -> FloatArray:
        features = _as_matrix(X)
        stacked = np.column_stack(
            [self.xgb_model_.predict(features), self.lgbm_model_.predict(features)]
        )
        return np.asarray(self.meta_model_.predict(stacked), dtype=np.float64)

    def artifact(self, feature_cols: list[str], **metadata: Any) -> dict[str, Any]:
        """The pickled dict of the models-directory contract, plus ``metadata`` keys."""
        return {
            "xgb_model": self.xgb_model_,
            "lgbm_model": self.lgbm_model_,
            "meta_model": self.meta_model_,
            "feature_cols": list(feature_cols),
            **metadata,
        }


def predict_artifact(artifact: dict[str, Any], X: Any) -> FloatArray:
    """Forecasts from a loaded artifact, exactly as the spec's usage snippet computes them."""
    X_meta = np.column_stack([artifact["xgb_model"].predict(X), artifact["lgbm_model"].predict(X)])
    return np.asarray(artifact["meta_model"].predict(X_meta), dtype=np.float64)
