"""volforecast replay: the production loop replayed with the services' own code paths."""

from __future__ import annotations

import datetime as dt
import json
import os

import numpy as np
import pandas as pd
import pytest

from volforecast.cli import main
from volforecast.commands.replay import run_replay
from volforecast.config import build_settings
from volforecast.replaying import ALWAYS_A, POLICIES, alarm_score, bad_periods, periods
from volforecast.schemas import MonitoringRecord, ReplayReport, TrainingRecord

from .conftest import synthetic_market, write_market

# 900 synthetic days from 2015-01-02; the replay covers the last 30 (two scheduled trainings).
REPLAY_FROM = 870
TRAIN_EVERY = 15


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory):
    """A replay of a short synthetic period whose every published forecast is checked, on its
    day, against `volforecast predict --as-of` on the same models directory."""
    root = tmp_path_factory.mktemp("replay")
    spy, vix = synthetic_market()
    write_market(root / "data", spy, vix)
    settings = build_settings(
        data_source="csv", data_dir=root / "data", models_dir=root / "m", start="2000-01-01",
        replay_start=spy["date"].iloc[REPLAY_FROM], train_every=TRAIN_EVERY,
        output_dir=root / "out", lock_timeout=30,
    )  # fmt: skip
    checked: list[tuple[dt.date, float, float]] = []

    def predict_on_the_day(day: dt.date, day_settings, published: float) -> None:
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main([
                "predict", "--source", "csv", "--data-dir", str(root / "data"),
                "--models-dir", str(day_settings.models_dir), "--start", "2000-01-01",
                "--as-of", day.isoformat(),
            ])  # fmt: skip
        assert code == 0
        checked.append((day, published, json.loads(out.getvalue())["forecast_daily"]))

    report, _paths = run_replay(settings, lambda _m: None, on_day=predict_on_the_day)
    return root, report, checked


@pytest.mark.slow
def test_replay_publishes_what_predict_gives_on_each_day_and_models_directory(replayed):
    _, report, checked = replayed
    assert len(checked) == report.days == 30
    assert [published for _, published, _ in checked] == [cli for _, _, cli in checked]


@pytest.mark.slow
def test_replay_writes_every_policy_score_and_both_alarm_signals(replayed):
    root, _, _ = replayed
    report = ReplayReport.model_validate_json((root / "out" / "replay.json").read_text())
    assert set(report.policies) == set(POLICIES)
    assert {p.n_days for p in report.policies.values()} == {25}  # the last 5 days are unlabeled
    assert set(report.alarms) == {"rmse_drift", "relative_qlike_drift"}
    assert report.scheduled_trainings == 2
    days = pd.read_csv(root / "out" / "days.csv", index_col="date")
    assert report.advised_trainings == int(days["retrained"].sum())


@pytest.mark.slow
def test_replay_history_has_one_line_per_training_and_monitoring_run_in_date_order(replayed):
    root, report, _ = replayed
    models = root / "out" / "models"
    training = [TrainingRecord.model_validate_json(x)
                for x in (models / "training_history.jsonl").read_text().splitlines()]  # fmt: skip
    monitoring = [MonitoringRecord.model_validate_json(x)
                  for x in (models / "monitoring_history.jsonl").read_text().splitlines()]  # fmt: skip
    assert len(training) == report.scheduled_trainings + report.advised_trainings
    assert len(monitoring) == report.days
    dates = [r.monitoring_date for r in monitoring]
    assert dates == sorted(dates)


