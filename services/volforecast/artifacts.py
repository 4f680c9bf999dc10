"""The models directory: the only module that reads or writes it.

Layout (see models/README.md)::

    models/
      sets/<run_id>/            one training run's complete, immutable set of files:
                                the spec's four files, training_record.json, manifest.json
                                (SHA-256 of every other file) and, when signing, manifest.sig
      current -> sets/<run_id>  switched by one atomic rename: the commit point of a train run
      model_90pct.pkl -> current/model_90pct.pkl        (and the other spec names, likewise)
      latest_ensemble.pkl -> current/model_90pct.pkl
      training_history.jsonl, monitoring_history.jsonl  append-only
      archive/<timestamp>_<run_id>/                     sets that were live, newest ``keep`` kept
      .lock                                             held by every train and monitor run

A train run writes its set under ``sets/.tmp-<run_id>/``, renames it into place, switches
``current`` (the commit) and appends the set's training record to the history. A run killed
between the switch and the append leaves a live set whose record is inside it: readers count
it (``training_history``) and the next writer appends it (``recover``). A set that never went
live (no history line, not current) is an orphan and is removed, never archived.

Readers (``load_current``) take no lock and need no write access: they resolve ``current``
once and read that immutable set, verifying the manifest (and its signature) before they parse
or unpickle anything.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import hmac
import json
import logging
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import filelock
import pandas as pd
from pydantic import BaseModel, ValidationError

from volforecast.config import PRIMARY_SYMBOL, Settings
from volforecast.errors import (
    ArtifactsMissingError,
    IntegrityError,
    LockLostError,
    LockTimeoutError,
    StorageError,
    VolforecastError,
)
from volforecast.runtime import signals_deferred
from volforecast.schemas import DualModelBaseline, Manifest, TrainingRecord, ValidationBaseline

log = logging.getLogger(__name__)

MODEL_A_FILE = "model_90pct.pkl"
MODEL_B_FILE = "model_100pct.pkl"
LATEST_FILE = "latest_ensemble.pkl"
VALIDATION_FILE = "validation_baseline.json"
DUAL_FILE = "dual_model_baseline.json"
TRAINING_HISTORY = "training_history.jsonl"
MONITORING_HISTORY = "monitoring_history.jsonl"
RECORD_FILE = "training_record.json"
MANIFEST_FILE = "manifest.json"
# Every symbol but SPY has its own complete models directory here, named by its ticker.
SYMBOLS_DIR = "symbols"
SIGNATURE_FILE = "manifest.sig"
# The spec's files of a set, and every file the manifest covers.
SET_FILES = (MODEL_A_FILE, MODEL_B_FILE, VALIDATION_FILE, DUAL_FILE)
HASHED_FILES = (*SET_FILES, RECORD_FILE)
# A reader that finds its set archived under it (a train run committed meanwhile) starts over.
READ_ATTEMPTS = 3
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
    record: TrainingRecord

    @property
    def run_id(self) -> str:
        return self.dual.run_id

    def new_rows(self, data: pd.DataFrame) -> pd.DataFrame:
        """Rows of ``data`` Model B never trained on: after its training end and past the purge
        gap (which starts its test window), so right after training this is Model B's test
        window."""
        b = self.dual.model_b
        start = max(
            pd.Timestamp(b.training_date_end) + pd.Timedelta(days=1),
            pd.Timestamp(b.test_date_start),
        )
        return data.loc[data.index >= start]

    def validation_rows(self, data: pd.DataFrame) -> pd.DataFrame:
        """Rows of ``data`` in Model A's validation period (those the data holds)."""
        a = self.dual.model_a
        return data.loc[
            (data.index >= pd.Timestamp(a.validation_date_start))
            & (data.index <= pd.Timestamp(a.validation_date_end))
        ]

    def training_rows(self, data: pd.DataFrame) -> pd.DataFrame:
        """Rows of ``data`` in Model A's training period (those the data holds)."""
        a = self.dual.model_a
        return data.loc[
            (data.index >= pd.Timestamp(a.training_date_start))
            & (data.index <= pd.Timestamp(a.training_date_end))
        ]


