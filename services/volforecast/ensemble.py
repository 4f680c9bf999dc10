"""Stacked ensemble: XGBoost and LightGBM base learners, and a meta-learner on out-of-fold
predictions from purged chronological folds that mixes them with weights summing to one.

scikit-learn's StackingRegressor refuses time-series splits (its cross_val_predict needs every
row predicted once), so the stacking is done here: expanding-window folds, each training set
purged of the ``horizon`` rows whose forward window reaches into the fold it predicts; the first
block, which has no past to learn from, gets no out-of-fold prediction and is not used by the
meta-learner.

What each part does, and why (the experiments are in ``services/train/README.md``):

- ``HARBoostRegressor`` (each base learner): a log-linear HAR core — OLS of the log realized
  variance on the logs of the 1-, 5-, 22-day realized and Parkinson volatilities and VIX, and on
  VIX relative to its 22-day mean (already a log), bias-corrected by Duan's smearing (the mean
  of exp(residual)) — then boosted trees that correct it, starting from it
  (XGBoost ``base_margin``, LightGBM ``init_score``). Trees alone cannot extrapolate beyond the
  volatility levels they were trained on and lost to HAR; the linear core carries the level and
  the trees learn the non-linear rest. The trees use the gamma objective on variance: its
  deviance is exactly QLIKE, so they aim at the conditional mean of variance, which is what
  QLIKE rewards. ``predict`` returns volatility (the square root) in target units.
- ``MixingRidge`` (the meta-learner): Ridge on the out-of-fold forecasts, constrained to weights
  that sum to one and shrunk towards equal weights. A free Ridge re-scales the level to minimise
  squared error, which under-forecasts calm periods and loses on QLIKE; mixing keeps the base
  learners' calibration.
- ``meta="core_mix"``: the trees must earn their weight inside each training window. The
  meta-learner mixes three out-of-fold forecasts — the linear core alone and the two boosted
  learners — so where the trees do not beat the core on the purged folds, the mix moves towards
  the core. The core's share is folded into the base learners (``core_weight``), which keeps
  the models-directory contract: the pickled meta-learner still mixes the two learners'
  predictions (``FoldedMix``), and the spec's two-column snippet gives the same forecast.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, get_args

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import TimeSeriesSplit
from sklearn.utils.validation import check_is_fitted

from volforecast.features import FEATURE_COLUMNS
from volforecast.metrics import qlike, rmse
from volforecast.progress import Progress
from volforecast.schemas import BiasCorrection, MetaLearner

FloatArray = npt.NDArray[np.float64]
# Volatility below this (five days of unchanged prices) would make log() explode.
MIN_VOL = 1e-5
# Regressors of the log-linear HAR core: logs of these positive features...
HAR_CORE: tuple[str, ...] = (
    "spy_rv_1d",
    "spy_rv_5d",
    "spy_rv_22d",
    "spy_parkinson_1d",
    "spy_parkinson_5d",
    "spy_parkinson_22d",
    "vix_level",
)
# ... and these features, which are log ratios already (used as they are).
HAR_CORE_LOGS: tuple[str, ...] = ("vix_rel_22d",)


def _as_matrix(X: Any) -> FloatArray:
    # Base learners are fitted on plain arrays so that callers may pass a DataFrame (columns in
    # feature_cols order) or an array without feature-name warnings.
    return np.asarray(X, dtype=np.float64)


def _feature_matrix(X: Any, columns: Sequence[str]) -> FloatArray:
    """``X`` as the matrix the learners read: a DataFrame's columns are taken by name in
    ``columns`` order (so a caller's column order cannot mix up the features); an array is
    taken as it is (its columns must already be in that order)."""
    if isinstance(X, pd.DataFrame):
        missing = [c for c in columns if c not in X.columns]
        if missing:
            raise ValueError(f"X lacks the feature columns {missing}")
        return _as_matrix(X.loc[:, list(columns)])
    return _as_matrix(X)


def _volatility(log_variance: Any) -> FloatArray:
    return np.asarray(np.sqrt(np.exp(log_variance)), dtype=np.float64)


def ols(X: FloatArray, y: FloatArray) -> tuple[FloatArray, float]:
    """Least squares with an intercept (first coefficient); returns (coef, residual variance)."""
    design = np.column_stack([np.ones(len(X)), X])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    dof = max(len(y) - design.shape[1], 1)
    return np.asarray(coef, dtype=np.float64), float(resid @ resid / dof)


META_LEARNERS: tuple[str, ...] = get_args(MetaLearner)
# Bias corrections of a log-variance regression, whose exp() estimates the median of the
# variance, not the mean that RMSE and QLIKE reward.
BIAS_CORRECTIONS: tuple[str, ...] = get_args(BiasCorrection)


# Moves a core's own coefficients (intercept first), given its logged design and log-variance
# target: how a base learner borrows from outside its series (volforecast.pooling).
CorePrior = Callable[[FloatArray, FloatArray, FloatArray], FloatArray]
# Gives the prior for the base learners fitted on the training rows up to (and including) a row
# position; StackedEnsemble.fit asks it once per out-of-fold fit and once for the final fit.
CorePriors = Callable[[int], CorePrior | None]


class LogCoreFit(NamedTuple):
    coef: FloatArray  # intercept first
    log_bias: float  # log of the bias-correction factor
    resid_var: float


def fit_log_core(X: FloatArray, log_variance: FloatArray, bias: str) -> LogCoreFit:
    """OLS of log variance on ``X``, with the log of its bias-correction factor.

    ``"duan"``: Duan's (1983) smearing, the log of the mean of exp(residual) — unbiased in
    variance whatever the residuals' distribution. ``"normal"``: s²/2, right only for normal
    residuals; at h = 1 the residuals are log chi-square and it over-forecasts the variance
    about 2.6 times.
    """
    if bias not in BIAS_CORRECTIONS:
        raise ValueError(f"bias must be one of {BIAS_CORRECTIONS}, got {bias!r}")
    coef, resid_var = ols(X, log_variance)
    return core_with(coef, X, log_variance, bias, resid_var)


def core_with(
    coef: FloatArray,
    X: FloatArray,
    log_variance: FloatArray,
    bias: str,
    resid_var: float | None = None,
) -> LogCoreFit:
    """The core with coefficients ``coef`` (intercept first; the OLS fit's, or moved by a
    prior) and the bias correction ``bias`` of its own residuals on ``X`` (``resid_var``:
    their variance when the caller has it)."""
    coef = np.asarray(coef, dtype=np.float64)
    resid = log_variance - (coef[0] + X @ coef[1:])
    if resid_var is None:
        resid_var = float(resid @ resid / max(len(resid) - len(coef), 1))
    if bias == "normal":
        return LogCoreFit(coef, resid_var / 2.0, resid_var)
    return LogCoreFit(coef, float(np.log(np.mean(np.exp(resid)))), resid_var)


class HARBoostRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Log-linear HAR core plus boosted corrections; ``predict`` returns volatility.

    Parameters
    ----------
    booster : an ``xgboost.XGBRegressor`` or ``lightgbm.LGBMRegressor`` with a gamma objective.
    linear_features : column positions of the HAR core's positive regressors (logged).
    log_features : column positions of regressors that are logs already (used as they are).
    bias : the core's bias correction (``fit_log_core``).
    core_weight : share of the linear core alone in ``predict`` (volatility units); the rest is
        the boosted forecast. ``StackedEnsemble(meta="core_mix" | "loss_mix")`` sets it from
        out-of-fold data.
    core_prior : ``None`` (the core is the series' own OLS) or a callable
        ``(own_coef, logged_design, log_variance) -> coef`` that moves the own coefficients
        (intercept first), e.g. towards a panel's (``volforecast.pooling.PanelShrinkage``); the
        bias correction and the trees then start from the moved core. A prior with a method
        ``level_shift(logged_design, log_variance) -> float`` also moves the forecast's log
        variance by that much (``level_shift_``), after the trees.
    """

    def __init__(
        self,
        booster: Any,
        linear_features: Sequence[int],
        log_features: Sequence[int] = (),
        bias: str = "duan",
        core_weight: float = 0.0,
        core_prior: CorePrior | None = None,
    ) -> None:
        self.booster = booster
        self.linear_features = linear_features
        self.log_features = log_features
        self.bias = bias
        self.core_weight = core_weight
        self.core_prior = core_prior

    def _log_core(self, X: FloatArray) -> FloatArray:
        logged = np.log(np.maximum(X[:, list(self.linear_features)], MIN_VOL))
        return np.column_stack([logged, X[:, list(self.log_features)]])

    def _margin(self, X: FloatArray) -> FloatArray:
        """Log variance forecast of the linear core (bias-corrected)."""
        coef = self.linear_coef_
        return np.asarray(coef[0] + self._log_core(X) @ coef[1:] + self.log_bias_)

    def fit(self, X: Any, y: Any) -> HARBoostRegressor:
        features = _as_matrix(X)
        variance = np.maximum(np.asarray(y, dtype=np.float64), MIN_VOL) ** 2
        logged, log_var = self._log_core(features), np.log(variance)
        core = fit_log_core(logged, log_var, self.bias)
        # getattr: learners pickled before core_prior existed fitted their own core.
        prior = getattr(self, "core_prior", None)
        self.level_shift_ = 0.0
        if prior is not None:
            core = core_with(prior(core.coef, logged, log_var), logged, log_var, self.bias)
            # A prior may also move the forecast's level (the pool's level anchor): added at
            # predict time only, for the trees fitted on the training rows would learn it back.
            shift = getattr(prior, "level_shift", None)
            if shift is not None:
                self.level_shift_ = float(shift(logged, log_var))
        self.linear_coef_, self.log_bias_ = core.coef, core.log_bias
        margin = self._margin(features)
        self.booster_ = clone(self.booster)
        if isinstance(self.booster_, xgb.XGBModel):
            self.booster_.fit(features, variance, base_margin=margin)
        elif isinstance(self.booster_, lgb.LGBMModel):
            self.booster_.fit(features, variance, init_score=margin)
        else:
            raise TypeError(f"booster must be XGBoost or LightGBM, got {type(self.booster)}")
        self.n_features_in_ = features.shape[1]
        return self

    def _shifted(self, log_var: FloatArray) -> FloatArray:
        # getattr: learners pickled before level_shift_ existed had none.
        shift = float(getattr(self, "level_shift_", 0.0))
        return log_var + shift if shift else log_var

    def predict_core(self, X: Any) -> FloatArray:
        """The linear core's volatility forecast alone (no trees)."""
        return _volatility(self._shifted(self._margin(_as_matrix(X))))

    def predict(self, X: Any) -> FloatArray:
        features = _as_matrix(X)
        fitted = self._margin(features)  # what the trees were fitted on top of
        if isinstance(self.booster_, xgb.XGBModel):
            log_var = self.booster_.predict(features, base_margin=fitted, output_margin=True)
        else:
            log_var = np.asarray(self.booster_.predict(features, raw_score=True)) + fitted
        log_var, margin = self._shifted(log_var), self._shifted(fitted)
        boosted = _volatility(log_var)
        # getattr: learners pickled before core_weight existed are pure boosted forecasts.
        w = float(getattr(self, "core_weight", 0.0))
        if w == 0.0:
            return boosted
        return np.asarray((1.0 - w) * boosted + w * _volatility(margin), dtype=np.float64)


class MixingRidge(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Ridge meta-learner whose weights sum to one, shrunk towards equal weights.

    Ridge (no intercept) regresses ``y - mean(P)`` on the deviations ``P - mean(P)`` of the
    base forecasts from their average; the penalty ``alpha`` is relative to the deviations'
    spread, so it is scale-free. Negative weights are clipped and the rest renormalised.
    """

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha

    def fit(self, P: Any, y: Any) -> MixingRidge:
        preds = _as_matrix(P)
        target = np.asarray(y, dtype=np.float64)
        k = preds.shape[1]
        center = preds.mean(axis=1)
        dev = preds - center[:, None]
        spread = float(np.sum(dev**2)) / k
        self.ridge_ = Ridge(alpha=self.alpha * max(spread, 1e-300), fit_intercept=False)
        self.ridge_.fit(dev, target - center)
        raw = 1.0 / k + self.ridge_.coef_ - self.ridge_.coef_.mean()
        clipped = np.maximum(raw, 0.0)
        self.coef_ = clipped / clipped.sum()
        self.n_features_in_ = k
        return self

    def predict(self, P: Any) -> FloatArray:
        return np.asarray(_as_matrix(P) @ self.coef_, dtype=np.float64)


def simplex_grid(k: int, step: float) -> FloatArray:
    """Every weight vector of length ``k`` whose entries are multiples of ``step`` summing to
    one, in lexicographic order (rows)."""
    n = round(1.0 / step)
    rows = [c for c in itertools.product(range(n + 1), repeat=k) if sum(c) == n]
    return np.asarray(rows, dtype=np.float64) / n


class LossMix(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Convex weights of the base forecasts minimising ln RMSE + ln QLIKE of their mix.

    The weights are searched on a grid of the simplex (``step``: 0.05 gives 231 mixes of three
    forecasts), which is deterministic, needs no optimiser and is coarse enough not to chase
    noise; the first of equal scores wins. The losses are ``volforecast.metrics``'s, the
    ones every report scores (QLIKE leaves out days of zero realized volatility).
    """

    def __init__(self, step: float = 0.05) -> None:
        self.step = step

    def fit(self, P: Any, y: Any) -> LossMix:
        preds = _as_matrix(P)
        target = np.asarray(y, dtype=np.float64)
        grid = simplex_grid(preds.shape[1], self.step)
        # Floored: a mix equal to the target has zero loss, and ln 0 would warn.
        self.scores_ = np.array(
            [
                np.log(max(rmse(target, mixed), 1e-300)) + np.log(max(qlike(target, mixed), 1e-300))
                for mixed in (preds @ w for w in grid)
            ]
        )
        self.coef_ = grid[int(np.argmin(self.scores_))]
        self.n_features_in_ = preds.shape[1]
        return self

    def predict(self, P: Any) -> FloatArray:
        return np.asarray(_as_matrix(P) @ self.coef_, dtype=np.float64)


class FoldedMix(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """The three-way meta-learner of ``meta="core_mix"`` / ``"loss_mix"`` in the contract's
    two-column form.

    ``mixing`` is that meta-learner (``MixingRidge`` or ``LossMix``), fitted on the
    (core, xgb, lgbm) out-of-fold forecasts. The core's share goes into the base learners
    (``core_weight_``, set by the ensemble as their ``core_weight``); ``predict`` mixes the two
    learners' predictions with the rest of the weights renormalised (``fold_core_share``), which
    gives the same three-way mix.
    """

    def __init__(self, mixing: MixingRidge | LossMix) -> None:
        self.mixing = mixing

    def fit(self, P: Any = None, y: Any = None) -> FoldedMix:
        self.core_weight_, learners = fold_core_share(self.mixing.coef_)
        self.coef_ = np.asarray(learners, dtype=np.float64)
        self.n_features_in_ = 2
        return self

    def predict(self, P: Any) -> FloatArray:
        return np.asarray(_as_matrix(P) @ self.coef_, dtype=np.float64)


def fold_core_share(weights: Sequence[float]) -> tuple[float, tuple[float, float]]:
    """Split a (core, xgb, lgbm) mix into the learners' ``core_weight`` and their own mix.

    With core weight ω and learner weights a, b of the rest, a·((1-ω)x + ωc) + b·((1-ω)l + ωc)
    = ωc + a(1-ω)x + b(1-ω)l: the same three-way mix, for a and b summing to one.
    """
    core, w_xgb, w_lgbm = (float(w) for w in weights)
    rest = w_xgb + w_lgbm
    if rest <= 0.0:
        return 1.0, (0.5, 0.5)
    return core, (w_xgb / rest, w_lgbm / rest)


def default_xgb_params(seed: int, n_jobs: int = 1) -> dict[str, Any]:
    # Few, shallow, heavily subsampled trees: they only correct the HAR core. The shipped
    # strength per horizon is the selection protocol's (``volforecast.selection``), which
    # overrides some of these; these are its "light" candidate.
    return {
        "objective": "reg:gamma",
        "n_estimators": 150,
        "learning_rate": 0.01,
        "max_depth": 2,
        "min_child_weight": 50.0,
        "subsample": 0.5,
        "colsample_bytree": 0.8,
        "reg_lambda": 1.0,
        "tree_method": "hist",
        "random_state": seed,
        "n_jobs": n_jobs,
    }


def default_lgbm_params(seed: int, n_jobs: int = 1) -> dict[str, Any]:
    return {
        "objective": "gamma",
        "n_estimators": 150,
        "learning_rate": 0.01,
        "num_leaves": 4,
        "min_child_samples": 200,
        "subsample": 0.5,
        "subsample_freq": 1,
        "colsample_bytree": 0.8,
        "reg_lambda": 1.0,
        "random_state": seed,
        "n_jobs": n_jobs,
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
    """XGBoost + LightGBM HAR-boost learners, mixed out of fold by the meta-learner ``meta``
    (weights that sum to one: a shrunk Ridge by default, or a mix with the linear core alone).

    ``predict`` before ``fit`` raises ``sklearn.exceptions.NotFittedError``; a DataFrame's
    columns are matched to ``feature_cols`` by name. ``volforecast.selection.make_ensemble``
    (or ``volforecast.VolForecaster``) builds the shipped setting: a bare ``StackedEnsemble()``
    is the default grid point, not the packaged choice.

    Parameters
    ----------
    horizon : purge gap (rows) between a fold's training rows and the rows it predicts.
    n_folds : number of out-of-fold blocks for the meta-learner.
    seed : random seed of both base learners.
    n_jobs : threads of each base learner's fit (``volforecast.runtime.fit_threads``).
    meta_alpha : Ridge penalty of the meta-learner, relative to the spread of the base forecasts.
    feature_cols : names of the columns of X, in order (the HAR core is found by name).
    xgb_params, lgbm_params : overrides of ``default_xgb_params`` / ``default_lgbm_params``.
    core, core_logs : the HAR core's regressors, logged / used as they are (logs already).
    bias : the core's bias correction (``fit_log_core``).
    meta : ``"ridge"`` mixes the two boosted learners; ``"core_mix"`` mixes them with the linear
        core alone, all three out of fold; ``"loss_mix"`` mixes the same three to minimise
        ln RMSE + ln QLIKE (module docstring).
    """

    def __init__(
        self,
        horizon: int = 5,
        n_folds: int = 5,
        seed: int = 42,
        n_jobs: int = 1,
        meta_alpha: float = 0.1,
        feature_cols: Sequence[str] = FEATURE_COLUMNS,
        xgb_params: dict[str, Any] | None = None,
        lgbm_params: dict[str, Any] | None = None,
        core: Sequence[str] = HAR_CORE,
        core_logs: Sequence[str] = HAR_CORE_LOGS,
        bias: str = "duan",
        meta: str = "ridge",
    ) -> None:
        self.horizon = horizon
        self.n_folds = n_folds
        self.seed = seed
        self.n_jobs = n_jobs
        self.meta_alpha = meta_alpha
        self.feature_cols = feature_cols
        self.xgb_params = xgb_params
        self.lgbm_params = lgbm_params
        self.core = core
        self.core_logs = core_logs
        self.bias = bias
        self.meta = meta

    def _base_learners(
        self, core_weight: float = 0.0, core_prior: CorePrior | None = None
    ) -> tuple[HARBoostRegressor, HARBoostRegressor]:
        cols = list(self.feature_cols)
        missing = [c for c in (*self.core, *self.core_logs) if c not in cols]
        if missing:
            raise ValueError(f"feature_cols lacks the HAR core columns {missing}")
        core = [cols.index(c) for c in self.core]
        core_logs = [cols.index(c) for c in self.core_logs]
        xgb_params = {**default_xgb_params(self.seed, self.n_jobs), **(self.xgb_params or {})}
        lgbm_params = {**default_lgbm_params(self.seed, self.n_jobs), **(self.lgbm_params or {})}
        return (
            HARBoostRegressor(
                xgb.XGBRegressor(**xgb_params), core, core_logs, self.bias, core_weight, core_prior
            ),
            HARBoostRegressor(
                lgb.LGBMRegressor(**lgbm_params),
                core,
                core_logs,
                self.bias,
                core_weight,
                core_prior,
            ),
        )

    def fit_ends(self, n_rows: int) -> list[int]:
        """The position of the last training row of every fit ``fit`` makes on ``n_rows``
        rows: the out-of-fold fits in order, then the final fit (what ``core_priors`` is asked).

        Examples
        --------
        >>> StackedEnsemble(horizon=5, n_folds=2).fit_ends(100)
        [28, 61, 99]
        """
        folds = purged_folds(n_rows, self.n_folds, self.horizon)
        return [int(train_idx[-1]) for train_idx, _ in folds] + [n_rows - 1]

    def fit(
        self,
        X: Any,
        y: Any,
        progress: Progress | None = None,
        core_priors: CorePriors | None = None,
    ) -> StackedEnsemble:
        """Fit the base learners out of fold, the meta-learner on their forecasts, and the
        final learners on every row.

        ``core_priors`` (optional) gives each fit's core prior from the position of the last
        training row it sees (``CorePriors``): a prior built from data up to that row's date
        keeps every out-of-fold forecast free of later information.
        """
        if self.meta not in META_LEARNERS:
            raise ValueError(f"meta must be one of {META_LEARNERS}, got {self.meta!r}")
        say = progress or (lambda _msg: None)
        features = _feature_matrix(X, self.feature_cols)
        target = np.asarray(y, dtype=np.float64)
        n = len(target)
        folds = purged_folds(n, self.n_folds, self.horizon)
        oof = np.full((n, 2), np.nan)
        oof_core = np.full(n, np.nan)
        for k, (train_idx, pred_idx) in enumerate(folds, start=1):
            say(
                f"out-of-fold {k}/{len(folds)}: fit on {len(train_idx)} rows, predict {len(pred_idx)}"
            )
            prior = core_priors(int(train_idx[-1])) if core_priors is not None else None
            for j, learner in enumerate(self._base_learners(core_prior=prior)):
                learner.fit(features[train_idx], target[train_idx])
                oof[pred_idx, j] = learner.predict(features[pred_idx])
                if j == 0:  # both learners share the core: same data, same regression
                    oof_core[pred_idx] = learner.predict_core(features[pred_idx])
        covered = ~np.isnan(oof).any(axis=1)
        core_weight = 0.0
        if self.meta in ("core_mix", "loss_mix"):
            three = np.column_stack([oof_core, oof])
            mixing = MixingRidge(alpha=self.meta_alpha) if self.meta == "core_mix" else LossMix()
            mix = mixing.fit(three[covered], target[covered])
            folded = FoldedMix(mix).fit()
            core_weight = folded.core_weight_
            self.meta_model_: MixingRidge | FoldedMix = folded
            self.mix_weights_ = dict(
                zip(("core", "xgb", "lgbm"), map(float, mix.coef_), strict=True)
            )
            mixed = mix.predict(three[covered])
        else:
            self.meta_model_ = MixingRidge(alpha=self.meta_alpha).fit(oof[covered], target[covered])
            w_xgb, w_lgbm = map(float, self.meta_model_.coef_)
            self.mix_weights_ = {"core": 0.0, "xgb": w_xgb, "lgbm": w_lgbm}
            mixed = self.meta_model_.predict(oof[covered])
        # The ensemble's own out-of-fold forecast (NaN on the first block): what it got wrong
        # inside its training window, which volforecast.calibration turns into distributions.
        self.oof_forecast_ = np.full(n, np.nan)
        self.oof_forecast_[covered] = mixed
        say(f"final base learners on all {n} rows")
        prior = core_priors(n - 1) if core_priors is not None else None
        self.xgb_model_, self.lgbm_model_ = self._base_learners(core_weight, prior)
        self.xgb_model_.fit(features, target)
        self.lgbm_model_.fit(features, target)
        self.oof_predictions_ = oof
        self.oof_core_ = oof_core
        self.n_features_in_ = features.shape[1]
        return self

    def predict(self, X: Any) -> FloatArray:
        """Volatility forecasts of the rows of ``X`` (a DataFrame: columns taken by name)."""
        check_is_fitted(self, "meta_model_")
        features = _feature_matrix(X, self.feature_cols)
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
