"""volforecast report (commands/report): the trend summary, the plots and the HTML page from both
histories."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from volforecast.cli import main
from volforecast.schemas import TrendReport

from .conftest import cli_args

PNG = b"\x89PNG\r\n\x1a\n"


def _report(project: Path, capsys: pytest.CaptureFixture[str]) -> tuple[TrendReport, str]:
    capsys.readouterr()
    assert main(cli_args(project, "report")) == 0
    out = capsys.readouterr().out
    return TrendReport.model_validate_json(
        (project / "models" / "reports" / "report.json").read_text()
    ), out


def _assert_png(path: Path) -> None:
    assert path.read_bytes().startswith(PNG)
    height, width, _ = mpimg.imread(path).shape
    assert height > 100 and width > 100


def test_report_works_with_one_training_run_and_no_monitoring_history(project, capsys):
    report, out = _report(project, capsys)
    reports = project / "models" / "reports"
    assert report.summary.training_runs == 1 and report.summary.monitoring_runs == 0
    assert report.summary.validation_rmse_change_pct is None
    assert report.plots == ["validation_forecasts.png", "interval_and_var.png"]
    _assert_png(reports / "validation_forecasts.png")
    assert not (reports / "drift.png").exists()
    assert "Total training runs: 1" in out and "No monitoring runs yet" in out
    val = json.loads((project / "models" / "validation_baseline.json").read_text())
    realized = np.array([r["realized"] for r in report.validation_forecasts])
    forecast = np.array([r["forecast"] for r in report.validation_forecasts])
    assert len(realized) == val["validation_samples"]
    # The plotted forecasts are Model A's: their RMSE is the validation baseline's.
    assert np.sqrt(np.mean((realized - forecast) ** 2)) == pytest.approx(val["validation_rmse"])


def test_report_series_and_summary_match_the_histories_when_monitor_ran_twice(project, capsys):
    assert main(cli_args(project, "train", "--as-of", "2018-02-01")) == 0
    for day in ("2018-03-01", "2018-06-08"):
        assert main(cli_args(project, "monitor", "--as-of", day)) == 0
    report, out = _report(project, capsys)
    with open("models/monitoring_history.jsonl") as f:
        history = [json.loads(line) for line in f]
    with open("models/training_history.jsonl") as f:
        runs = [json.loads(line) for line in f]
    drift = [r["drift"]["model_a_drift_pct"] for r in history]
    assert [m["drift_pct"] for m in report.monitoring] == pytest.approx(drift)
    assert [m["model_b_rmse"] for m in report.monitoring] == pytest.approx(
        [r["comparison"]["model_b_rmse"] for r in history]
    )
    assert report.summary.average_drift_pct == pytest.approx(np.mean(drift))
    change = (
        runs[-1]["model_a"]["validation_rmse"] / runs[0]["model_a"]["validation_rmse"] - 1
    ) * 100
    assert report.summary.validation_rmse_change_pct == pytest.approx(change)
    assert report.summary.runs_since_last_retrain == 2
    psi = {k: v["psi"] for k, v in history[-1]["feature_drift"]["features"].items()}
    assert report.latest_psi == pytest.approx({k: v for k, v in psi.items() if v == v})
    reports = project / "models" / "reports"
    for name in ("drift.png", "rmse.png", "validation_forecasts.png"):
        _assert_png(reports / name)
    assert f"Average drift: {np.mean(drift):.2f}%" in out


def test_report_html_embeds_every_plot_and_needs_no_other_file(project, capsys):
    assert main(cli_args(project, "monitor", "--as-of", "2018-06-08")) == 0
    report, _ = _report(project, capsys)
    page = (project / "models" / "reports" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(report.plots) >= 3
    assert 'src="http' not in page and "=== TRAINING TRENDS ===" in page


def test_report_skips_a_torn_last_monitoring_line(project, capsys):
    assert main(cli_args(project, "monitor", "--as-of", "2018-06-08")) == 0
    path = project / "models" / "monitoring_history.jsonl"
    with path.open("ab") as fh:
        fh.write(b'{"timestamp": "2018-06-09T00:00:00", "drift": {"model_a_dri')
    report, _ = _report(project, capsys)
    assert report.summary.monitoring_runs == 1
    assert path.read_bytes().endswith(b"model_a_dri")  # the history is never rewritten


def test_report_skips_a_monitoring_line_with_a_nan_drift_like_a_training_line(project, capsys):
    assert main(cli_args(project, "monitor", "--as-of", "2018-03-01")) == 0
    history = project / "models" / "monitoring_history.jsonl"
    line = json.loads(history.read_text().splitlines()[-1])
    line["drift"]["model_a_drift_pct"] = float("nan")
    with history.open("a") as fh:
        fh.write(json.dumps(line) + "\n")  # json writes NaN, as a careless editor would
    report, text = _report(project, capsys)
    assert report.summary.monitoring_runs == 1
    assert "nan" not in text.lower()


def test_report_draws_model_as_interval_and_var_from_its_validation_period_on(project, capsys):
    report, _ = _report(project, capsys)
    _assert_png(project / "models" / "reports" / "interval_and_var.png")
    val = json.loads((project / "models" / "validation_baseline.json").read_text())
    rows = report.risk_forecasts
    assert rows[0]["date"] == val["date_range"]["val_start"]
    assert all(r["lower_90"] < r["forecast"] < r["upper_90"] for r in rows)
    assert all(r["var_95"] < r["var_99"] for r in rows)
    # Labeled rows only: each has its target's days, so its next day's loss is known too.
    assert all(np.isfinite(r["loss_1d"]) for r in rows)
