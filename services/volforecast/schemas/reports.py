"""The formats of what the commands print and write outside the models directory: the
forecast, ``report.json``, ``evaluation.json`` and its universe summary, ``replay.json`` and
the selection record (``selection.json``). One pydantic model per format, shared by writer and
reader; added keys only, never a renamed or dropped one."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field

from volforecast.schemas.base import (
    FORMAT_VERSION,
    Probability,
    Record,
    Served,
    VarCheck,
)

# --------------------------------------------------------------------------- evaluate


class ModelMetrics(Record):
    """Out-of-sample metrics of one model over the walk-forward (volatility in daily units)."""

    rmse: float
    mae: float
    mse_var: float
    qlike: float
    mz_r2: float


class DMTest(Record):
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


class VarBacktest(VarCheck):
    """The 1-day VaR at one level over the walk-forward."""

    christoffersen_p: Probability = Field(
        description="Christoffersen's independence test: does an exceedance make the next likelier"
    )
    conditional_coverage_p: Probability = Field(
        description="Christoffersen's conditional coverage (rate and independence together)"
    )
    green_share: Probability | None = Field(
        description="share of 250-day windows with a Basel green count (99% VaR: at most 4 "
        "exceedances; 95% VaR: the same rule scaled, at most 17); none under 250 days"
    )


class EsBacktest(Record):
    """McNeil and Frey's (2000) test of the 1-day expected shortfall: on exceedance days the
    loss beyond the ES, in units of the day's scale, averages zero when the ES is right."""

    exceedances: int = Field(ge=0)
    mean_excess: float = Field(
        description="mean (loss - ES) / scale on exceedance days; above zero: ES too small"
    )
    mcneil_frey_p: Probability = Field(
        description="one-sided t-test p-value of mean_excess > 0 (1 with under 2 exceedances)"
    )


class DistributionScores(Record):
    """One model's forecast distribution over the walk-forward."""

    method: str
    days: int
    coverage: dict[str, Probability] = Field(
        description='central interval level ("0.5", "0.9") -> share of days inside it'
    )
    pinball: float = Field(description="pinball loss averaged over days and quantile levels")
    winkler_90: float = Field(description="interval (Winkler) score of the 90% interval")
    var: dict[str, VarBacktest] = Field(description="1-day VaR level -> its backtest")
    es: dict[str, EsBacktest] = Field(description="1-day ES level -> its backtest")


class EvaluationReport(Record):
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
    distribution: dict[str, DistributionScores] = Field(
        default_factory=dict,
        description="model -> its forecast distribution's scores (the ensemble and the "
        "distribution baselines)",
    )


# --------------------------------------------------------------------------- predict and report


class Forecast(Served, Record):
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
    quantiles: dict[str, float] | None = Field(
        None,
        description='nominal level ("0.05") -> that quantile of the horizon\'s realized '
        "volatility (daily units); none for sets trained before calibration",
    )
    interval_90: list[float] | None = Field(
        None, description="[lower, upper] of the central 90% interval (daily units)"
    )
    var: dict[str, float] | None = Field(
        None, description='level ("0.95", "0.99") -> VaR of the horizon\'s log return (a loss > 0)'
    )
    es: dict[str, float] | None = Field(
        None, description="level -> expected shortfall of the horizon's log return (a loss > 0)"
    )
    var_1d: dict[str, float] | None = Field(None, description="the next day's VaR")
    es_1d: dict[str, float] | None = Field(None, description="the next day's expected shortfall")
    risk_method: str | None = Field(None, description="how the distribution was calibrated")


class TrendSummary(Record):
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


class TrendReport(Record):
    """``report.json``: the summary and every series the plots draw."""

    summary: TrendSummary
    training: list[dict[str, str | float]]
    monitoring: list[dict[str, str | float]]
    latest_psi: dict[str, float]
    validation_forecasts: list[dict[str, str | float]]
    risk_forecasts: list[dict[str, str | float]] = Field(
        default_factory=list,
        description="added: Model A from its validation period on: realized, forecast, "
        "lower_90, upper_90, var_95, var_99 and the next day's loss_1d (absent while unknown)",
    )
    plots: list[str]
    created_at: str
    deployments: list[dict[str, Any]] = Field(
        default_factory=list, description="deployments.jsonl: which set was live when, and why"
    )
    format_version: int = FORMAT_VERSION


# --------------------------------------------------------------------------- universe runs


class UniverseRow(Record):
    """One symbol of a universe run: its result, or why it failed."""

    symbol: str
    status: Literal["ok", "failed"]
    exit_code: int = Field(ge=0)
    error: str | None = None
    result: dict[str, Any] | None = Field(
        None, description="the symbol's training record, monitoring record or forecast"
    )


class UniverseSummary(Record):
    """What ``train``/``monitor``/``predict --symbols ... --format json`` print."""

    command: Literal["train", "monitor", "predict"]
    created_at: str
    symbols: list[UniverseRow]
    format_version: int = FORMAT_VERSION


class EvaluationSummaryRow(Record):
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
    distribution: dict[str, DistributionScores] = Field(
        default_factory=dict, description="added: evaluation.json's distribution scores"
    )


class EvaluationSummary(Record):
    """``summary.json`` of a multi-symbol or multi-horizon evaluate."""

    created_at: str
    symbols: list[str]
    horizons: list[int]
    results: list[EvaluationSummaryRow]
    duration_seconds: float
    volforecast_version: str
    format_version: int = FORMAT_VERSION


# --------------------------------------------------------------------------- replay


class PolicyScore(Record):
    rmse: float
    qlike: float
    n_days: int


class ReplayDMTest(Record):
    """Diebold–Mariano test of ``policy`` against ``against`` (negative: ``policy`` better)."""

    policy: str
    against: str
    loss: Literal["squared_error", "qlike"]
    statistic: float
    p_value: float
    mean_loss_difference: float
    # Holm-adjusted within the loss's family (follow_monitor against every other policy).
    p_value_holm: float | None = None


class AlarmScore(Record):
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


class ReplayReport(Record):
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
    signals: dict[str, SignalRate] = Field(
        default_factory=dict,
        description="added: per signal, the days it alarmed on this replay (on a clean replay: "
        "its false alarms) and that per year",
    )
    injections: list[InjectionOutcome] = Field(
        default_factory=list, description="added: every injected fault (--inject) and its delays"
    )
    detection: dict[str, dict[str, Detection]] = Field(
        default_factory=dict,
        description="added: fault kind -> signal -> share of its injections detected and the "
        "median delay",
    )


class SignalRate(Record):
    """How often one signal alarmed on a replay."""

    days: int
    per_year: float


class InjectionOutcome(Record):
    """One injected fault: per signal, trading days from its first day to the first alarm
    (0: the same day), or none when the signal never alarmed in the window."""

    kind: str
    start: dt.date
    delays: dict[str, int | None]


class Detection(Record):
    """One signal on one fault kind, over its injections."""

    injections: int
    detected: float = Field(description="share of the injections it alarmed on")
    median_delay_days: float | None = Field(description="over the detected ones")


# --------------------------------------------------------------------------- selection


# The ensemble's settings that a candidate names, defined once: ``volforecast.ensemble`` checks
# its arguments against these and the selection record stores them.
MetaLearner = Literal["ridge", "core_mix", "loss_mix"]
BiasCorrection = Literal["duan", "normal"]


class CandidateSpec(Record):
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


class CandidateScore(Record):
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


class SelectionRecord(Record):
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
