"""The models directory's file formats: one pydantic model per file, shared by writer and
reader (the baselines, the manifest, the training and monitoring history lines).

Every field of ``shared/spec/models-directory-spec.md`` is here with its documented name,
nesting and meaning; fields marked "added" go beyond the spec (documented in models/README.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from volforecast.schemas.base import (
    FORMAT_VERSION,
    SHA256_HEX,
    Count,
    NonNegativeFinite,
    PositiveFinite,
    Probability,
    Record,
    RSquared,
    Served,
    VarCheck,
    ordered,
)

# --------------------------------------------------------------------------- training side


class DateRange(Record):
    train_start: dt.date
    train_end: dt.date
    val_start: dt.date
    val_end: dt.date

    @model_validator(mode="after")
    def _in_order(self) -> Self:
        ordered(
            ("train_start <= train_end", self.train_start, self.train_end, False),
            ("train_end < val_start", self.train_end, self.val_start, True),
            ("val_start <= val_end", self.val_start, self.val_end, False),
        )
        return self


class ValidationBaseline(Record):
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


class ModelAInfo(Record):
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
        ordered(
            ("training start <= end", self.training_date_start, self.training_date_end, False),
            ("training end < validation start", self.training_date_end,
             self.validation_date_start, True),
            ("validation start <= end", self.validation_date_start, self.validation_date_end,
             False),
        )  # fmt: skip
        return self


class ModelBInfo(Record):
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
        ordered(
            ("training start <= end", self.training_date_start, self.training_date_end, False),
            ("training end < test start", self.training_date_end, self.test_date_start, True),
            ("test start <= end", self.test_date_start, self.test_date_end, False),
        )
        return self


class DualModelBaseline(Record):
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
    implied_vol: str | None = Field(
        None, description="the implied-volatility index the set was fitted with (added)"
    )
    format_version: int = FORMAT_VERSION

    @model_validator(mode="after")
    def _in_order(self) -> Self:
        ordered(
            ("model A training start <= model B's", self.model_a.training_date_start,
             self.model_b.training_date_start, False),
            ("model B test end <= data end", self.model_b.test_date_end, self.data_end, False),
        )  # fmt: skip
        return self


class Manifest(Record):
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
    # added: the lineage of the set (volforecast.lineage), as in its training record
    data_digest: dict[str, str] | None = None
    library_versions: dict[str, str] | None = None


class PoolingInfo(Record):
    """What one model's HAR core was shrunk towards (``train --pool-universe``): the panel of
    its final fit, on the pool's rows up to its last training day."""

    universe: str = Field(description="the --pool-universe file")
    series: list[str] = Field(description="the pool series in the panel (the model's own left out)")
    panel_rows: Count = Field(description="labeled rows the panel was fitted on")
    panel_through: dt.date = Field(description="the last day of any pool series' rows used")
    kappa: PositiveFinite = Field(description="the shrinkage constant (pooling.POOL_KAPPA)")
    own_weight: Probability = Field(
        description="the weight on the series' own coefficients, n / (n + kappa)"
    )
    # added: the level anchor (pooling.POOL_LEVEL_ANCHOR); 0 and null in sets before it
    level_anchor: float = Field(
        0.0, ge=0.0, description="the level anchor b (pooling.POOL_LEVEL_ANCHOR); 0: none"
    )
    long_run_log_vix: float | None = Field(
        None, description="the mean log VIX over every pool day by the cut (the anchor's level)"
    )


class TrainingRecord(Record):
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
    implied_vol: str | None = Field(
        None,
        description="the implied-volatility index the set was fitted with (e.g. VIX, VXN); none "
        "in sets written before it was recorded",
    )
    data_digest: dict[str, str] | None = Field(
        None,
        description="SHA-256 of each input series over the rows fitted on (volforecast.lineage)",
    )
    library_versions: dict[str, str] | None = Field(
        None, description="Python's and every modelling library's version at training"
    )
    data_stale: bool = Field(
        False, description="trained on the cache after a failed download (--allow-stale-data)"
    )
    repaired_rows: list[str] = Field(
        default_factory=list,
        description="bad ticks the bad-rows policy repaired in the data fitted on, one per row",
    )
    history_digest: str | None = Field(
        None,
        description="SHA-256 of the close and implied volatility fitted on "
        "(lineage.history_digest): monitor compares it with the feed's same period",
    )
    pooling: dict[str, PoolingInfo] | None = Field(
        None,
        description="per model (model_a, model_b), the panel its core was shrunk towards; none "
        "without --pool-universe",
    )


