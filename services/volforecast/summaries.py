"""What the commands print: the plain-text summaries of train, monitor and predict, the trend
summary of report (the spec's "Analyze Performance Trends"), and the small pieces every report shares (JSON or table, the list of files written, markdown rows)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import BaseModel

from volforecast.errors import ArtifactsMissingError
from volforecast.features import ANNUALIZED_PCT
from volforecast.schemas import (
    DeploymentRecord,
    Forecast,
    MonitoringRecord,
    TrainingRecord,
    TrendSummary,
)

R = TypeVar("R", bound=BaseModel)


def rendered(record: R, output_format: str, table: Callable[[R], str]) -> str:
    """``record`` for people (``table``) or for programs (indented JSON)."""
    return table(record) if output_format == "table" else record.model_dump_json(indent=2)


def wrote(paths: Iterable[Path]) -> str:
    """The line a command prints after writing its files."""
    return "wrote " + ", ".join(str(p) for p in paths)


def markdown_header(columns: Sequence[str]) -> list[str]:
    """A markdown table's header row and its separator."""
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def training_summary(record: TrainingRecord) -> str:
    a, b = record.model_a, record.model_b
    rows = [
        f"Training run {record.run_id} ({record.duration_seconds:.1f}s, horizon {record.horizon} days, "
        f"data to {record.data_end})",
        f"{'model':<18}{'train rows':>11}  {'train dates':<24}{'eval rows':>10}  {'eval dates':<24}"
        f"{'RMSE':>10}{'MAE':>10}{'R2':>8}",
        f"{'A (90%) valid.':<18}{a.training_samples:>11}  "
        f"{f'{a.training_date_start}..{a.training_date_end}':<24}{a.validation_samples:>10}  "
        f"{f'{a.validation_date_start}..{a.validation_date_end}':<24}"
        f"{a.validation_rmse:>10.6f}{a.validation_mae:>10.6f}{a.validation_r2:>8.3f}",
        f"{'B (all-30) test':<18}{b.training_samples:>11}  "
        f"{f'{b.training_date_start}..{b.training_date_end}':<24}{b.test_samples:>10}  "
        f"{f'{b.test_date_start}..{b.test_date_end}':<24}"
        f"{b.test_rmse:>10.6f}{b.test_mae:>10.6f}{b.test_r2:>8.3f}",
    ]
    return "\n".join(rows)


def monitoring_summary(record: MonitoringRecord) -> str:
    w = record.test_window
    rows = [
        f"Monitoring {record.monitoring_date}: model set {record.models_run_id}, "
        f"{w.n_samples} new rows {w.date_start}..{w.date_end}",
        f"{'window':<28}{'rows':>6}{'Model A RMSE':>14}{'Model B RMSE':>14}  winner",
    ]
    rows += [
        f"{win.name:<28}{win.n_samples:>6}{win.model_a_rmse:>14.6f}{win.model_b_rmse:>14.6f}  {win.winner}"
        for win in record.windows
    ]
    d = record.drift
    fd = record.feature_drift
    rows += [
        f"Drift: {d.model_a_drift_pct:.2f}% ({d.level}; Model A RMSE {d.model_a_rmse:.6f} "
        f"vs validation {d.baseline_rmse:.6f})",
        f"Model B win rate: {record.comparison.model_b_win_rate:.0f}% of windows",
        f"Feature drift: {fd.n_drifted} of {len(fd.features)} features flagged"
        + (
            f" ({', '.join(k for k, v in fd.features.items() if v.drifted)})"
            if fd.n_drifted
            else ""
        ),
    ]
    if record.risk is not None:
        rows.append(
            "Risk: Model A's "
            + ", ".join(
                f"{float(k):.0%} interval held {v:.0%}" for k, v in record.risk.coverage.items()
            )
            + "; "
            + ", ".join(
                f"1-day {float(k):.0%} VaR exceeded {v.exceedances}/{v.days} (Kupiec p {v.kupiec_p:.2f})"
                for k, v in record.risk.var.items()
            )
        )
    rows += [
        f"Recommendation: {record.recommendation}"
        + (f": {record.recommendation_reason}" if record.recommendation_reason else ""),
        f"Retraining: {record.retraining.action}"
        + "".join(f"\n  - {reason}" for reason in record.retraining.reasons),
    ]
    spec = record.retraining.spec_rule
    if spec is not None:
        rows.append(
            f"Spec's drift rule (not followed; services/monitor/README.md): {spec.action}"
            + "".join(f"\n  - {reason}" for reason in spec.reasons)
        )
    return "\n".join(rows)