def _storage_error(
    action: str, path: Path, exc: OSError, changed: str | None = None
) -> StorageError:
    reason = exc.strerror or str(exc)
    return StorageError(
        f"cannot {action} {path}: {reason}. Fix: make the models directory writable "
        "(--models-dir / VOLF_MODELS_DIR) and check free disk space; "
        + (changed or "nothing was changed.")
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def _write_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def write_outputs(directory: Path, files: dict[str, bytes]) -> list[Path]:
    """Write report files into ``directory`` (created if needed), each to a temporary name of
    its own and renamed into place, so a reader never sees half a file and concurrent writers
    never share a temporary file. Returns the written paths."""
    directory = Path(directory)
    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            final = directory / name
            fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f"{TMP_PREFIX}{name}.")
            tmp = Path(tmp_name)
            try:
                try:
                    _write_all(fd, data)
                finally:
                    os.close(fd)
                tmp.chmod(0o644)  # mkstemp's 0600 would hide reports from other users
                tmp.replace(final)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
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


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _recorded_run_ids(raw: bytes) -> set[str]:
    """Run ids named by history lines, read leniently (a line that fails the schema still
    proves its set went live; only unparsable lines are ignored)."""
    ids = set()
    for line in raw.split(b"\n"):
        with contextlib.suppress(ValueError, RecursionError):
            value = json.loads(line)
            if isinstance(value, dict) and isinstance(value.get("run_id"), str):
                ids.add(value["run_id"])
    return ids


def symbol_root(models_dir: Path, symbol: str) -> Path:
    """Where a symbol's complete models directory lives (see models/README.md)."""
    return models_dir if symbol == PRIMARY_SYMBOL else models_dir / SYMBOLS_DIR / symbol


def sign(key: bytes, manifest: bytes) -> str:
    return hmac.new(key, manifest, hashlib.sha256).hexdigest()


