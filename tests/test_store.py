from __future__ import annotations

import errno
import json
import multiprocessing
import os
from pathlib import Path

import pytest

from volforecast import atomic
from volforecast.atomic import write_outputs
from volforecast.errors import (
    ArtifactsMissingError,
    IntegrityError,
    LockLostError,
    LockTimeoutError,
    StorageError,
)
from volforecast.schemas import ModelAInfo, ModelBInfo, TrainingRecord, Window
from volforecast.store import (
    ALIASES,
    MONITORING_HISTORY,
    TRAINING_HISTORY,
    ModelsDirectory,
    sha256,
)

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


def _record(run_id: str) -> TrainingRecord:
    a = ModelAInfo(
        training_samples=100, training_date_start="2015-01-02", training_date_end="2015-06-30",
        validation_rmse=0.01, validation_mae=0.008, validation_r2=0.3, validation_samples=10,
        validation_date_start="2015-07-08", validation_date_end="2015-07-21", sha256="a" * 64,
    )  # fmt: skip
    b = ModelBInfo(
        training_samples=100, training_date_start="2015-01-02", training_date_end="2015-06-30",
        test_samples=30, test_date_start="2015-07-08", test_date_end="2015-08-18",
        test_rmse=0.01, test_mae=0.008, test_r2=-0.1, sha256="b" * 64,
    )  # fmt: skip
    return TrainingRecord(
        timestamp="2015-08-20T00:00:00+00:00", training_date="2015-08-20", model_a=a, model_b=b,
        run_id=run_id, horizon=5, data_source="test", data_end="2015-08-25", as_of=None,
        duration_seconds=1.0,
    )  # fmt: skip


def _commit(models: ModelsDirectory, run_id: str, keep: int = 4, tag: str | None = None) -> Path:
    with models.lock(5, "test", create=True):
        models.recover(keep)
        return models.commit(run_id, _files(tag or run_id), _record(run_id), keep=keep)


def _history_ids(root: Path) -> list[str]:
    path = root / TRAINING_HISTORY
    return [json.loads(x)["run_id"] for x in path.read_text().splitlines()] if path.exists() else []


def test_commit_links_every_spec_name_to_the_new_set(tmp_path: Path):
    models = ModelsDirectory(tmp_path)
    _commit(models, "run1", tag="one")
    for alias, target in ALIASES.items():
        assert (tmp_path / alias).read_bytes() == f"one:{target}".encode()
        assert not str((tmp_path / alias).readlink()).startswith("/")  # survives a moved volume
    assert models.current_run_id() == "run1"
    assert _history_ids(tmp_path) == ["run1"]


def test_commit_writes_manifest_covering_every_file_of_the_set(tmp_path: Path):
    final = _commit(ModelsDirectory(tmp_path), "run1")
    manifest = json.loads((final / "manifest.json").read_text())
    assert manifest["run_id"] == "run1"
    assert manifest["signature"] == "none"
    assert set(manifest["files"]) == {*_files("x"), "training_record.json"}
    for name, digest in manifest["files"].items():
        assert sha256((final / name).read_bytes()) == digest


def test_commit_archives_previous_set_and_keeps_newest_n(tmp_path: Path):
    models = ModelsDirectory(tmp_path)
    for i in range(5):
        _commit(models, f"run{i}", keep=2)
    archived = sorted(p.name.split("_", 1)[1] for p in (tmp_path / "archive").iterdir())
    assert archived == ["run2", "run3"]
    assert [p.name for p in (tmp_path / "sets").iterdir()] == ["run4"]
    assert (tmp_path / "model_90pct.pkl").read_bytes() == b"run4:model_90pct.pkl"
    assert _history_ids(tmp_path) == [f"run{i}" for i in range(5)]


def test_commit_moves_plain_files_to_archive_when_replacing_them(tmp_path: Path):
    (tmp_path / "model_90pct.pkl").write_bytes(b"old copy")
    _commit(ModelsDirectory(tmp_path), "run1")
    legacy = list((tmp_path / "archive").glob("*_legacy/model_90pct.pkl"))
    assert [p.read_bytes() for p in legacy] == [b"old copy"]


def test_recover_removes_orphan_sets_instead_of_archiving_them_when_their_run_died(
    tmp_path: Path,
):
    models = ModelsDirectory(tmp_path)
    _commit(models, "run1")
    # A run killed after renaming its set into sets/ but before switching `current`:
    (tmp_path / "sets" / ".tmp-dead").mkdir()
    orphan = tmp_path / "sets" / "orphan"
    orphan.mkdir()
    (orphan / "model_90pct.pkl").write_bytes(b"never live")
    _commit(models, "run2")
    assert [p.name for p in (tmp_path / "sets").iterdir()] == ["run2"]
    assert [p.name.split("_", 1)[1] for p in (tmp_path / "archive").iterdir()] == ["run1"]


