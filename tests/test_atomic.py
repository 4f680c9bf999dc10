"""Files never seen half-written (volforecast.atomic): temp file and rename, concurrent writers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from volforecast.atomic import write_outputs

from .conftest import cli_args, run_in_processes


@pytest.mark.slow
def test_parallel_reports_into_one_output_directory_all_succeed(project: Path, tmp_path: Path):
    out = tmp_path / "same"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLF_")}
    command = [sys.executable, "-m", "volforecast.cli",
               *cli_args(project, "report", "--output", str(out), "--log-level", "WARNING")]  # fmt: skip
    procs = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(8)
    ]
    errors = [p.communicate()[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, errors
    assert not [p.name for p in out.iterdir() if p.name.startswith(".tmp-")]
    assert json.loads((out / "report.json").read_text())["summary"]["training_runs"] == 1


def _write_reports(directory: str, worker: int) -> None:
    for _ in range(20):
        write_outputs(Path(directory), {"report.json": f"{worker}".encode() * 10_000})


@pytest.mark.slow
def test_concurrent_report_writers_to_one_directory_all_succeed(tmp_path: Path):
    codes = run_in_processes(_write_reports, [(str(tmp_path), i) for i in range(8)])
    assert codes == [0] * 8
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left
    assert len(set((tmp_path / "report.json").read_bytes())) == 1  # one writer's whole file
