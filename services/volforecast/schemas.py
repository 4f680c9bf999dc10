"""One pydantic model per file format in the models directory, shared by writer and reader.

Every field of ``shared/spec/models-directory-spec.md`` is here with its documented name,
nesting and meaning; fields marked "added" go beyond the spec (documented in models/README.md).
Models allow unknown keys on read so that files written by a newer version stay readable.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

FORMAT_VERSION = 1

# Numbers a decision depends on (drift divides by the validation RMSE) are range-checked on
# read and on write: a NaN or a negative RMSE in a baseline is a corrupt file, not a value.
PositiveFinite = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFinite = Annotated[float, Field(ge=0, allow_inf_nan=False)]
RSquared = Annotated[float, Field(le=1, allow_inf_nan=False)]
Count = Annotated[int, Field(gt=0)]
SHA256_HEX = r"^[0-9a-f]{64}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


def _ordered(*pairs: tuple[str, dt.date, dt.date, bool]) -> None:
    """Each (label, first, second, strict): first <= second (first < second when strict)."""
    for label, first, second, strict in pairs:
        if first > second or (strict and first == second):
            raise ValueError(f"dates out of order: {label} ({first} vs {second})")


# --------------------------------------------------------------------------- training side


class DateRange(_Model):
    train_start: dt.date
    train_end: dt.date
    val_start: dt.date
    val_end: dt.date

    @model_validator(mode="after")
    def _in_order(self) -> Self:
        _ordered(
            ("train_start <= train_end", self.train_start, self.train_end, False),
            ("train_end < val_start", self.train_end, self.val_start, True),
            ("val_start <= val_end", self.val_start, self.val_end, False),
        )
        return self


class ValidationBaseline(_Model):
    """``validation_baseline.json``: Model A's validation metrics, the monitor's drift baseline."""

    validation_rmse: PositiveFinite
    validation_mae: PositiveFinite
    validation_r2: RSquared
    timestamp: str
    train_val_split: float = Field(gt=0, lt=1)
    date_range: DateRange
    # added
    run_id: str
    horizon: Count
    purge_rows: int = Field(ge=0)
    validation_samples: Count
    model_sha256: str = Field(
        pattern=SHA256_HEX, description="SHA-256 of model_90pct.pkl of the same run"
    )
    symbol: str = Field(
        "SPY", description="the underlying; files written before per-symbol sets are SPY's"
    )
    format_version: int = FORMAT_VERSION


class ModelAInfo(_Model):
    training_samples: Count
    training_date_start: dt.date
    training_date_end: dt.date
    validation_rmse: PositiveFinite
    validation_mae: PositiveFinite
    validation_r2: RSquared
    validation_samples: Count
    # added
    validation_date_start: dt.date
    validation_date_end: dt.date
    sha256: str = Field(pattern=SHA256_HEX)

    @model_validator(mode="after")
    def _in_order(self) -> Self:
        _ordered(
            ("training start <= end", self.training_date_start, self.training_date_end, False),
            ("training end < validation start", self.training_date_end,
             self.validation_date_start, True),
            ("validation start <= end", self.validation_date_start, self.validation_date_end,
             False),
        )  # fmt: skip
        return self


class ModelBInfo(_Model):
    training_samples: Count
    training_date_start: dt.date
    training_date_end: dt.date
    test_samples: Count
    test_date_start: dt.date
    test_date_end: dt.date
    test_rmse: PositiveFinite
    test_mae: PositiveFinite
    # R² on 30 rows can be far below zero, but never above one or NaN.
    test_r2: RSquared
    note: str = "Model B held out last 30 samples for testing"
    # added
    sha256: str = Field(pattern=SHA256_HEX)

    @model_validator(mode="after")
    def _in_order(self) -> Self:
        _ordered(
            ("training start <= end", self.training_date_start, self.training_date_end, False),
            ("training end < test start", self.training_date_end, self.test_date_start, True),
            ("test start <= end", self.test_date_start, self.test_date_end, False),
        )
        return self


class DualModelBaseline(_Model):
    """``dual_model_baseline.json``: both models' training facts and metrics."""

    timestamp: str
    model_a: ModelAInfo
    model_b: ModelBInfo
    # added
    run_id: str
    horizon: Count
    purge_rows: int = Field(ge=0)
    feature_cols: list[str] = Field(min_length=1)
    data_source: str
    data_end: dt.date
    symbol: str = Field(
        "SPY", description="the underlying; files written before per-symbol sets are SPY's"
    )
    format_version: int = FORMAT_VERSION

    @model_validator(mode="after")
    def _in_order(self) -> Self:
        _ordered(
            ("model A training start <= model B's", self.model_a.training_date_start,
             self.model_b.training_date_start, False),
            ("model B test end <= data end", self.model_b.test_date_end, self.data_end, False),
        )  # fmt: skip
        return self


