from __future__ import annotations

import contextlib
import errno
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from volforecast import atomic
from volforecast.cli import main
from volforecast.errors import (
    ArtifactsMissingError,
    LockLostError,
    LockTimeoutError,
    StorageError,
)
from volforecast.schemas import ModelAInfo, ModelBInfo, TrainingRecord
from volforecast.store import (
    ALIASES,
    TRAINING_HISTORY,
    ModelsDirectory,
    sha256,
)
from volforecast.store import history as store_history

from .conftest import TRAINED_ON, cli_args, lock_held_by_another_process, snapshot


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
    with pytest.raises(
        ArtifactsMissingError, match=r"run `volforecast train --models-dir .*` first"
    ):
        ModelsDirectory(tmp_path).load_current()


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


def test_train_leaves_directory_as_before_and_says_so_when_history_append_fills_disk(
    project: Path, monkeypatch, capsys
):
    before = snapshot(project / "models")
    real = ModelsDirectory.append_history

    def full(self: ModelsDirectory, name: str, record: object) -> None:
        if name == TRAINING_HISTORY:
            raise store_history.storage_error(
                "append to", self.root / name, OSError(errno.ENOSPC, "No space left on device")
            )
        real(self, name, record)  # type: ignore[arg-type]

    monkeypatch.setattr(ModelsDirectory, "append_history", full)
    assert main(cli_args(project, "train", "--as-of", TRAINED_ON)) == 8
    err = capsys.readouterr().err
    assert "No space left on device" in err and "nothing was changed" in err
    assert "stays current" in err
    assert snapshot(project / "models") == before


def test_next_train_removes_a_dead_runs_complete_set_instead_of_archiving_it(project: Path):
    models = project / "models"
    live = (models / "current").readlink().name
    # A run SIGKILLed after renaming its complete set into sets/, before switching `current`:
    shutil.copytree(models / "sets" / live, models / "sets" / "20990101T000000Z-dead00")
    assert main(cli_args(project, "train", "--as-of", TRAINED_ON)) == 0
    assert [p.name for p in (models / "sets").iterdir()] == [(models / "current").readlink().name]
    assert [p.name.split("_", 1)[1] for p in (models / "archive").iterdir()] == [live]


def test_train_leaves_no_set_behind_when_models_directory_refuses_the_switch(
    project: Path, monkeypatch, capsys
):
    before = snapshot(project / "models")
    real = atomic.replace_symlink

    def immutable(link: Path, target: str) -> None:  # `chattr +i models/`
        if link.parent == project / "models" and str(link.readlink()) != target:
            raise OSError(errno.EPERM, "Operation not permitted")
        real(link, target)

    monkeypatch.setattr(atomic, "replace_symlink", immutable)
    assert main(cli_args(project, "train", "--as-of", TRAINED_ON)) == 8
    assert "nothing was changed" in capsys.readouterr().err
    assert snapshot(project / "models") == before


def test_train_stops_before_commit_when_lock_file_is_replaced_during_the_run(
    project: Path, monkeypatch, capsys
):
    from volforecast import training

    real = training.load_market_data

    def meanwhile(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        lock = project / "models" / ".lock"
        lock.unlink()  # `rm models/.lock` while train runs; another run may lock a new file
        lock.touch()
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(training, "load_market_data", meanwhile)
    before = snapshot(project / "models")
    assert main(cli_args(project, "train", "--as-of", TRAINED_ON)) == 7
    assert "was removed or replaced while this run held it" in capsys.readouterr().err
    assert snapshot(project / "models") == before


@pytest.mark.parametrize("command", ["monitor", "predict", "report"])
def test_reader_exits_4_and_creates_nothing_when_models_dir_is_mistyped(
    project: Path, capsys, command
):
    typo = project / "modles"
    assert main(cli_args(project, command, "--models-dir", str(typo))) == 4
    assert "does not exist" in capsys.readouterr().err
    assert not typo.exists()


def test_predict_and_report_take_no_lock(project: Path, tmp_path: Path, monkeypatch):
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("a reader took the lock")

    (project / "models" / ".lock").unlink(missing_ok=True)
    monkeypatch.setattr(ModelsDirectory, "lock", refuse)
    before = snapshot(project / "models")
    assert main(cli_args(project, "predict")) == 0
    assert main(cli_args(project, "report", "--output", str(tmp_path / "r"))) == 0
    assert snapshot(project / "models") == before


@contextlib.contextmanager
def _read_only_view(source: Path, target: Path) -> Iterator[Path]:
    target.mkdir()
    bound = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True)
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bound.stderr.decode().strip()}")
    try:
        ro = subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], capture_output=True)
        if ro.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {ro.stderr.decode().strip()}")
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=False)


def test_predict_and_report_work_on_a_read_only_models_volume(
    project: Path, tmp_path: Path, capsys
):
    with _read_only_view(project / "models", tmp_path / "ro") as ro:
        with pytest.raises(OSError, match="Read-only file system"):
            (ro / "probe").write_text("x")
        assert main(cli_args(project, "predict", "--models-dir", str(ro))) == 0
        out = tmp_path / "report"
        assert main(cli_args(project, "report", "--models-dir", str(ro), "--output", str(out))) == 0
        assert (out / "report.html").is_file()
        capsys.readouterr()
        assert main(cli_args(project, "monitor", "--models-dir", str(ro))) == 8
        assert "Read-only file system" in capsys.readouterr().err


def test_train_exits_6_and_changes_nothing_when_the_live_set_is_another_symbols(
    project: Path, capsys
):
    models = project / "models"
    gld = models / "symbols" / "GLD"
    shutil.copytree(models, gld, symlinks=True)  # `cp -a` of SPY's directory under GLD
    shutil.copy(project / "data" / "spy_daily.csv", project / "data" / "gld_daily.csv")
    before = snapshot(gld)
    assert main(cli_args(project, "train", "--symbol", "GLD")) == 6
    assert "is SPY's, not GLD's" in capsys.readouterr().err
    assert snapshot(gld) == before


def test_read_history_skips_lines_of_another_symbol_when_a_history_was_copied(
    project: Path, caplog
):
    gld = project / "models" / "symbols" / "GLD"
    gld.mkdir(parents=True)
    shutil.copy(project / "models" / TRAINING_HISTORY, gld / TRAINING_HISTORY)
    assert ModelsDirectory(gld, symbol="GLD").read_history(TRAINING_HISTORY, TrainingRecord) == []
    assert "1 line(s) of another symbol than GLD" in caplog.text


def test_train_of_a_symbol_without_data_leaves_no_directory_and_monitor_names_the_real_fix(
    project: Path, capsys
):
    assert main(cli_args(project, "train", "--symbol", "Z000")) == 3
    assert not (project / "models" / "symbols").exists()
    capsys.readouterr()
    assert main(cli_args(project, "monitor", "--symbol", "Z000")) == 4
    fix = f"volforecast train --symbol Z000 --models-dir {project / 'models'}"
    assert fix in capsys.readouterr().err
