"""The append-only histories (volforecast.store.history): one whole line per record, torn or
invalid lines skipped and never repaired, an unreadable history an integrity error."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from volforecast import atomic
from volforecast.cli import main
from volforecast.errors import (
    IntegrityError,
    StorageError,
)
from volforecast.schemas import Window
from volforecast.store import (
    MONITORING_HISTORY,
    TRAINING_HISTORY,
    ModelsDirectory,
)

from .conftest import cli_args, run_in_processes


def test_monitor_leaves_no_torn_fragment_when_disk_fills_twice(project: Path, monkeypatch):
    assert main(cli_args(project, "monitor")) == 0
    history = project / "models" / MONITORING_HISTORY
    before = history.read_bytes()
    real_write = os.write
    monkeypatch.setattr(atomic.os, "write", lambda fd, data: real_write(fd, bytes(data)[:65]))
    assert main(cli_args(project, "monitor")) == 8
    assert main(cli_args(project, "monitor")) == 8
    assert history.read_bytes() == before


@pytest.mark.parametrize("command", ["monitor", "predict", "report"])
def test_command_exits_6_with_a_message_when_monitoring_history_is_a_directory(
    project: Path, capsys, command
):
    (project / "models" / MONITORING_HISTORY).mkdir()
    assert main(cli_args(project, command)) == 6
    assert "monitoring_history.jsonl cannot be read" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["monitor", "predict", "report"])
def test_command_skips_a_history_line_nested_too_deep_to_parse(project: Path, capsys, command):
    (project / "models" / MONITORING_HISTORY).write_bytes(b"[" * 200_000 + b"\n")
    assert main(cli_args(project, command)) == 0
    assert "line 1 is not a valid record" in capsys.readouterr().err


def _window(i: int) -> Window:
    return Window(name=f"w{i}", n_samples=i, model_a_rmse=0.1, model_b_rmse=0.2, winner="Model A")


def test_append_history_starts_a_new_line_after_a_torn_one(tmp_path: Path):
    models = ModelsDirectory(tmp_path)
    models.append_history(MONITORING_HISTORY, _window(1))
    with (tmp_path / MONITORING_HISTORY).open("ab") as fh:
        fh.write(b'{"name": "torn", "n_sam')
    models.append_history(MONITORING_HISTORY, _window(2))
    lines = (tmp_path / MONITORING_HISTORY).read_bytes().split(b"\n")
    assert json.loads(lines[0])["name"] == "w1"
    assert lines[1] == b'{"name": "torn", "n_sam'
    assert json.loads(lines[2])["name"] == "w2"


def test_append_history_cuts_back_a_partial_write_when_disk_fills(tmp_path: Path, monkeypatch):
    models = ModelsDirectory(tmp_path)
    models.append_history(MONITORING_HISTORY, _window(1))
    before = (tmp_path / MONITORING_HISTORY).read_bytes()
    real_write = os.write

    def partial(fd: int, data: bytes) -> int:  # the kernel wrote 65 bytes, then the disk filled
        return real_write(fd, bytes(data)[:65])

    monkeypatch.setattr(atomic.os, "write", partial)
    for _ in range(2):
        with pytest.raises(StorageError, match="short write"):
            models.append_history(MONITORING_HISTORY, _window(2))
    assert (tmp_path / MONITORING_HISTORY).read_bytes() == before


def test_read_history_skips_torn_final_line_without_rewriting(tmp_path: Path, caplog):
    models = ModelsDirectory(tmp_path)
    models.append_history(TRAINING_HISTORY, _window(1))
    path = tmp_path / TRAINING_HISTORY
    with path.open("ab") as fh:
        fh.write(b'{"name": "w2", "n_')
    before = path.read_bytes()
    records = models.read_history(TRAINING_HISTORY, Window)
    assert [r.name for r in records] == ["w1"]
    assert "torn final line" in caplog.text
    assert path.read_bytes() == before


def test_read_history_skips_a_line_nested_too_deep_to_parse(tmp_path: Path, caplog):
    models = ModelsDirectory(tmp_path)
    models.append_history(MONITORING_HISTORY, _window(1))
    with (tmp_path / MONITORING_HISTORY).open("ab") as fh:
        fh.write(b"[" * 200_000 + b"\n")
    models.append_history(MONITORING_HISTORY, _window(2))
    assert [r.name for r in models.read_history(MONITORING_HISTORY, Window)] == ["w1", "w2"]
    assert "line 2 is not a valid record" in caplog.text


def test_read_history_raises_integrity_error_when_history_is_a_directory(tmp_path: Path):
    (tmp_path / MONITORING_HISTORY).mkdir()
    with pytest.raises(IntegrityError, match=r"cannot be read.*must be a readable file"):
        ModelsDirectory(tmp_path).read_history(MONITORING_HISTORY, Window)


def _append_many(root: str, worker: int) -> None:
    models = ModelsDirectory(Path(root))
    models.append_history(MONITORING_HISTORY, _window(worker))


@pytest.mark.slow
def test_concurrent_appenders_each_write_one_whole_line(tmp_path: Path):
    assert run_in_processes(_append_many, [(str(tmp_path), i) for i in range(20)]) == [0] * 20
    lines = (tmp_path / MONITORING_HISTORY).read_text().splitlines()
    assert sorted(json.loads(line)["n_samples"] for line in lines) == list(range(20))