class Manifest(_Model):
    """``manifest.json`` of one set: every other file of the set with its SHA-256.

    The integrity check covers everything a decision depends on (both pickles, both
    baselines, the training record); with a signing key, ``manifest.sig`` holds the
    HMAC-SHA256 of this file's bytes.
    """

    run_id: str
    created_at: str
    files: dict[str, Annotated[str, Field(pattern=SHA256_HEX)]]
    signature: Literal["none", "hmac-sha256"]
    format_version: int = FORMAT_VERSION


class TrainingRecord(_Model):
    """One line of ``training_history.jsonl``."""

    timestamp: str
    training_date: dt.date
    model_a: ModelAInfo
    model_b: ModelBInfo
    # added
    run_id: str
    horizon: int
    data_source: str
    data_end: dt.date
    as_of: dt.date | None
    duration_seconds: float
    symbol: str = Field(
        "SPY", description="the underlying; files written before per-symbol sets are SPY's"
    )
    ensemble_settings: str | None = Field(
        None,
        description="the ensemble's settings (a `volforecast select` candidate); none in lines "
        "written before the selection protocol",
    )


# --------------------------------------------------------------------------- monitoring side


class ModelSummary(_Model):
    training_samples: int
    training_date_start: dt.date
    training_date_end: dt.date


class TestWindow(_Model):
    n_samples: int
    date_start: dt.date
    date_end: dt.date


class Drift(_Model):
    model_a_drift_pct: float
    # added
    baseline_rmse: float
    model_a_rmse: float
    level: Literal["ok", "watch", "retrain"]


class Comparison(_Model):
    model_a_rmse: float
    model_b_rmse: float
    winner: Literal["Model A", "Model B"]
    model_b_win_rate: float = Field(description="percent of windows Model B wins")


class Window(_Model):
    name: str
    n_samples: int
    model_a_rmse: float
    model_b_rmse: float
    winner: Literal["Model A", "Model B"]


class Retraining(_Model):
    """added: the retraining advice and the rules that produced it."""

    action: Literal["none", "plan", "retrain_now"]
    consider_switching_to_b: bool
    reasons: list[str]


class FeatureDriftItem(_Model):
    psi: float
    ks_statistic: float
    ks_pvalue: float
    drifted: bool


class FeatureDrift(_Model):
    """added: per-feature drift of the new rows against Model A's training rows."""

    psi_threshold: float
    psi_min_rows: int
    ks_pvalue_threshold: float
    n_reference: int
    n_current: int
    n_drifted: int
    features: dict[str, FeatureDriftItem]
    skipped: str | None = Field(None, description="why no feature was tested, if none was")


class MonitoringRecord(_Model):
    """One line of ``monitoring_history.jsonl``."""

    timestamp: str
    monitoring_date: dt.date
    model_a: ModelSummary
    model_b: ModelSummary
    test_window: TestWindow
    drift: Drift
    comparison: Comparison
    recommendation: Literal["USE MODEL A (90%)", "USE MODEL B (ALL-30)"]
    windows: list[Window]
    # added
    recommendation_reason: str | None = Field(None, description="the rule that decided it")
    models_run_id: str
    as_of: dt.date | None
    data_source: str
    retraining: Retraining
    feature_drift: FeatureDrift
    symbol: str = Field(
        "SPY", description="the underlying; files written before per-symbol sets are SPY's"
    )


# --------------------------------------------------------------------------- evaluate


class ModelMetrics(_Model):
    """Out-of-sample metrics of one model over the walk-forward (volatility in daily units)."""

    rmse: float
    mae: float
    mse_var: float
    qlike: float
    mz_r2: float


