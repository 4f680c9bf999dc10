"""SIGKILL training runs, at random moments and before every file-system step of the publish.

After each kill the live set must be complete and verifiable, with exactly one training-history
record; after the next run's recovery no orphan set may remain and the archive may hold only
sets that were live.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from volforecast.cli import main
from volforecast.store import TRAINING_HISTORY, ModelsDirectory

from .conftest import synthetic_market, write_market
from .publish_faults import PublishRunner

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
RANDOM_TRIALS = 4
# Generous: a full train takes seconds idle, minutes on a crowded host; the bound only stops a
# hung run from hanging the suite.
RUN_BOUND_SECONDS = 1800


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("VOLF_")}


@pytest.fixture
def publish_runner(tmp_path: Path) -> Iterator[PublishRunner]:
    """Runs of the real commands, each killed before a chosen step of its publish."""
    runner = PublishRunner(tmp_path / "steps", tmp_path / "fits.pkl", REPO, _env(),
                           RUN_BOUND_SECONDS)  # fmt: skip
    yield runner
    runner.close()


def _history_ids(models: Path) -> list[str]:
    path = models / TRAINING_HISTORY
    if not path.exists():
        return []
    return [json.loads(line)["run_id"] for line in path.read_text().splitlines() if line.strip()]


def _assert_live_set_is_whole(models: Path) -> str:
    """The live set verifies, and readers count exactly one training record for it."""
    directory = ModelsDirectory(models)
    current = directory.load_current()  # raises on a mixed, partial or tampered set
    assert _history_ids(models).count(current.run_id) <= 1
    view = directory.training_history(current.record)
    assert [r.run_id for r in view].count(current.run_id) == 1
    return current.run_id


def _assert_tidy_after_recovery(models: Path, ever_live: set[str]) -> None:
    directory = ModelsDirectory(models)
    with directory.lock(60, "test"):
        directory.recover(keep=1)
    live = directory.current_run_id()
    assert _history_ids(models).count(live) == 1  # the file itself now has the line
    assert set(_history_ids(models)) <= ever_live  # no record of a set that never went live
    assert [p.name for p in (models / "sets").iterdir()] == [live]  # no orphan, no leftover
    archived = {p.name.split("_", 1)[1] for p in (models / "archive").iterdir()}
    assert archived <= ever_live - {live}


def test_every_publish_step_killed_leaves_one_recorded_live_set_and_no_orphans(
    tmp_path: Path, publish_runner: PublishRunner
):
    write_market(tmp_path / "data", *synthetic_market())
    models = tmp_path / "models"
    steps_file = tmp_path / "steps"
    args = ["--source", "csv", "--data-dir", str(tmp_path / "data"), "--models-dir",
            str(models), "--start", "2000-01-01", "--archive-keep", "1"]  # fmt: skip

    def train(kill_at: int) -> int:
        return publish_runner.run(kill_at, "train", *args)

    ever_live: set[str] = set()
    for _ in range(3):  # the third run archives and prunes: the longest publish there is
        assert train(0) == 0
        ever_live.add(_assert_live_set_is_whole(models))
    steps = int(steps_file.read_text())
    assert steps >= 20  # set files, renames, links, history append, archive, prune
    killed = went_live = 0
    # Kill before step 1, 2, ... until a run gets through every step of its publish.
    while (code := train(killed + 1)) != 0:
        assert code == -signal.SIGKILL
        killed += 1
        assert killed <= 2 * steps, "the publish never finished"
        live = _assert_live_set_is_whole(models)
        went_live += live not in ever_live
        ever_live.add(live)
        _assert_tidy_after_recovery(models, ever_live)
    assert killed >= steps
    assert went_live >= 5  # the kills after the switch (append, archive, prune) left new sets live
    ever_live.add(_assert_live_set_is_whole(models))  # the run that got through
    assert train(0) == 0
    ever_live.add(_assert_live_set_is_whole(models))
    _assert_tidy_after_recovery(models, ever_live)
    assert main(["monitor", "--source", "csv", "--data-dir", str(tmp_path / "data"),
                 "--models-dir", str(models), "--start", "2000-01-01"]) == 0  # fmt: skip


def _train_command(models: Path) -> list[str]:
    return [sys.executable, "-m", "volforecast.cli", "train", "--source", "sample",
            "--models-dir", str(models), "--lock-timeout", "30"]  # fmt: skip


def test_models_directory_holds_one_consistent_set_when_train_is_killed_at_random(tmp_path: Path):
    models = tmp_path / "models"
    started = time.monotonic()
    subprocess.run(_train_command(models), check=True, env=_env(), capture_output=True)
    full_run = time.monotonic() - started
    rng = random.Random(20261126)
    ever_live = {_assert_live_set_is_whole(models)}
    killed_before_end = 0
    for trial in range(RANDOM_TRIALS):
        proc = subprocess.Popen(
            _train_command(models), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # One run in four is left to finish, so the set is also replaced between kills.
        if trial % 4 == 3:
            assert proc.wait(RUN_BOUND_SECONDS) == 0
        else:
            # Within the first 80% of a full run's time: a kill that lands after the run ended
            # would test nothing.
            time.sleep(rng.uniform(0.0, full_run * 0.8))
        if proc.poll() is None:
            killed_before_end += 1
            proc.send_signal(signal.SIGKILL)
        proc.wait(RUN_BOUND_SECONDS)
        ever_live.add(_assert_live_set_is_whole(models))
    assert killed_before_end >= 1  # a kill really interrupted a run
    assert len(ever_live) >= 2  # some runs did finish and replace the set
    # The set monitor sees is usable end to end.
    assert main(["monitor", "--source", "sample", "--models-dir", str(models)]) == 0


def _deployments(models: Path) -> list[dict[str, str]]:
    path = models / "deployments.jsonl"
    return (
        [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []
    )


@pytest.mark.parametrize("command", ["rollback", "promote"])
def test_every_step_of_a_rollback_or_promote_killed_leaves_one_whole_recorded_live_set(
    tmp_path: Path, command: str, publish_runner: PublishRunner
):
    write_market(tmp_path / "data", *synthetic_market())
    models = tmp_path / "models"

    def run(kill_at: int, *args: str) -> int:
        return publish_runner.run(kill_at, *args, "--models-dir", str(models))

    csv = ["--source", "csv", "--data-dir", str(tmp_path / "data"), "--start", "2000-01-01"]
    for as_of in ("2018-01-25", "2018-02-26"):
        assert run(0, "train", *csv, "--as-of", as_of) == 0
    first, second = _history_ids(models)
    # rollback to the first set; promote the first set back too (from its archive).
    args = ["rollback"] if command == "rollback" else ["promote", first]
    killed = 0
    while (code := run(killed + 1, *args)) != 0:
        assert code == -signal.SIGKILL
        killed += 1
        assert killed <= 60, "the switch never finished"
        live = _assert_live_set_is_whole(models)
        assert live in (first, second)
        _assert_tidy_after_recovery(models, {first, second})
        assert _deployments(models)[-1]["run_id"] == live  # recovery logged whatever is live
        if live == first:
            break  # the switch happened before the kill: nothing left to switch
    assert killed >= 3  # the kills really landed inside the switch
    assert _assert_live_set_is_whole(models) == first
    _assert_tidy_after_recovery(models, {first, second})
    assert _deployments(models)[-1]["run_id"] == first
