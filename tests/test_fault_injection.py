"""SIGKILL a training run at random moments: the models directory must always hold one
complete, consistent set that monitor accepts (the previous one or the new one)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from volforecast.artifacts import SET_FILES, ModelsDirectory
from volforecast.cli import main

pytestmark = pytest.mark.slow

TRIALS = 20


def _train_command(models: Path) -> list[str]:
    return [sys.executable, "-m", "volforecast.cli", "train", "--source", "sample",
            "--models-dir", str(models), "--lock-timeout", "30"]  # fmt: skip


def _assert_one_consistent_set(models: Path) -> str:
    current = ModelsDirectory(models).load_current()  # raises on a mixed, partial or tampered set
    set_dir = models / "sets" / current.run_id
    assert sorted(p.name for p in set_dir.iterdir()) == sorted(SET_FILES)
    return current.run_id


def test_models_directory_holds_one_consistent_set_when_train_is_killed_at_random(tmp_path: Path):
    models = tmp_path / "models"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLF_")}
    started = time.monotonic()
    subprocess.run(_train_command(models), check=True, env=env, capture_output=True)
    full_run = time.monotonic() - started
    rng = random.Random(20261126)
    seen = {_assert_one_consistent_set(models)}
    killed_before_end = 0
    for trial in range(TRIALS):
        proc = subprocess.Popen(
            _train_command(models), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # Every fifth run is left to finish, so the set is also replaced between kills.
        if trial % 5 == 4:
            assert proc.wait(120) == 0
        else:
            time.sleep(rng.uniform(0.0, full_run * 1.1))
        if proc.poll() is None:
            killed_before_end += 1
            proc.send_signal(signal.SIGKILL)
        proc.wait(60)
        seen.add(_assert_one_consistent_set(models))
    assert killed_before_end >= TRIALS // 2  # most trials really interrupted a run
    # The set monitor sees is usable end to end.
    assert main(["monitor", "--source", "sample", "--models-dir", str(models)]) == 0
    assert len(seen) >= 2  # some runs did finish and replace the set