class DMTest(_Model):
    """Diebold–Mariano test of the ensemble against one baseline under one loss.

    Negative ``statistic`` means the ensemble's loss is lower.
    """

    against: str
    loss: Literal["squared_error", "qlike"]
    statistic: float
    p_value: float
    lags: int
    mean_loss_difference: float
    p_value_holm: float | None = Field(
        None,
        description="p_value adjusted (Holm) for testing the ensemble against every baseline "
        "under this loss",
    )


class EvaluationReport(_Model):
    """``evaluation.json``, written by ``volforecast evaluate``."""

    metrics: dict[str, ModelMetrics]
    ratio_to_har_rv: dict[str, dict[str, float]]
    best_baseline: dict[str, str]
    ensemble_beats_every_baseline: dict[str, bool]
    diebold_mariano: list[DMTest]
    by_year: dict[str, dict[str, dict[str, float]]] = Field(
        default_factory=dict, description="year -> model -> rmse and qlike"
    )
    rows_by_year: dict[str, int] = Field(default_factory=dict)
    qlike_excluded_days: int = Field(
        0, ge=0, description="days left out of QLIKE (and its DM tests): zero realized volatility"
    )
    symbol: str
    data_source: str
    horizon: int
    purge_rows: int
    refit_every: int
    refits: int
    seed: int
    train_start: dt.date
    eval_start: dt.date
    eval_end: dt.date
    n_forecasts: int
    created_at: str
    volforecast_version: str
    duration_seconds: float
    format_version: int = FORMAT_VERSION


# --------------------------------------------------------------------------- predict and report


class Forecast(_Model):
    """What ``volforecast predict`` prints (JSON)."""

    as_of: dt.date
    features_date: dt.date
    horizon: int
    forecast_daily: float = Field(description="realized volatility of the next horizon days")
    forecast_annualized_pct: float
    model: Literal["A", "B"]
    model_file: str
    model_choice: str = Field(description="why this model was used")
    run_id: str
    training_date_end: dt.date
    data_source: str
    symbol: str = Field(
        "SPY", description="the underlying; files written before per-symbol sets are SPY's"
    )


class TrendSummary(_Model):
    """The numbers of ``volforecast report`` (the spec's "Analyze Performance Trends")."""

    training_runs: int
    first_validation_rmse: float | None
    latest_validation_rmse: float | None
    validation_rmse_change_pct: float | None
    monitoring_runs: int
    average_drift_pct: float | None
    latest_drift_pct: float | None
    model_b_average_win_rate: float | None
    runs_since_last_retrain: int
    latest_recommendation: str | None
    latest_retraining_action: str | None
    current_run_id: str


class TrendReport(_Model):
    """``report.json``: the summary and every series the plots draw."""

    summary: TrendSummary
    training: list[dict[str, str | float]]
    monitoring: list[dict[str, str | float]]
    latest_psi: dict[str, float]
    validation_forecasts: list[dict[str, str | float]]
    plots: list[str]
    created_at: str
    format_version: int = FORMAT_VERSION


# --------------------------------------------------------------------------- universe runs


class UniverseRow(_Model):
    """One symbol of a universe run: its result, or why it failed."""

    symbol: str
    status: Literal["ok", "failed"]
    exit_code: int = Field(ge=0)
    error: str | None = None
    result: dict[str, Any] | None = Field(
        None, description="the symbol's training record, monitoring record or forecast"
    )


class UniverseSummary(_Model):
    """What ``train``/``monitor``/``predict --symbols ... --format json`` print."""

    command: Literal["train", "monitor", "predict"]
    created_at: str
    symbols: list[UniverseRow]
    format_version: int = FORMAT_VERSION


class EvaluationSummaryRow(_Model):
    """One symbol at one horizon of ``volforecast evaluate --symbols/--horizons``."""

    symbol: str
    horizon: int
    status: Literal["ok", "failed"]
    exit_code: int = Field(ge=0)
    error: str | None = None
    report: str | None = Field(None, description="its evaluation.json, relative to the summary")
    n_forecasts: int | None = None
    eval_start: dt.date | None = None
    eval_end: dt.date | None = None
    best_baseline: dict[str, str] = Field(default_factory=dict)
    ratio_to_har_rv: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="model -> rmse and qlike, each over HAR-RV's"
    )
    ratio_to_best_baseline: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="model -> rmse and qlike, each over the best baseline's on that metric",
    )
    ensemble_beats_every_baseline: dict[str, bool] = Field(default_factory=dict)
    diebold_mariano: list[DMTest] = Field(default_factory=list)