def forecast_table(forecast: Forecast) -> str:
    """The forecast for people."""
    rows = [
        ("forecast", f"{forecast.symbol} {forecast.forecast_annualized_pct:.2f}% annualized "
                     f"({forecast.forecast_daily:.6f} daily)"),
        ("horizon", f"next {forecast.horizon} trading days after {forecast.features_date}"),
        ("model", f"Model {forecast.model} ({forecast.model_file}), {forecast.model_choice}"),
        ("trained", f"run {forecast.run_id}, data to {forecast.training_date_end}"
                    + (f"; live since {forecast.live_since} by {forecast.deployed_by}"
                       if forecast.live_since else "")),
        ("data", f"{forecast.data_source}, as of {forecast.as_of}"
                 + (f" ({forecast.data_age_days} weekday(s) old"
                    + (", cache only: the download failed)" if forecast.data_stale else ")")
                    if forecast.data_age_days else "")),
    ]  # fmt: skip
    if forecast.interval_90 is not None and forecast.var and forecast.es:
        lo, hi = (v * ANNUALIZED_PCT for v in forecast.interval_90)
        h = forecast.horizon
        rows[1:1] = [
            ("90% range", f"{lo:.2f}%..{hi:.2f}% annualized (realized volatility)"),
            ("VaR", f"{h}-day 95% {forecast.var['0.95']:.2%}, 99% {forecast.var['0.99']:.2%}; "
                    f"ES 95% {forecast.es['0.95']:.2%}, 99% {forecast.es['0.99']:.2%} "
                    "(log-return loss)"),
            ("method", str(forecast.risk_method)),
        ]  # fmt: skip
    return "\n".join(f"{k:<10}{v}" for k, v in rows)


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def trend_summary(
    training: list[TrainingRecord], monitoring: list[MonitoringRecord], current_run_id: str
) -> TrendSummary:
    """The trend numbers; a history may hold a single record, and monitoring may be empty."""
    if not training:
        raise ArtifactsMissingError(
            "training_history.jsonl has no valid record. Fix: run `volforecast train` first."
        )
    first = training[0].model_a.validation_rmse
    latest = training[-1].model_a.validation_rmse
    change = (latest / first - 1.0) * 100.0 if len(training) > 1 else None
    last = monitoring[-1] if monitoring else None
    return TrendSummary(
        training_runs=len(training),
        first_validation_rmse=first,
        latest_validation_rmse=latest,
        validation_rmse_change_pct=change,
        monitoring_runs=len(monitoring),
        average_drift_pct=_mean([r.drift.model_a_drift_pct for r in monitoring]),
        latest_drift_pct=last.drift.model_a_drift_pct if last else None,
        model_b_average_win_rate=_mean([r.comparison.model_b_win_rate for r in monitoring]),
        runs_since_last_retrain=sum(1 for r in monitoring if r.models_run_id == current_run_id),
        latest_recommendation=last.recommendation if last else None,
        latest_retraining_action=last.retraining.action if last else None,
        current_run_id=current_run_id,
    )


def trend_text(s: TrendSummary) -> str:
    """The summary in the layout of the spec's trend script."""

    def pct(value: float | None, signed: bool = False) -> str:
        if value is None:
            return "n/a"
        return f"{value:+.2f}%" if signed else f"{value:.2f}%"

    lines = [
        "=== TRAINING TRENDS ===",
        f"Total training runs: {s.training_runs}",
        f"Model A validation RMSE: first {s.first_validation_rmse:.6f}, "
        f"latest {s.latest_validation_rmse:.6f}",
        f"RMSE change: {pct(s.validation_rmse_change_pct, signed=True)}"
        + (" (a single run)" if s.training_runs == 1 else ""),
        "",
        "=== MONITORING TRENDS ===",
        f"Total monitoring runs: {s.monitoring_runs}",
    ]
    if s.monitoring_runs:
        lines += [
            f"Average drift: {pct(s.average_drift_pct)} (latest {pct(s.latest_drift_pct)})",
            f"Model B average win rate: {pct(s.model_b_average_win_rate)}",
            f"Runs since the last retrain: {s.runs_since_last_retrain} "
            f"(model set {s.current_run_id})",
            f"Latest recommendation: {s.latest_recommendation}; retraining: "
            f"{s.latest_retraining_action}",
        ]
    else:
        lines.append("No monitoring runs yet: run `volforecast monitor` after new trading days.")
    return "\n".join(lines)


def deployment_line(entry: DeploymentRecord) -> str:
    """One deployment, for people: when, which set, why, instead of which."""
    return (
        f"{entry.timestamp}  {entry.symbol}  {entry.run_id}  {entry.action}"
        + (f" (was {entry.previous_run_id})" if entry.previous_run_id else "")
        + (f": {entry.note}" if entry.note else "")
    )


def deployments_text(entries: list[DeploymentRecord], last: int = 10) -> str:
    """The last ``last`` lines of the deployment log, for the report (empty when none)."""
    if not entries:
        return ""
    shown = entries[-last:]
    head = f"\n\n=== DEPLOYMENTS (last {len(shown)} of {len(entries)}) ==="
    return head + "\n" + "\n".join(deployment_line(e) for e in shown)
