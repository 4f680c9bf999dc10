"""Run metrics for alerting, the way batch jobs publish them in the Prometheus world.

A cron job is gone before anything could scrape it, so after each successful run train and
monitor can (1) write their numbers to an OpenMetrics/Prometheus text file for node_exporter's
textfile collector (``--metrics-file``; prometheus-client writes a temporary file and renames
it, so the collector never reads half a file) and (2) push them to a Pushgateway
(``VOLF_PUSHGATEWAY_URL``). Both use the official ``prometheus-client``; building the registry
is pure (record in, registry out).

Metric names, labels and meaning are documented in services/monitor/README.md; the example
alert rules in deploy/prometheus-alerts.yml use them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

from volforecast.errors import StorageError
from volforecast.schemas import MonitoringRecord, TrainingRecord

log = logging.getLogger(__name__)

PREFIX = "volforecast"
DRIFT_LEVELS = {"ok": 0, "watch": 1, "retrain": 2}
RETRAIN_ACTIONS = {"none": 0, "plan": 1, "retrain_now": 2}


def _gauge(registry: CollectorRegistry, name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
    return Gauge(f"{PREFIX}_{name}", doc, ["symbol", *labels], registry=registry)


def monitor_registry(
    record: MonitoringRecord, symbol: str, duration_seconds: float, finished_at: float
) -> CollectorRegistry:
    """The numbers of one monitoring run."""
    reg = CollectorRegistry()
    _gauge(
        reg, "monitor_drift_pct", "Model A drift: RMSE on new data vs validation RMSE, percent"
    ).labels(symbol).set(record.drift.model_a_drift_pct)
    _gauge(
        reg, "monitor_drift_level", "Drift level: 0 ok (< 5%), 1 watch (5-10%), 2 retrain (> 10%)"
    ).labels(symbol).set(DRIFT_LEVELS[record.drift.level])
    rmse = _gauge(reg, "monitor_rmse", "RMSE on all new data (daily volatility units)", ("model",))
    rmse.labels(symbol, "a").set(record.comparison.model_a_rmse)
    rmse.labels(symbol, "b").set(record.comparison.model_b_rmse)
    _gauge(reg, "monitor_validation_rmse", "Model A validation RMSE, the drift baseline").labels(
        symbol
    ).set(record.drift.baseline_rmse)
    _gauge(reg, "monitor_model_b_win_rate_pct", "Percent of windows Model B wins").labels(
        symbol
    ).set(record.comparison.model_b_win_rate)
    rec = _gauge(
        reg, "monitor_recommendation", "1 for the recommended model, 0 for the other", ("model",)
    )
    b_recommended = record.recommendation.startswith("USE MODEL B")
    rec.labels(symbol, "a").set(0 if b_recommended else 1)
    rec.labels(symbol, "b").set(1 if b_recommended else 0)
    _gauge(
        reg, "monitor_retrain_advice", "Retraining advice: 0 none, 1 plan, 2 retrain now"
    ).labels(symbol).set(RETRAIN_ACTIONS[record.retraining.action])
    _gauge(
        reg, "monitor_consider_switching_to_b", "1 when Model B won >= 75% in the last 3 runs"
    ).labels(symbol).set(int(record.retraining.consider_switching_to_b))
    _gauge(reg, "monitor_rows_scored", "Labeled rows both models were scored on").labels(
        symbol
    ).set(record.test_window.n_samples)
    _gauge(reg, "monitor_features_drifted", "Features flagged by KS or PSI").labels(symbol).set(
        record.feature_drift.n_drifted
    )
    _gauge(reg, "monitor_duration_seconds", "Wall time of the monitoring run").labels(symbol).set(
        duration_seconds
    )
    _gauge(
        reg, "monitor_last_success_timestamp_seconds", "Unix time the last monitoring run succeeded"
    ).labels(symbol).set(finished_at)
    return reg  # fmt: skip


def train_registry(
    record: TrainingRecord, symbol: str, duration_seconds: float, finished_at: float
) -> CollectorRegistry:
    """The numbers of one training run."""
    reg = CollectorRegistry()
    _gauge(
        reg, "train_validation_rmse", "Model A validation RMSE (the monitor's drift baseline)"
    ).labels(symbol).set(record.model_a.validation_rmse)
    _gauge(reg, "train_test_rmse", "Model B RMSE on its 30 held-out rows").labels(symbol).set(
        record.model_b.test_rmse
    )
    rows = _gauge(reg, "train_rows", "Training rows of each model", ("model",))
    rows.labels(symbol, "a").set(record.model_a.training_samples)
    rows.labels(symbol, "b").set(record.model_b.training_samples)
    _gauge(reg, "train_duration_seconds", "Wall time of the training run").labels(symbol).set(
        duration_seconds
    )
    _gauge(
        reg, "train_last_success_timestamp_seconds", "Unix time the last training run succeeded"
    ).labels(symbol).set(finished_at)
    return reg  # fmt: skip


def publish(
    registry: CollectorRegistry, job: str, metrics_file: Path | None, pushgateway: str | None
) -> None:
    """Write the text file and/or push, as configured.

    A file that cannot be written is an error (exit 8): the operator asked for it and alerting
    depends on it. A Pushgateway that cannot be reached only warns: the run's own work is
    done and committed, and the gateway is a remote service that may be down.
    """
    if metrics_file is not None:
        try:
            metrics_file.parent.mkdir(parents=True, exist_ok=True)
            write_to_textfile(str(metrics_file), registry)
        except OSError as exc:
            raise StorageError(
                f"cannot write the metrics file {metrics_file}: {exc.strerror or exc}. Fix: "
                "point --metrics-file / VOLF_METRICS_FILE at a writable path (the run itself "
                "succeeded and its results are saved)."
            ) from exc
        log.info("wrote metrics to %s", metrics_file)
    if pushgateway:
        try:
            push_to_gateway(pushgateway, job=job, registry=registry, timeout=10)
        except OSError as exc:
            log.warning("could not push metrics to %s: %s", pushgateway, exc)
        else:
            log.info("pushed metrics to %s (job %s)", pushgateway, job)
