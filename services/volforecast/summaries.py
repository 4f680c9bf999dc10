"""What the commands print: the plain-text summaries of train, monitor and predict, and the
small pieces every report shares (JSON or table, the list of files written, markdown rows)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from volforecast.schemas import Forecast, MonitoringRecord, TrainingRecord

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
        f"Recommendation: {record.recommendation}"
        + (f": {record.recommendation_reason}" if record.recommendation_reason else ""),
        f"Retraining: {record.retraining.action}"
        + "".join(f"\n  - {reason}" for reason in record.retraining.reasons),
    ]
    return "\n".join(rows)


def forecast_table(forecast: Forecast) -> str:
    """The forecast for people."""
    rows = [
        ("forecast", f"{forecast.symbol} {forecast.forecast_annualized_pct:.2f}% annualized "
                     f"({forecast.forecast_daily:.6f} daily)"),
        ("horizon", f"next {forecast.horizon} trading days after {forecast.features_date}"),
        ("model", f"Model {forecast.model} ({forecast.model_file}), {forecast.model_choice}"),
        ("trained", f"run {forecast.run_id}, data to {forecast.training_date_end}"),
        ("data", f"{forecast.data_source}, as of {forecast.as_of}"),
    ]  # fmt: skip
    return "\n".join(f"{k:<10}{v}" for k, v in rows)