def test_recover_appends_the_missing_history_line_of_the_live_set_once(tmp_path: Path, caplog):
    models = ModelsDirectory(tmp_path)
    _commit(models, "run1")
    # As if train was killed between the switch and its history append:
    (tmp_path / TRAINING_HISTORY).unlink()
    assert [r.run_id for r in models.training_history(_record("run1"))] == ["run1"]
    with models.lock(5, "test"):
        models.recover(4)
        models.recover(4)
    assert _history_ids(tmp_path) == ["run1"]
    assert "has no line in training_history.jsonl" in caplog.text


def test_commit_leaves_directory_as_before_when_history_append_hits_full_disk(
    tmp_path: Path, monkeypatch
):
    models = ModelsDirectory(tmp_path)
    _commit(models, "run1")
    before = snapshot(tmp_path)

    def full(*_a: object, **_k: object) -> None:
        raise StorageError("cannot append to training_history.jsonl: No space left on device. "
                           "Fix: ...; nothing was changed.")  # fmt: skip

    monkeypatch.setattr(models, "append_history", full)
    with pytest.raises(StorageError, match="set run2 was withdrawn; set run1 stays current"):
        _commit(models, "run2")
    assert snapshot(tmp_path) == before


def test_commit_says_the_set_is_live_when_neither_append_nor_undo_succeed(
    tmp_path: Path, monkeypatch
):
    models = ModelsDirectory(tmp_path)
    _commit(models, "run1")

    def full(*_a: object, **_k: object) -> None:
        raise StorageError("cannot append: No space left on device; nothing was changed.")

    def stuck(*_a: object, **_k: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(models, "append_history", full)
    monkeypatch.setattr(models, "_undo_switch", stuck)
    with pytest.raises(StorageError, match="the new set run2 is live but its training-history"):
        _commit(models, "run2")
    monkeypatch.undo()
    with models.lock(5, "test"):
        models.recover(4)
    assert _history_ids(tmp_path) == ["run1", "run2"]


def test_commit_removes_its_set_when_the_switch_is_refused(tmp_path: Path, monkeypatch):
    models = ModelsDirectory(tmp_path)
    _commit(models, "run1")
    before = snapshot(tmp_path)
    real = atomic.replace_symlink

    def immutable_root(link: Path, target: str) -> None:  # what `chattr +i models/` does
        if link.name == "current" and "run2" in target:
            raise OSError(errno.EPERM, "Operation not permitted")
        real(link, target)

    monkeypatch.setattr(atomic, "replace_symlink", immutable_root)
    with pytest.raises(StorageError, match=r"Operation not permitted.*nothing was changed"):
        _commit(models, "run2")
    assert snapshot(tmp_path) == before
    assert [p.name for p in (tmp_path / "sets").iterdir()] == ["run1"]


def test_commit_raises_storage_error_and_keeps_old_set_when_disk_is_full(
    tmp_path: Path, monkeypatch
):
    models = ModelsDirectory(tmp_path)
    _commit(models, "run1")
    before = snapshot(tmp_path)
    written = []
    real = atomic.write_new_file

    def full_disk(path: Path, data: bytes) -> None:
        written.append(path)
        if len(written) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(atomic, "write_new_file", full_disk)
    with pytest.raises(StorageError, match=r"No space left on device.*nothing was changed"):
        _commit(models, "run2")
    assert snapshot(tmp_path) == before


def test_commit_stops_before_switching_when_lock_file_was_replaced(tmp_path: Path):
    models = ModelsDirectory(tmp_path)
    _commit(models, "run1")
    with pytest.raises(LockLostError, match="was removed or replaced"):  # noqa: SIM117
        with models.lock(5, "test"):
            (tmp_path / ".lock").unlink()  # what `rm models/.lock` does under a running train
            (tmp_path / ".lock").touch()
            before = snapshot(tmp_path)  # the new lock file is someone else's: not ours to undo
            models.commit("run2", _files("run2"), _record("run2"), keep=4)
    assert snapshot(tmp_path) == before
    assert models.current_run_id() == "run1"


def test_load_current_raises_missing_and_creates_nothing_when_directory_is_mistyped(
    tmp_path: Path,
):
    with pytest.raises(ArtifactsMissingError, match="does not exist"):
        ModelsDirectory(tmp_path / "typo").load_current()
    with pytest.raises(ArtifactsMissingError, match="does not exist"):  # noqa: SIM117
        with ModelsDirectory(tmp_path / "typo").lock(1, "monitor"):
            pass
    assert not (tmp_path / "typo").exists()


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


def _write_reports(directory: str, worker: int) -> None:
    for _ in range(20):
        write_outputs(Path(directory), {"report.json": f"{worker}".encode() * 10_000})


def test_concurrent_report_writers_to_one_directory_all_succeed(tmp_path: Path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_reports, args=(str(tmp_path), i)) for i in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 8
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left
    assert len(set((tmp_path / "report.json").read_bytes())) == 1  # one writer's whole file


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