# --------------------------------------------------------------------------- monitoring side


class ModelSummary(Record):
    training_samples: int
    training_date_start: dt.date
    training_date_end: dt.date


class TestWindow(Record):
    n_samples: int
    date_start: dt.date
    date_end: dt.date


class Drift(Record):
    # Range-checked as the baselines are: a NaN here is a corrupt line, skipped by readers.
    model_a_drift_pct: NonNegativeFinite
    # added
    baseline_rmse: PositiveFinite
    model_a_rmse: NonNegativeFinite
    level: Literal["ok", "watch", "retrain"]


class Comparison(Record):
    model_a_rmse: NonNegativeFinite
    model_b_rmse: NonNegativeFinite
    winner: Literal["Model A", "Model B"]
    model_b_win_rate: float = Field(
        description="percent of windows Model B wins", ge=0, le=100, allow_inf_nan=False
    )


class Window(Record):
    name: str
    n_samples: int
    model_a_rmse: NonNegativeFinite
    model_b_rmse: NonNegativeFinite
    winner: Literal["Model A", "Model B"]


class SpecRule(Record):
    """added: what the spec's own rule says (drift > 10%: retrain now; 5-10%: plan; three
    rising drifts: retrain), kept beside our advice for what it is."""

    action: Literal["none", "plan", "retrain_now"]
    reasons: list[str]


class Retraining(Record):
    """added: the retraining advice and the signals behind it (services/monitor/README.md,
    "Which alarm to trust")."""

    action: Literal["none", "plan", "retrain_now"]
    consider_switching_to_b: bool
    reasons: list[str]
    spec_rule: SpecRule | None = Field(
        None, description="the spec's drift rule; what `action` was in lines written before"
    )
    set_age_days: int | None = Field(
        None, ge=0, description="trading days of data after the live set's data end"
    )
    max_set_age_days: int | None = None
    lineage_changed: bool | None = Field(
        None,
        description="the feed's history over the set's training period differs from what the "
        "set was fitted on; none for sets trained before it was recorded",
    )
    cusum: float | None = Field(
        None, description="Page's CUSUM of Model A's loss against the naive forecast's"
    )
    cusum_threshold: float | None = None


class FeatureDriftItem(Record):
    psi: float
    ks_statistic: float
    ks_pvalue: float
    drifted: bool


class FeatureDrift(Record):
    """added: per-feature drift of the new rows against Model A's training rows."""

    psi_threshold: float
    psi_min_rows: int
    ks_pvalue_threshold: float
    n_reference: int
    n_current: int
    n_drifted: int
    features: dict[str, FeatureDriftItem]
    skipped: str | None = Field(None, description="why no feature was tested, if none was")
    residual_ks_statistic: float | None = Field(
        None,
        description="scale-free drift: two-sample KS of Model A's log residuals "
        "ln(realized / forecast) on the new rows against its validation rows",
    )
    residual_ks_pvalue: float | None = None


class RiskCheck(Record):
    """added: how Model A's stated uncertainty held on the new rows."""

    model: Literal["A"] = "A"
    rows: int = Field(ge=0)
    coverage: dict[str, Probability] = Field(
        description='central interval level ("0.5", "0.9") -> share of new rows whose '
        "realized volatility fell inside it"
    )
    var: dict[str, VarCheck] = Field(
        description='VaR level ("0.95", "0.99") -> exceedances of the 1-day VaR'
    )
    method: str


class MonitoringRecord(Served, Record):
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
    risk: RiskCheck | None = Field(
        None, description="none for sets trained before calibration, or runs before it"
    )
    data_end: dt.date | None = Field(
        None, description="the data's last bar: the next run checks the feed's bars after it"
    )


class DeploymentRecord(Record):
    """added: one line of ``deployments.jsonl``: from ``timestamp`` on, ``run_id`` was the live
    set (until the next line), because of ``action``."""

    timestamp: str
    symbol: str
    run_id: str
    action: Literal["train", "rollback", "promote", "recovered"]
    previous_run_id: str | None
    note: str | None = None