class ModelsDirectory:
    """Reads and writes one models directory.

    ``signing_key``: when given, committed sets are signed and only correctly signed sets are
    read (see models/README.md, "Threat model").
    """

    def __init__(
        self, root: Path, signing_key: bytes | None = None, symbol: str = PRIMARY_SYMBOL
    ) -> None:
        self.root = Path(root)
        self.signing_key = signing_key
        self.symbol = symbol
        self._lock_identity: tuple[int, int] | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> ModelsDirectory:
        """The directory of ``settings.symbol``: the models directory itself for SPY (the
        spec's layout), ``symbols/<SYMBOL>/`` under it for any other symbol."""
        return cls(
            symbol_root(settings.models_dir, settings.symbol),
            signing_key=settings.signing_secret(),
            symbol=settings.symbol,
        )

    # ------------------------------------------------------------------ locking

    def require_directory(self) -> None:
        """Readers never create the directory: a mistyped path is an error, not a new tree."""
        if not self.root.is_dir():
            train = "volforecast train" + (
                "" if self.symbol == PRIMARY_SYMBOL else f" --symbol {self.symbol}"
            )
            raise ArtifactsMissingError(
                f"the models directory {self.root} does not exist. Fix: check --models-dir / "
                f"VOLF_MODELS_DIR, or run `{train}` first."
            )

    @contextlib.contextmanager
    def lock(self, timeout: float, purpose: str, *, create: bool = False) -> Iterator[None]:
        """Hold the directory's lock (released by the OS if the process dies).

        Only train creates a missing directory (``create``); other writers require it.
        """
        if create:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _storage_error("create", self.root, exc) from exc
        else:
            self.require_directory()
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
        self._lock_identity = _identity(path)
        try:
            yield
        finally:
            self._lock_identity = None
            lock.release()

    def assert_lock_held(self) -> None:
        """Stop before committing if our lock file is no longer the one at ``.lock`` (someone
        removed or replaced it, so another run may have locked a new file and be writing)."""
        path = self.root / LOCK_FILE
        if self._lock_identity is None or _identity(path) != self._lock_identity:
            raise LockLostError(
                f"{path} was removed or replaced while this run held it, so another run may be "
                "writing too; stopping before any change. Fix: never delete .lock (volforecast "
                "never does); run again once no other volforecast run is active."
            )

    # ------------------------------------------------------------------ committing a set

    def commit(
        self, run_id: str, files: dict[str, bytes], record: TrainingRecord, keep: int
    ) -> Path:
        """Make a complete set live together with its training-history line.

        The set (with ``training_record.json`` and a manifest, signed if a key is configured)
        is written and fsynced, ``current`` is switched (the commit point), then the record is
        appended to the history. If the append fails, the switch is undone and the new set
        removed, so the directory is as before. Previous live sets go to ``archive/``.
        Stop signals wait until the commit is over.
        """
        missing = set(SET_FILES) - set(files)
        if missing:
            raise ValueError(f"a set needs {sorted(missing)}")
        if record.run_id != run_id:
            raise ValueError(f"the record is of run {record.run_id}, not {run_id}")
        blobs = {**files, RECORD_FILE: record.model_dump_json(indent=2).encode()}
        manifest = Manifest(
            run_id=run_id,
            created_at=record.timestamp,
            files={name: sha256(data) for name, data in blobs.items()},
            signature="hmac-sha256" if self.signing_key else "none",
        )
        blobs[MANIFEST_FILE] = manifest.model_dump_json(indent=2).encode()
        if self.signing_key:
            blobs[SIGNATURE_FILE] = sign(self.signing_key, blobs[MANIFEST_FILE]).encode()
        sets = self.root / SETS_DIR
        tmp = sets / f"{TMP_PREFIX}{run_id}"
        final = sets / run_id
        with signals_deferred():
            try:
                sets.mkdir(parents=True, exist_ok=True)
                tmp.mkdir()
                for name, data in blobs.items():
                    _write_file(tmp / name, data)
                _fsync_dir(tmp)
                tmp.rename(final)
                _fsync_dir(sets)
            except BaseException as exc:  # whatever stops the write, no half-written set stays
                shutil.rmtree(tmp, ignore_errors=True)
                if isinstance(exc, OSError):
                    raise _storage_error("write the new model set in", sets, exc) from exc
                raise
            self._switch(run_id, final, record)
        self._tidy(keep)
        return final

    def _switch(self, run_id: str, final: Path, record: TrainingRecord) -> None:
        previous = self.current_run_id()
        try:
            self.assert_lock_held()
            self._adopt_legacy_files()
            self._point_at(run_id)
            self.append_history(TRAINING_HISTORY, record)
        except (OSError, VolforecastError) as exc:
            failure = (
                exc
                if isinstance(exc, VolforecastError)
                else _storage_error("switch to the new model set in", self.root, exc)
            )
            try:
                self._undo_switch(previous, final)
            except OSError as undo_exc:
                if self.current_run_id() != run_id:
                    raise failure from exc  # the switch never happened: nothing to undo
                cause = exc if isinstance(exc, OSError) else exc.__cause__
                raise _storage_error(
                    "publish the new model set in",
                    self.root,
                    cause if isinstance(cause, OSError) else OSError(str(exc)),
                    changed=f"the new set {run_id} is live but its training-history line is "
                    f"missing (undoing the switch failed too: {undo_exc.strerror or undo_exc}); "
                    "the next train or monitor run adds the line from the set.",
                ) from exc
            kept = f"set {previous} stays current" if previous else "no set is current"
            raise type(failure)(f"{failure} (set {run_id} was withdrawn; {kept}.)") from exc

    def _point_at(self, run_id: str) -> None:
        _replace_symlink(self.root / CURRENT, f"{SETS_DIR}/{run_id}")
        for alias, target in ALIASES.items():
            _replace_symlink(self.root / alias, f"{CURRENT}/{target}")
        _fsync_dir(self.root)

    def _undo_switch(self, previous: str | None, final: Path) -> None:
        """Put ``current`` back as it was and remove the set that did not become live."""
        if previous is not None:
            _replace_symlink(self.root / CURRENT, f"{SETS_DIR}/{previous}")
        else:
            for name in (CURRENT, *ALIASES):
                with contextlib.suppress(FileNotFoundError):
                    (self.root / name).unlink()
        _fsync_dir(self.root)
        shutil.rmtree(final, ignore_errors=True)

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

    def recover(self, keep: int) -> None:
        """Finish what a killed run left (call under the lock, before any change):

        the live set's history line if it is missing (appended from the set's own record), the
        spec names' links, then ``_tidy``. Idempotent.
        """
        current = self.current_run_id()
        if current is not None and current not in self._history_run_ids():
            path = self.root / SETS_DIR / current / RECORD_FILE
            try:
                record = TrainingRecord.model_validate_json(path.read_bytes())
            except (OSError, ValueError) as exc:
                raise IntegrityError(
                    f"the live set {current} has no training-history line and its record "
                    f"{path} is unreadable ({exc}). Fix: run `volforecast train` "
                    "after restoring the set from archive/, or remove the `current` link."
                ) from exc
            log.warning(
                "the live set %s has no line in %s (its train run was stopped after publishing); "
                "adding it from the set",
                current,
                TRAINING_HISTORY,
            )
            self.append_history(TRAINING_HISTORY, record)
        if current is not None:
            try:
                self._point_at(current)  # a spec name deleted by hand comes back
            except OSError as exc:
                log.warning("could not restore the links of set %s: %s", current, exc)
        self._tidy(keep)

    def _history_run_ids(self) -> set[str]:
        path = self.root / TRAINING_HISTORY
        try:
            return _recorded_run_ids(path.read_bytes())
        except FileNotFoundError:
            return set()
        except OSError as exc:
            raise _unreadable_history(path, exc) from exc

    def _tidy(self, keep: int) -> None:
        """Remove what never went live, archive what was live, keep the newest ``keep``.

        Under ``sets/``, besides the current set: ``.tmp-*`` are killed writes; a set without a
        history line is an orphan (its run died before the commit, or withdrew it); a set with
        one was live and its run died before archiving it. Failures only warn: the live set is
        already in place.
        """
        current = self.current_run_id()
        sets = self.root / SETS_DIR
        archive = self.root / ARCHIVE_DIR
        try:
            if not sets.is_dir():
                return
            recorded = self._history_run_ids()
            for entry in sorted(sets.iterdir()):
                if entry.name == current:
                    continue
                if entry.name.startswith(TMP_PREFIX) or entry.name not in recorded:
                    log.info("removing %s: a set that never went live", entry)
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
        except (OSError, IntegrityError) as exc:
            log.warning("could not tidy the model sets in %s: %s", self.root, exc)

    # ------------------------------------------------------------------ reading the set

    def _current_set_dir(self) -> tuple[str, Path]:
        self.require_directory()
        run_id = self.current_run_id()
        if run_id is None:
            raise ArtifactsMissingError(
                f"no model set in {self.root} (no `{CURRENT}` link). Fix: run `volforecast "
                f"train` first (with the same --models-dir {self.root})."
            )
        set_dir = self.root / SETS_DIR / run_id
        if not (self.root / CURRENT).resolve().is_relative_to(self.root.resolve()):
            raise IntegrityError(
                f"{self.root / CURRENT} points outside the models directory; refusing to load it. "
                "Fix: run `volforecast train` to write a fresh set."
            )
        return run_id, set_dir

    def _verified_blobs(self) -> tuple[str, dict[str, bytes]]:
        """The current set's files, each matching the manifest (and the manifest its signature).

        Nothing is parsed beyond the manifest, and nothing unpickled, before every hash has
        been checked.
        """
        for _ in range(READ_ATTEMPTS):
            run_id, set_dir = self._current_set_dir()
            try:
                return run_id, self._verify(run_id, set_dir)
            except FileNotFoundError as exc:
                if self.current_run_id() != run_id:
                    log.info("set %s was replaced while being read; reading the new one", run_id)
                    continue
                raise IntegrityError(
                    f"the live set {set_dir} lacks {Path(exc.filename or '?').name}: it is "
                    "incomplete (written by an older volforecast, or damaged). Fix: run "
                    f"`volforecast train`, or restore the set from {self.root / ARCHIVE_DIR}."
                ) from exc
        raise IntegrityError(
            f"the current set of {self.root} changed {READ_ATTEMPTS} times while being read. "
            "Fix: retry once the train runs are over."
        )

    def _verify(self, run_id: str, set_dir: Path) -> dict[str, bytes]:
        raw = (set_dir / MANIFEST_FILE).read_bytes()
        fix = f"Fix: run `volforecast train`, or restore the whole set from {self.root / ARCHIVE_DIR}."
        if self.signing_key is not None:
            sig_path = set_dir / SIGNATURE_FILE
            if not sig_path.exists():
                raise IntegrityError(
                    f"the set {run_id} is not signed, and a signing key is configured: refusing "
                    "to read it. Fix: run `volforecast train` with the key to write a signed set."
                )
            if not hmac.compare_digest(
                sig_path.read_bytes().strip(), sign(self.signing_key, raw).encode()
            ):
                raise IntegrityError(
                    f"the signature of set {run_id} does not match its manifest under the "
                    "configured key: the set was altered or signed with another key; refusing "
                    f"to read it. {fix}"
                )
        try:
            manifest = Manifest.model_validate_json(raw)
        except ValueError as exc:
            raise IntegrityError(
                f"{set_dir / MANIFEST_FILE} is unreadable ({_first_line(exc)}). {fix}"
            ) from exc
        if manifest.run_id != run_id or set(manifest.files) != set(HASHED_FILES):
            raise IntegrityError(
                f"{set_dir / MANIFEST_FILE} does not describe set {run_id} "
                f"(run {manifest.run_id}, files {sorted(manifest.files)}). {fix}"
            )
        blobs = {}
        for name, expected in manifest.files.items():
            data = (set_dir / name).read_bytes()
            if sha256(data) != expected:
                raise IntegrityError(
                    f"{set_dir / name} does not match the SHA-256 recorded in {MANIFEST_FILE} "
                    f"(run {run_id}): it was modified or copied from another run. Refusing to "
                    f"read it (a pickle is never unpickled unverified). {fix}"
                )
            blobs[name] = data
        return blobs

    def _parse(self, name: str, data: bytes, model: type[M]) -> M:
        try:
            return model.model_validate_json(data)
        except ValueError as exc:
            raise IntegrityError(
                f"{name} of the current set is invalid ({_first_line(exc)}). "
                f"Fix: run `volforecast train`, or restore the set from {self.root / ARCHIVE_DIR}."
            ) from exc

    def load_current(self) -> CurrentModels:
        """Both baselines and both models, verified to be one run's untampered files.

        Takes no lock and writes nothing: works on a read-only models volume.
        """
        run_id, blobs = self._verified_blobs()
        validation = self._parse(VALIDATION_FILE, blobs[VALIDATION_FILE], ValidationBaseline)
        dual = self._parse(DUAL_FILE, blobs[DUAL_FILE], DualModelBaseline)
        record = self._parse(RECORD_FILE, blobs[RECORD_FILE], TrainingRecord)
        if not (
            validation.run_id == dual.run_id == record.run_id == run_id
            and validation.model_sha256 == dual.model_a.sha256 == sha256(blobs[MODEL_A_FILE])
            and dual.model_b.sha256 == sha256(blobs[MODEL_B_FILE])
        ):
            raise IntegrityError(
                f"the files of set {run_id} come from different training runs "
                f"({VALIDATION_FILE}: {validation.run_id}, {DUAL_FILE}: {dual.run_id}). "
                "Fix: run `volforecast train`."
            )
        if dual.symbol != self.symbol:
            raise IntegrityError(
                f"the current set in {self.root} is for {dual.symbol}, not {self.symbol} (a set "
                f"copied into the wrong directory?). Fix: run `volforecast train --symbol "
                f"{self.symbol}`, or move the set under its symbol's directory."
            )
        model_a = _unpickle(blobs[MODEL_A_FILE], MODEL_A_FILE, run_id)
        model_b = _unpickle(blobs[MODEL_B_FILE], MODEL_B_FILE, run_id)
        return CurrentModels(
            validation=validation, dual=dual, model_a=model_a, model_b=model_b, record=record
        )

    # ------------------------------------------------------------------ histories

    def append_history(self, name: str, record: BaseModel) -> None:
        """Append one record as one line, with one write. Never rewrites the file: a write
        that fails part-way is cut back to the old size, so no torn fragment stays."""
        path = self.root / name
        line = (record.model_dump_json() + "\n").encode()
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _storage_error("append to", path, exc) from exc
        size = None
        try:
            size = os.fstat(fd).st_size
            # A writer killed mid-line leaves no newline: start ours on a fresh line.
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(errno.ENOSPC, "short write (disk full?)")
            os.fsync(fd)
        except OSError as exc:
            if size is not None:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                    os.fsync(fd)
            raise _storage_error("append to", path, exc) from exc
        finally:
            os.close(fd)

    def read_history(self, name: str, model: type[M]) -> list[M]:
        """All valid records; a torn or invalid line is skipped with a warning, never repaired."""
        path = self.root / name
        try:
            raw_lines = path.read_bytes().split(b"\n")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise _unreadable_history(path, exc) from exc
        records: list[M] = []
        for number, raw in enumerate(raw_lines, start=1):
            if not raw.strip():
                continue
            try:
                records.append(model.model_validate(json.loads(raw)))
            except (ValueError, ValidationError, RecursionError):
                torn = number == len(raw_lines)
                log.warning(
                    "%s line %d is %s; skipping it (the file is left as it is)",
                    path,
                    number,
                    "a torn final line" if torn else "not a valid record",
                )
        return records

    def training_history(self, live: TrainingRecord | None = None) -> list[TrainingRecord]:
        """The training history as readers should see it: the file's records, plus the live
        set's own record (``CurrentModels.record``) when its run stopped between the commit and
        the history append (the next writer appends it; until then it is counted here)."""
        records = self.read_history(TRAINING_HISTORY, TrainingRecord)
        if live is not None and live.run_id not in {r.run_id for r in records}:
            records.append(live)
        return records


def _first_line(exc: Exception) -> str:
    """A one-line cause: each pydantic error as ``field: message``, else the first line."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in exc.errors()
        )
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _unreadable_history(path: Path, exc: OSError) -> IntegrityError:
    return IntegrityError(
        f"{path} cannot be read ({exc.strerror or exc}). Fix: it must be a readable file; "
        "restore it from a backup (never replace a history with an empty file)."
    )


def _unpickle(data: bytes, name: str, run_id: str) -> dict[str, Any]:
    artifact = pickle.loads(data)
    if not isinstance(artifact, dict) or artifact.get("run_id") != run_id:
        raise IntegrityError(
            f"{name} belongs to another training run. Fix: run `volforecast train`."
        )
    return artifact


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
