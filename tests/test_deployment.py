"""Promote and roll back (volforecast.deployment, store.ModelsDirectory.activate): a kept set
made live again under the lock, verified, logged in deployments.jsonl, and readers following."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from volforecast.cli import main
from volforecast.schemas import Forecast
from volforecast.store import DEPLOYMENT_LOG, MODEL_A_FILE, TRAINING_HISTORY, ModelsDirectory

from .conftest import cli_args, snapshot


def _forecast(project: Path, capsys: pytest.CaptureFixture[str]) -> Forecast:
    capsys.readouterr()
    assert main(cli_args(project, "predict", "--as-of", "2018-03-01")) == 0
    return Forecast.model_validate_json(capsys.readouterr().out)


def _deploy(project: Path, *args: str) -> list[str]:
    return [*args, "--models-dir", str(project / "models")]


@pytest.fixture
def two_sets(project: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Forecast, Forecast]:
    """The project's set (first) and a second one trained a month later, now live."""
    first = _forecast(project, capsys)
    assert main(cli_args(project, "train", "--as-of", "2018-02-26")) == 0
    return first, _forecast(project, capsys)


def test_rollback_makes_the_previous_set_live_and_predict_follows(project, two_sets, capsys):
    first, second = two_sets
    assert first.run_id != second.run_id
    assert main(_deploy(project, "rollback")) == 0
    after = _forecast(project, capsys)
    assert (after.run_id, after.forecast_daily) == (first.run_id, first.forecast_daily)
    assert after.deployed_by == "rollback" and after.live_since is not None


def test_promote_makes_an_archived_set_live_again(project, two_sets, capsys):
    _first, second = two_sets
    assert main(_deploy(project, "rollback")) == 0
    assert main(_deploy(project, "promote", second.run_id)) == 0
    after = _forecast(project, capsys)
    assert (after.run_id, after.forecast_daily) == (second.run_id, second.forecast_daily)
    assert after.deployed_by == "promote"


def test_deployment_log_records_each_switch_and_report_shows_it(project, two_sets, capsys):
    first, second = two_sets
    assert main(_deploy(project, "rollback", "--to", first.run_id)) == 0
    log = [
        json.loads(line) for line in (project / "models" / DEPLOYMENT_LOG).read_text().splitlines()
    ]
    assert [(d["action"], d["run_id"], d["previous_run_id"]) for d in log] == [
        ("train", first.run_id, None),
        ("train", second.run_id, first.run_id),
        ("rollback", first.run_id, second.run_id),
    ]
    capsys.readouterr()
    assert main(cli_args(project, "report")) == 0
    out = capsys.readouterr().out
    assert "=== DEPLOYMENTS" in out and f"{first.run_id}  rollback (was {second.run_id})" in out
    report = json.loads((project / "models" / "reports" / "report.json").read_text())
    assert [d["action"] for d in report["deployments"]] == ["train", "train", "rollback"]


def test_every_live_set_has_its_training_history_line_after_rollback_and_promote(project, two_sets):
    first, second = two_sets
    for args in (("rollback",), ("promote", second.run_id), ("rollback",)):
        assert main(_deploy(project, *args)) == 0
        live = ModelsDirectory(project / "models").current_run_id()
        lines = (project / "models" / TRAINING_HISTORY).read_text().splitlines()
        assert [json.loads(x)["run_id"] for x in lines].count(live) == 1
    assert [p.name for p in (project / "models" / "sets").iterdir()] == [first.run_id]


def test_rollback_exits_4_when_no_previous_set_is_kept(project, capsys):
    assert main(_deploy(project, "rollback")) == 4
    assert "no previous set to roll back to" in capsys.readouterr().err


def test_promote_exits_4_naming_the_archived_run_ids_when_the_run_id_is_unknown(
    project, two_sets, capsys
):
    first, _second = two_sets
    assert main(_deploy(project, "promote", "20990101T000000Z-ffffff")) == 4
    assert f"archived: {first.run_id}" in capsys.readouterr().err


def test_promote_exits_2_when_the_set_is_already_live(project, two_sets, capsys):
    _first, second = two_sets
    assert main(_deploy(project, "promote", second.run_id)) == 2
    assert "already live" in capsys.readouterr().err


def test_promote_exits_6_and_changes_nothing_when_the_archived_set_was_altered(
    project, two_sets, capsys
):
    first, _second = two_sets
    [archived] = [p for p in (project / "models" / "archive").iterdir() if first.run_id in p.name]
    pickle_file = archived / MODEL_A_FILE
    pickle_file.write_bytes(pickle_file.read_bytes() + b"\0")
    before = snapshot(project / "models")
    assert main(_deploy(project, "promote", first.run_id)) == 6
    assert "does not match the SHA-256" in capsys.readouterr().err
    assert snapshot(project / "models") == before


@pytest.mark.parametrize("command", ["rollback", "promote"])
def test_switch_command_loads_no_model_library_when_imported(command: str):
    # An incident-time switch of the live set needs the store and the lock, not the learners.
    probe = (
        f"import sys, volforecast.commands.{command}; "
        "print(*(m in sys.modules for m in ('xgboost', 'lightgbm', 'sklearn')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]
