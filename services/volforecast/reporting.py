"""Plain-text summaries printed at the end of a command."""

from __future__ import annotations

from volforecast.schemas import TrainingRecord


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