@pytest.mark.slow
def test_replay_history_passes_the_spec_snippets_and_report_renders_it(
    replayed, capsys, monkeypatch
):
    root, _, _ = replayed
    monkeypatch.chdir(root / "out")
    for key in [k for k in os.environ if k.startswith("VOLF_")]:
        monkeypatch.delenv(key)
    # --- the spec's snippets, unchanged ---
    with open("models/training_history.jsonl") as f:
        runs = [json.loads(line) for line in f]
    print(f"First run RMSE: {runs[0]['model_a']['validation_rmse']:.6f}")
    print(f"Latest run RMSE: {runs[-1]['model_a']['validation_rmse']:.6f}")
    with open("models/monitoring_history.jsonl") as f:
        history = [json.loads(line) for line in f]
    model_b_wins = [r["comparison"]["model_b_win_rate"] for r in history]
    print(f"Model B average win rate: {sum(model_b_wins) / len(model_b_wins):.1f}%")
    # ---
    assert "Model B average win rate" in capsys.readouterr().out
    code = main(["report", "--source", "csv", "--data-dir", str(root / "data"),
                 "--models-dir", "models", "--start", "2000-01-01", "--output", "r"])  # fmt: skip
    assert code == 0
    assert (root / "out" / "r" / "report.html").is_file()


@pytest.mark.slow
def test_replay_refuses_to_reuse_an_output_with_a_models_directory(replayed, capsys):
    root, _, _ = replayed
    spy = pd.read_csv(root / "data" / "spy_daily.csv")
    code = main(["replay", "--source", "csv", "--data-dir", str(root / "data"),
                 "--start", "2000-01-01", "--replay-start", spy["date"].iloc[880],
                 "--train-every", "15", "--workers", "1", "--output", str(root / "out")])  # fmt: skip
    assert code == 2
    assert "choose a new --output" in capsys.readouterr().err


def test_periods_start_a_scheduled_training_every_train_every_days():
    days = [dt.date(2020, 1, d) for d in range(1, 12)]
    chunks = periods(days, 5)
    assert [c.days[0] for c in chunks] == [days[0], days[5], days[10]]
    assert [len(c.days) for c in chunks] == [5, 5, 1]


def test_bad_periods_mark_days_before_worse_than_median_model_a_qlike():
    index = pd.bdate_range("2020-01-01", periods=8)
    realized = pd.Series(0.01, index=index)
    # Model A is exact on days 0-3 and 50% too high on days 4-7.
    forecast = pd.Series([0.01] * 4 + [0.015] * 4, index=index)
    bad = bad_periods(pd.DataFrame({"realized": realized, ALWAYS_A: forecast}), window=2)
    # Day d is judged by days d+1, d+2: mean QLIKE 0, 0, q/2, q, q, q (median 0.75q), then unknown.
    assert bad.tolist()[:6] == [False, False, False, True, True, True]
    assert bad.iloc[6:].isna().all()


def test_alarm_score_counts_levels_and_rates_against_bad_periods():
    signal = pd.Series([0.0, 7.0, 12.0, 15.0, np.nan, 1.0])
    bad = pd.Series([False, True, True, False, True, np.nan], dtype=object)
    score = alarm_score(signal, pd.Series(["none", "plan", "retrain_now", "retrain_now",
                                           "none", "none"]), bad)  # fmt: skip
    assert (score.days_watch, score.days_retrain, score.retrain_now_advised) == (1, 2, 2)
    assert score.true_alarm_rate_any == pytest.approx(2 / 3)
    assert score.true_alarm_rate_retrain == pytest.approx(1 / 2)
    assert score.bad_periods_caught == pytest.approx(1.0)  # both scored bad days alarmed
    assert score.base_rate == pytest.approx(2 / 4)


def _replay_cli(project, *extra: str) -> list[str]:  # type: ignore[no-untyped-def]
    return ["replay", "--source", "csv", "--data-dir", str(project / "data"),
            "--models-dir", str(project / "models"), "--start", "2000-01-01",
            "--workers", "1", *extra]  # fmt: skip


def test_replay_exits_8_before_any_work_when_output_is_a_regular_file(project, capsys):
    blocker = project / "a-file"
    blocker.write_text("x")
    args = _replay_cli(project, "--replay-start", "2018-01-02", "--output", str(blocker))
    assert main(args) == 8
    err = capsys.readouterr().err
    assert "choose a writable --output" in err and "replay 1/" not in err


def test_replay_exits_2_naming_replay_start_when_it_leaves_too_little_history(project, capsys):
    args = _replay_cli(project, "--replay-start", "2015-06-01", "--output", str(project / "r"))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--replay-start 2015-06-01: only" in err and "Fix: move --replay-start later" in err
    assert "--as-of" not in err
