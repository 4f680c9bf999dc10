"""Run metrics for alerting, the way batch jobs publish them in the Prometheus world.

A cron job is gone before anything could scrape it, so after each successful run train and
monitor can (1) write their numbers to an OpenMetrics/Prometheus text file for node_exporter's
textfile collector (``--metrics-file``; prometheus-client writes a temporary file and renames
it, so the collector never reads half a file) and (2) push them to a Pushgateway
(``VOLF_PUSHGATEWAY_URL``). Both use the official ``prometheus-client``; building the registry
is pure (record in, registry out).

Metric names, labels and meaning are documented in the README ("Metrics and alerts"); the
example alert rules in deploy/prometheus-alerts.yml use them.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

from volforecast import atomic
from volforecast.config import Settings
from volforecast.errors import StorageError
from volforecast.schemas import MonitoringRecord, TrainingRecord

log = logging.getLogger(__name__)

PREFIX = "volforecast"
DRIFT_LEVELS = {"ok": 0, "watch": 1, "retrain": 2}
RETRAIN_ACTIONS = {"none": 0, "plan": 1, "retrain_now": 2}
# The whole push, connect to last byte: the client's own timeout is per socket operation, so a
# gateway that trickles one byte at a time would hold the run (and, behind `flock -n`, every
# later cron run) for ever.
PUSH_DEADLINE_SECONDS = 15.0
PUSH_SOCKET_TIMEOUT_SECONDS = 10.0


# (metric name without prefix, help text, value): a number, or {model: number} for one sample per
# model under a ``model`` label.
Metric = tuple[str, str, float | dict[str, float]]


def registry_of(per_symbol: dict[str, list[Metric]]) -> CollectorRegistry:
    """One registry with every symbol's metrics (one time series per symbol and model)."""
    registry = CollectorRegistry()
    gauges: dict[str, Gauge] = {}
    for symbol, metrics in per_symbol.items():
        for name, doc, value in metrics:
            if name not in gauges:
                labels = ["symbol", "model"] if isinstance(value, dict) else ["symbol"]
                gauges[name] = Gauge(f"{PREFIX}_{name}", doc, labels, registry=registry)
            if isinstance(value, dict):
                for model, number in value.items():
                    gauges[name].labels(symbol, model).set(number)
            else:
                gauges[name].labels(symbol).set(value)
    return registry


def monitor_registry(
    record: MonitoringRecord, symbol: str, duration_seconds: float, finished_at: float
) -> CollectorRegistry:
    """The numbers of one monitoring run."""
    return registry_of({symbol: monitor_metrics(record, duration_seconds, finished_at)})


def train_registry(
    record: TrainingRecord, symbol: str, duration_seconds: float, finished_at: float
) -> CollectorRegistry:
    """The numbers of one training run."""
    return registry_of({symbol: train_metrics(record, duration_seconds, finished_at)})


def _or_nan(value: float | bool | None) -> float:
    return float("nan") if value is None else float(value)


def risk_metrics(record: MonitoringRecord) -> list[Metric]:
    """Model A's interval coverage and VaR exceedances on the new rows (none without them)."""
    if record.risk is None:
        return []
    out: list[Metric] = [
        (f"monitor_interval_coverage_{float(k) * 100:.0f}",
         f"Share of new rows inside Model A's central {float(k):.0%} interval", v)
        for k, v in record.risk.coverage.items()
    ]  # fmt: skip
    for level, check in record.risk.var.items():
        tag = f"{float(level) * 100:.0f}"
        out += [
            (f"monitor_var{tag}_exceedances",
             f"New rows whose next-day loss exceeded Model A's 1-day {tag}% VaR",
             check.exceedances),
            (f"monitor_var{tag}_kupiec_p",
             f"Kupiec p-value of the {tag}% VaR exceedance rate on the new rows",
             check.kupiec_p),
        ]  # fmt: skip
    return out


def monitor_metrics(
    record: MonitoringRecord, duration_seconds: float, finished_at: float
) -> list[Metric]:
    b_recommended = float(record.recommendation.startswith("USE MODEL B"))
    return [
        *risk_metrics(record),
        ("monitor_drift_pct", "Model A drift: RMSE on new data vs validation RMSE, percent",
         record.drift.model_a_drift_pct),
        ("monitor_drift_level", "Drift level: 0 ok (< 5%), 1 watch (5-10%), 2 retrain (> 10%)",
         DRIFT_LEVELS[record.drift.level]),
        ("monitor_rmse", "RMSE on all new data (daily volatility units)",
         {"a": record.comparison.model_a_rmse, "b": record.comparison.model_b_rmse}),
        ("monitor_validation_rmse", "Model A validation RMSE, the drift baseline",
         record.drift.baseline_rmse),
        ("monitor_model_b_win_rate_pct", "Percent of windows Model B wins",
         record.comparison.model_b_win_rate),
        ("monitor_recommendation", "1 for the recommended model, 0 for the other",
         {"a": 1.0 - b_recommended, "b": b_recommended}),
        ("monitor_retrain_advice", "Retraining advice (the proven signals): 0 none, 2 retrain now",
         RETRAIN_ACTIONS[record.retraining.action]),
        ("monitor_spec_rule_advice", "The spec's drift rule: 0 none, 1 plan, 2 retrain now",
         RETRAIN_ACTIONS[record.retraining.spec_rule.action]
         if record.retraining.spec_rule is not None else float("nan")),
        ("monitor_set_age_days", "Trading days of data after the live set's data end",
         _or_nan(record.retraining.set_age_days)),
        ("monitor_max_set_age_days", "The set age above which retraining is advised",
         _or_nan(record.retraining.max_set_age_days)),
        ("monitor_lineage_changed", "1 when the feed's history differs from the set's training data",
         _or_nan(record.retraining.lineage_changed)),
        ("monitor_cusum", "Page's CUSUM of Model A's loss against the naive forecast",
         _or_nan(record.retraining.cusum)),
        ("monitor_cusum_threshold", "Its threshold (0.5% false alarms per run by design)",
         _or_nan(record.retraining.cusum_threshold)),
        ("monitor_consider_switching_to_b", "1 when Model B won >= 75% in the last 3 runs",
         float(record.retraining.consider_switching_to_b)),
        ("monitor_rows_scored", "Labeled rows both models were scored on",
         record.test_window.n_samples),
        ("monitor_features_drifted", "Features flagged by KS or PSI",
         record.feature_drift.n_drifted),
        ("monitor_data_age_days", "Weekdays from the data's last row to the run's day",
         record.data_age_days if record.data_age_days is not None else float("nan")),
        ("monitor_data_stale", "1 when the download failed and the run used the cache",
         int(record.data_stale)),
        ("monitor_duration_seconds", "Wall time of the monitoring run", duration_seconds),
        ("monitor_last_success_timestamp_seconds",
         "Unix time the last monitoring run succeeded", finished_at),
    ]  # fmt: skip


