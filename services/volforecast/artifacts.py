"""The models directory: the only module that reads or writes it.

Layout (see models/README.md)::

    models/
      sets/<run_id>/            one training run's complete set of files
      current -> sets/<run_id>  switched by one atomic rename: the commit point of a train run
      model_90pct.pkl -> current/model_90pct.pkl        (and the other spec names, likewise)
      latest_ensemble.pkl -> current/model_90pct.pkl
      training_history.jsonl, monitoring_history.jsonl  append-only
      archive/<timestamp>_<run_id>/                     previous sets, newest ``keep`` kept
      .lock                                             held by every train and monitor run

A train run writes its set under ``sets/.tmp-<run_id>/``, renames it into place and then swaps
``current``: a run killed at any moment leaves either the old set or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import pickle
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import filelock
from pydantic import BaseModel, ValidationError

from volforecast.errors import (
    ArtifactsMissingError,
    IntegrityError,
    LockTimeoutError,
    StorageError,
)
from volforecast.schemas import DualModelBaseline, ValidationBaseline

log = logging.getLogger(__name__)

MODEL_A_FILE = "model_90pct.pkl"
MODEL_B_FILE = "model_100pct.pkl"
LATEST_FILE = "latest_ensemble.pkl"
VALIDATION_FILE = "validation_baseline.json"
DUAL_FILE = "dual_model_baseline.json"
TRAINING_HISTORY = "training_history.jsonl"
MONITORING_HISTORY = "monitoring_history.jsonl"
SET_FILES = (MODEL_A_FILE, MODEL_B_FILE, VALIDATION_FILE, DUAL_FILE)
ALIASES = {name: name for name in SET_FILES} | {LATEST_FILE: MODEL_A_FILE}
SETS_DIR = "sets"
CURRENT = "current"
ARCHIVE_DIR = "archive"
LOCK_FILE = ".lock"
TMP_PREFIX = ".tmp-"

M = TypeVar("M", bound=BaseModel)


def serialize_model(artifact: dict[str, Any]) -> bytes:
    return pickle.dumps(artifact, protocol=pickle.HIGHEST_PROTOCOL)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class CurrentModels:
    """The verified current set: both baselines and both unpickled artifacts."""

    validation: ValidationBaseline
    dual: DualModelBaseline
    model_a: dict[str, Any]
    model_b: dict[str, Any]

    @property
    def run_id(self) -> str:
        return self.dual.run_id


def _storage_error(action: str, path: Path, exc: OSError) -> StorageError:
    reason = exc.strerror or str(exc)
    return StorageError(
        f"cannot {action} {path}: {reason}. Fix: make the models directory writable "
        "(--models-dir / VOLF_MODELS_DIR) and check free disk space; nothing was changed."
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_outputs(directory: Path, files: dict[str, bytes]) -> list[Path]:
    """Write report files into ``directory`` (created if needed), each to a temporary name and
    renamed into place, so a reader never sees half a file. Returns the written paths."""
    directory = Path(directory)
    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            final = directory / name
            tmp = directory / f"{TMP_PREFIX}{name}"
            _write_file(tmp, data)
            tmp.replace(final)
            written.append(final)
        _fsync_dir(directory)
    except OSError as exc:
        raise StorageError(
            f"cannot write {directory}: {exc.strerror or exc}. Fix: choose a writable --output "
            "directory with free space."
        ) from exc
    return written


def _replace_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` atomically (create a temporary link, rename over)."""
    if link.is_symlink() and str(link.readlink()) == target:
        return
    tmp = link.with_name(f"{TMP_PREFIX}{link.name}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(target)
    tmp.replace(link)


class ModelsDirectory:
    """Reads and writes one models directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # ------------------------------------------------------------------ locking

    @contextlib.contextmanager
    def lock(self, timeout: float, purpose: str) -> Iterator[None]:
        """Hold the directory's lock (released by the OS if the process dies)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _storage_error("create", self.root, exc) from exc
        path = self.root / LOCK_FILE
        lock = filelock.FileLock(str(path), timeout=timeout)
        try:
            log.debug("waiting for %s (%s)", path, purpose)
            lock.acquire()
        except filelock.Timeout as exc:
            raise LockTimeoutError(
                f"another volforecast run holds {path}; waited {timeout:.0f}s for it. "
                "Fix: let that run finish (or raise --lock-timeout / VOLF_LOCK_TIMEOUT); "
                "a lock of a process that died is released automatically."
            ) from exc
        except OSError as exc:
            raise _storage_error("lock", path, exc) from exc
        try:
            yield
        finally:
            lock.release()

    # ------------------------------------------------------------------ publishing a set

    def publish(self, run_id: str, files: dict[str, bytes], keep: int) -> Path:
        """Install a complete set of files as the current set; archive the previous one.

        Either the new set becomes current as a whole or the directory is left as it was.
        """
        missing = set(SET_FILES) - set(files)
        if missing:
            raise ValueError(f"a set needs {sorted(missing)}")
        sets = self.root / SETS_DIR
        tmp = sets / f"{TMP_PREFIX}{run_id}"
        final = sets / run_id
        try:
            sets.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
            for name, data in files.items():
                _write_file(tmp / name, data)
            _fsync_dir(tmp)
            tmp.rename(final)
            _fsync_dir(sets)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _storage_error("write the new model set in", sets, exc) from exc
        try:
            self._adopt_legacy_files()
            _replace_symlink(self.root / CURRENT, f"{SETS_DIR}/{run_id}")
            for alias, target in ALIASES.items():
                _replace_symlink(self.root / alias, f"{CURRENT}/{target}")
            _fsync_dir(self.root)
        except OSError as exc:
            raise _storage_error("switch to the new model set in", self.root, exc) from exc
        self._archive_old_sets(keep)
        return final

    def _adopt_legacy_files(self) -> None:
        """Regular files under the spec's names (an older layout, or a manual copy) are moved
        to the archive before the names become links, so nothing is lost."""
        legacy = [
            self.root / a
            for a in ALIASES
            if (self.root / a).exists() and not (self.root / a).is_symlink()
        ]
        if not legacy:
            return
        dest = self.root / ARCHIVE_DIR / f"{_stamp()}_legacy"
        dest.mkdir(parents=True, exist_ok=True)
        for path in legacy:
            log.warning("moving %s (a plain file, not a link to the current set) to %s", path, dest)
            path.replace(dest / path.name)

    def current_run_id(self) -> str | None:
        link = self.root / CURRENT
        if not link.is_symlink():
            return None
        return link.readlink().name

    def _archive_old_sets(self, keep: int) -> None:
        """Move every non-current set to archive/ and keep the newest ``keep`` there.

        Also clears leftovers of killed runs (``.tmp-*``); failures only warn, since the new
        set is already in place.
        """
        current = self.current_run_id()
        sets = self.root / SETS_DIR
        archive = self.root / ARCHIVE_DIR
        try:
            for entry in sorted(sets.iterdir()):
                if entry.name == current:
                    continue
                if entry.name.startswith(TMP_PREFIX):
                    shutil.rmtree(entry, ignore_errors=True)
                    continue
                archive.mkdir(exist_ok=True)
                dest = archive / f"{_stamp()}_{entry.name}"
                entry.rename(dest)
                log.info("archived the previous model set to %s", dest)
            kept = (
                sorted((p for p in archive.iterdir() if p.is_dir()), key=lambda p: p.name)
                if archive.exists()
                else []
            )
            for old in kept[: max(0, len(kept) - keep)]:
                shutil.rmtree(old, ignore_errors=True)
                log.info("removed old archive %s (keeping %d)", old, keep)
        except OSError as exc:
            log.warning("could not archive old model sets in %s: %s", self.root, exc)

    # ------------------------------------------------------------------ reading the set

    def _require(self, name: str) -> Path:
        path = self.root / name
        if not path.exists():
            raise ArtifactsMissingError(
                f"{path} not found. Fix: run `volforecast train` first "
                f"(with the same --models-dir {self.root})."
            )
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise IntegrityError(
                f"{path} points outside the models directory ({resolved}); refusing to load it. "
                "Fix: run `volforecast train` to write a fresh set."
            )
        return path

    def _read_json(self, name: str, model: type[M]) -> M:
        path = self._require(name)
        try:
            return model.model_validate_json(path.read_bytes())
        except (ValidationError, ValueError) as exc:
            raise IntegrityError(
                f"{path} is unreadable or incomplete ({str(exc).splitlines()[0]}). "
                f"Fix: run `volforecast train`, or restore the set from {self.root / ARCHIVE_DIR}."
            ) from exc

    def _read_pickle(self, name: str, expected_sha: str, run_id: str) -> dict[str, Any]:
        path = self._require(name)
        data = path.read_bytes()
        actual = sha256(data)
        if actual != expected_sha:
            raise IntegrityError(
                f"{path} does not match the SHA-256 recorded in {DUAL_FILE} (run {run_id}): "
                f"it was modified or copied from another run. Refusing to unpickle it. "
                f"Fix: run `volforecast train`, or restore the whole set from {self.root / ARCHIVE_DIR}."
            )
        artifact = pickle.loads(data)
        if not isinstance(artifact, dict) or artifact.get("run_id") != run_id:
            raise IntegrityError(
                f"{path} belongs to another training run. Fix: run `volforecast train`."
            )
        return artifact

    def load_current(self) -> CurrentModels:
        """Both baselines and both models, verified to be one run's untampered files."""
        for name in (VALIDATION_FILE, DUAL_FILE, MODEL_A_FILE, MODEL_B_FILE):
            self._require(name)
        validation = self._read_json(VALIDATION_FILE, ValidationBaseline)
        dual = self._read_json(DUAL_FILE, DualModelBaseline)
        if validation.run_id != dual.run_id or validation.model_sha256 != dual.model_a.sha256:
            raise IntegrityError(
                f"{VALIDATION_FILE} (run {validation.run_id}) and {DUAL_FILE} (run {dual.run_id}) "
                "come from different training runs. Fix: run `volforecast train`."
            )
        model_a = self._read_pickle(MODEL_A_FILE, dual.model_a.sha256, dual.run_id)
        model_b = self._read_pickle(MODEL_B_FILE, dual.model_b.sha256, dual.run_id)
        return CurrentModels(validation=validation, dual=dual, model_a=model_a, model_b=model_b)

    # ------------------------------------------------------------------ histories

    def append_history(self, name: str, record: BaseModel) -> None:
        """Append one record as one line, with one write. Never rewrites the file."""
        path = self.root / name
        line = (record.model_dump_json() + "\n").encode()
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _storage_error("append to", path, exc) from exc
        try:
            size = os.fstat(fd).st_size
            # A writer killed mid-line leaves no newline: start ours on a fresh line.
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(28, "short write (disk full?)")
            os.fsync(fd)
        except OSError as exc:
            raise _storage_error("append to", path, exc) from exc
        finally:
            os.close(fd)

    def read_history(self, name: str, model: type[M]) -> list[M]:
        """All valid records; a torn or invalid line is skipped with a warning, never repaired."""
        path = self.root / name
        if not path.exists():
            return []
        records: list[M] = []
        raw_lines = path.read_bytes().split(b"\n")
        for number, raw in enumerate(raw_lines, start=1):
            if not raw.strip():
                continue
            try:
                records.append(model.model_validate(json.loads(raw)))
            except (ValueError, ValidationError):
                torn = number == len(raw_lines)
                log.warning(
                    "%s line %d is %s; skipping it (the file is left as it is)",
                    path,
                    number,
                    "a torn final line" if torn else "not a valid record",
                )
        return records


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