class EvaluationSummary(_Model):
    """``summary.json`` of a multi-symbol or multi-horizon evaluate."""

    created_at: str
    symbols: list[str]
    horizons: list[int]
    results: list[EvaluationSummaryRow]
    duration_seconds: float
    volforecast_version: str
    format_version: int = FORMAT_VERSION


# --------------------------------------------------------------------------- replay


class PolicyScore(_Model):
    rmse: float
    qlike: float
    n_days: int


class ReplayDMTest(_Model):
    """Diebold–Mariano test of ``policy`` against ``against`` (negative: ``policy`` better)."""

    policy: str
    against: str
    loss: Literal["squared_error", "qlike"]
    statistic: float
    p_value: float
    mean_loss_difference: float
    # Holm-adjusted within the loss's family (follow_monitor against every other policy).
    p_value_holm: float | None = None


class AlarmScore(_Model):
    """A drift signal's alarms and what followed them (definitions: services/monitor/README)."""

    days_scored: int
    days_watch: int
    days_retrain: int
    retrain_now_advised: int | None = Field(
        None, description="days the monitor's retraining advice was 'retrain_now'"
    )
    true_alarm_rate_any: float | None = Field(
        None, description="share of watch-or-retrain days followed by a bad period"
    )
    true_alarm_rate_retrain: float | None = Field(
        None, description="share of retrain-level days followed by a bad period"
    )
    false_alarm_rate_any: float | None = None
    bad_periods_caught: float | None = Field(
        None, description="share of days before a bad period on which the signal alarmed"
    )
    base_rate: float | None = Field(None, description="share of days followed by a bad period")


class ReplayReport(_Model):
    """``replay.json``, written by ``volforecast replay``."""

    symbol: str
    data_source: str
    horizon: int
    replay_start: dt.date
    replay_end: dt.date
    train_every: int
    retrain_on_advice: bool
    days: int
    scheduled_trainings: int
    advised_trainings: int
    policies: dict[str, PolicyScore]
    diebold_mariano: list[ReplayDMTest]
    alarms: dict[str, AlarmScore]
    alarm_window_days: int
    model_b_days: int
    model_b_days_rmse: dict[str, float]
    created_at: str
    volforecast_version: str
    duration_seconds: float
    format_version: int = FORMAT_VERSION


# --------------------------------------------------------------------------- selection


# The ensemble's settings that a candidate names, defined once: ``volforecast.ensemble`` checks
# its arguments against these and the selection record stores them.
MetaLearner = Literal["ridge", "core_mix", "loss_mix"]
BiasCorrection = Literal["duan", "normal"]


class CandidateSpec(_Model):
    """One setting of the ensemble that ``volforecast select`` tries: the HAR core's
    regressors and bias correction, and the tree parameters over the defaults."""

    name: str
    description: str
    core: list[str]
    core_logs: list[str]
    bias: BiasCorrection
    # Fit time relative to the cheapest tree setting: the rule prefers the cheaper of two
    # candidates that score alike.
    cost: float
    xgb_params: dict[str, Any]
    lgbm_params: dict[str, Any]
    # ``StackedEnsemble.meta``; records written before it existed used "ridge".
    meta: MetaLearner = "ridge"


class CandidateScore(_Model):
    """A candidate's (or a yardstick's) losses on one series at one horizon, development
    period only."""

    symbol: str
    horizon: int
    model: str
    n_forecasts: int
    rmse: float
    qlike: float
    rmse_ratio_har_rv: float
    qlike_ratio_har_rv: float
    # The rule's number: the mean over the two losses of ln(model / HAR-RV).
    log_score: float


class SelectionRecord(_Model):
    """``selection.json``: the development-period protocol, every score and the choice per
    horizon. The packaged copy (``volforecast/selection.json``) is what the ensemble uses."""

    created_at: str
    volforecast_version: str
    data_source: str
    symbols: list[str]
    horizons: list[int]
    train_start: dt.date
    dev_eval_start: dt.date
    dev_end: dt.date
    refit_every: int
    rule: str
    candidates: list[CandidateSpec]
    scores: list[CandidateScore]
    # Horizon (as a string: JSON keys) -> the chosen candidate's name.
    chosen: dict[str, str]
    duration_seconds: float = 0.0