def train_metrics(
    record: TrainingRecord, duration_seconds: float, finished_at: float
) -> list[Metric]:
    return [
        ("train_validation_rmse", "Model A validation RMSE (the monitor's drift baseline)",
         record.model_a.validation_rmse),
        ("train_test_rmse", "Model B RMSE on its 30 held-out rows", record.model_b.test_rmse),
        ("train_rows", "Training rows of each model",
         {"a": record.model_a.training_samples, "b": record.model_b.training_samples}),
        ("train_duration_seconds", "Wall time of the training run", duration_seconds),
        ("train_last_success_timestamp_seconds", "Unix time the last training run succeeded",
         finished_at),
    ]  # fmt: skip


def publish(
    registry: CollectorRegistry, job: str, metrics_file: Path | None, pushgateway: str | None
) -> None:
    """Write the text file and/or push, as configured.

    Either failing only warns, and the exit code stays the run's: metrics are published after
    the run's results (and its history line) are saved, and failing then would make cron retry
    work that is done. A metrics file that cannot be written at all is caught before the run
    instead (``check_metrics_file``, exit 8); alerting on ``*_last_success_timestamp_seconds``
    notices a file that stops being refreshed.
    """
    if metrics_file is not None:
        try:
            metrics_file.parent.mkdir(parents=True, exist_ok=True)
            write_to_textfile(str(metrics_file), registry)
        except OSError as exc:
            log.warning(
                "could not write the metrics file %s: %s (the run's results are saved). Fix: "
                "point --metrics-file / VOLF_METRICS_FILE at a writable path with free space",
                metrics_file,
                exc.strerror or exc,
            )
        else:
            log.info("wrote metrics to %s", metrics_file)
    if pushgateway:
        push(registry, job, pushgateway)


def push(
    registry: CollectorRegistry,
    job: str,
    gateway: str,
    deadline: float | None = None,
) -> bool:
    """Push ``registry`` to ``gateway`` within ``deadline`` seconds in all; True if it was
    accepted.

    Any failure (refused, slow, garbage answer, HTTP error) only warns: the run's results are
    committed before metrics are published, so failing the run would only make cron retry work
    that is already done. The push runs on a daemon thread so a gateway that never finishes
    answering is abandoned at the deadline instead of holding the process.
    """
    deadline = PUSH_DEADLINE_SECONDS if deadline is None else deadline
    failure: list[BaseException] = []

    def attempt() -> None:
        try:
            push_to_gateway(
                gateway, job=job, registry=registry, timeout=PUSH_SOCKET_TIMEOUT_SECONDS
            )
        except Exception as exc:  # any failure of a remote, optional service only warns
            failure.append(exc)

    worker = threading.Thread(target=attempt, name="pushgateway", daemon=True)
    worker.start()
    worker.join(deadline)
    if worker.is_alive():
        log.warning(
            "could not push metrics to %s: no complete answer within %.0f s; gave up (the run's "
            "results are saved)",
            gateway,
            deadline,
        )
        return False
    if failure:
        exc = failure[0]
        log.warning(
            "could not push metrics to %s: %s: %s (the run's results are saved)",
            gateway,
            type(exc).__name__,
            exc,
        )
        return False
    log.info("pushed metrics to %s (job %s)", gateway, job)
    return True


def check_metrics_file(settings: Settings) -> None:
    """Before any work: StorageError (exit 8) when ``--metrics-file`` cannot be written (its
    folder cannot be created, or is not writable, or the path is a folder)."""
    path = settings.metrics_file
    if path is None:
        return
    try:
        atomic.check_writable(path.parent)
        if path.is_dir():
            raise IsADirectoryError(21, "is a directory", str(path))
    except OSError as exc:
        raise StorageError(
            f"cannot write the metrics file {path}: {exc.strerror or exc}. Fix: point "
            "--metrics-file / VOLF_METRICS_FILE at a writable file path (nothing was run)."
        ) from exc


def publish_runs(settings: Settings, command: str, records: dict[str, Any], started: float) -> None:
    """Metrics of a command's successful runs (one time series per symbol; ``started`` is the
    command's ``time.monotonic()`` at its start), when a metrics file or a Pushgateway is
    configured."""
    if settings.metrics_file is None and not settings.pushgateway_url:
        return
    metrics = train_metrics if command == "train" else monitor_metrics
    duration, finished = time.monotonic() - started, time.time()
    registry = registry_of({s: metrics(r, duration, finished) for s, r in records.items()})
    publish(registry, f"volforecast_{command}", settings.metrics_file, settings.pushgateway_url)
