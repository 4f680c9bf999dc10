from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from volforecast.artifacts import (
    ALIASES,
    MONITORING_HISTORY,
    TRAINING_HISTORY,
    ModelsDirectory,
)
from volforecast.errors import ArtifactsMissingError, LockTimeoutError, StorageError
from volforecast.schemas import Window

from .conftest import lock_held_by_another_process, snapshot


def _files(tag: str) -> dict[str, bytes]:
    return {
        name: f"{tag}:{name}".encode()
        for name in (
            "model_90pct.pkl",
            "model_100pct.pkl",
            "validation_baseline.json",
            "dual_model_baseline.json",
        )
    }


def test_publish_links_every_spec_name_to_the_new_set(tmp_path: Path):
    models = ModelsDirectory(tmp_path)
    models.publish("run1", _files("one"), keep=4)
    for alias, target in ALIASES.items():
        assert (tmp_path / alias).read_bytes() == f"one:{target}".encode()
        assert not str((tmp_path / alias).readlink()).startswith(
            "/"
        )  # relative: survives a moved volume
    assert models.current_run_id() == "run1"


def test_publish_archives_previous_set_and_keeps_newest_n(tmp_path: Path):
    models = ModelsDirectory(tmp_path)
    for i in range(5):
        models.publish(f"run{i}", _files(str(i)), keep=2)
    archived = sorted(p.name.split("_", 1)[1] for p in (tmp_path / "archive").iterdir())
    assert archived == ["run2", "run3"]
    assert [p.name for p in (tmp_path / "sets").iterdir()] == ["run4"]
    assert (tmp_path / "model_90pct.pkl").read_bytes() == b"4:model_90pct.pkl"


def test_publish_moves_plain_files_to_archive_when_replacing_them(tmp_path: Path):
    (tmp_path / "model_90pct.pkl").write_bytes(b"old copy")
    ModelsDirectory(tmp_path).publish("run1", _files("new"), keep=4)
    legacy = list((tmp_path / "archive").glob("*_legacy/model_90pct.pkl"))
    assert [p.read_bytes() for p in legacy] == [b"old copy"]


def test_publish_removes_leftovers_of_killed_runs(tmp_path: Path):
    (tmp_path / "sets" / ".tmp-dead").mkdir(parents=True)
    ModelsDirectory(tmp_path).publish("run1", _files("x"), keep=4)
    assert [p.name for p in (tmp_path / "sets").iterdir()] == ["run1"]


def test_publish_raises_storage_error_and_keeps_old_set_when_disk_is_full(
    tmp_path: Path, monkeypatch
):
    import errno

    from volforecast import artifacts

    models = ModelsDirectory(tmp_path)
    models.publish("run1", _files("one"), keep=4)
    before = snapshot(tmp_path)
    written = []

    def full_disk(path: Path, data: bytes) -> None:
        written.append(path)
        if len(written) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        path.write_bytes(data)

    monkeypatch.setattr(artifacts, "_write_file", full_disk)
    with pytest.raises(StorageError, match=r"No space left on device.*check free disk space"):
        models.publish("run2", _files("two"), keep=4)
    assert snapshot(tmp_path) == before


def test_load_current_raises_missing_when_nothing_trained(tmp_path: Path):
    with pytest.raises(ArtifactsMissingError, match="run `volforecast train` first"):
        ModelsDirectory(tmp_path).load_current()


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


def _append_many(root: str, worker: int) -> None:
    models = ModelsDirectory(Path(root))
    models.append_history(MONITORING_HISTORY, _window(worker))


def test_concurrent_appenders_each_write_one_whole_line(tmp_path: Path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), i)) for i in range(20)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    lines = (tmp_path / MONITORING_HISTORY).read_text().splitlines()
    assert sorted(json.loads(line)["n_samples"] for line in lines) == list(range(20))


def test_lock_raises_timeout_when_held_by_another_holder(tmp_path: Path):
    models = ModelsDirectory(tmp_path)
    with (
        lock_held_by_another_process(tmp_path),
        pytest.raises(LockTimeoutError, match="another volforecast run holds"),
        models.lock(0.2, "test"),
    ):
        pass
    with models.lock(1, "test"):
        pass
