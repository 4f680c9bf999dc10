"""The models directory: one directory's lock, commit and undo, recovery and archive, and the
verified reading of its current set (``volforecast.store`` is the only package that reads or
writes the models directory).

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
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import filelock
import pandas as pd
from pydantic import BaseModel

from volforecast import atomic, lineage
from volforecast.config import PRIMARY_SYMBOL, Settings
from volforecast.errors import (
    ArtifactsMissingError,
    ConfigError,
    IntegrityError,
    LockLostError,
    LockTimeoutError,
    VolforecastError,
)
from volforecast.runtime import signals_deferred
from volforecast.schemas import (
    DeploymentRecord,
    DualModelBaseline,
    TrainingRecord,
    ValidationBaseline,
)
from volforecast.store import history, integrity
from volforecast.store.history import storage_error
from volforecast.store.layout import (
    ALIASES,
    ARCHIVE_DIR,
    CURRENT,
    DEPLOYMENT_LOG,
    DUAL_FILE,
    LOCK_FILE,
    MODEL_A_FILE,
    MODEL_B_FILE,
    READ_ATTEMPTS,
    RECORD_FILE,
    SET_FILES,
    SETS_DIR,
    TMP_PREFIX,
    TRAINING_HISTORY,
    VALIDATION_FILE,
    symbol_root,
)

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


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

    def check_serves(self, settings: Settings, *, as_of_after_training: bool = False) -> None:
        """Refuse (ConfigError, exit 2) settings this set cannot answer for: another horizon
        given explicitly, another implied-volatility input than the one it was fitted with,
        and, with ``as_of_after_training``, an ``--as-of`` day inside the data it was fitted
        on (its forecast would come from a model that saw the period it forecasts)."""
        dual = self.dual
        if "horizon" in settings.model_fields_set and settings.horizon != dual.horizon:
            raise ConfigError(
                f"the live {dual.symbol} set {dual.run_id} forecasts {dual.horizon}-day "
                f"volatility, not --horizon {settings.horizon}. Fix: leave --horizon out (the "
                f"set's horizon is used), or train a set for it (`volforecast train "
                f"--symbol {dual.symbol} --horizon {settings.horizon}` into its own "
                "--models-dir)."
            )
        wanted = settings.implied_vol_for(settings.symbol)
        if dual.implied_vol is not None and dual.implied_vol != wanted:
            raise ConfigError(
                f"the live {dual.symbol} set {dual.run_id} was fitted with {dual.implied_vol} "
                f"as its implied-volatility input, and this run would feed it {wanted}. Fix: "
                f"set --implied-vol {dual.symbol}={dual.implied_vol} (VOLF_IMPLIED_VOL), or "
                "retrain with the input you want."
            )
        if as_of_after_training and settings.as_of is not None and settings.as_of < dual.data_end:
            raise ConfigError(
                f"--as-of {settings.as_of} is before the end of the data the live set "
                f"{dual.run_id} was trained on ({dual.data_end}): its forecast of that day "
                "would come from models that saw what followed. Fix: give --as-of on or after "
                f"{dual.data_end}, or promote a set that was live then (`volforecast promote`)."
            )

    def training_rows(self, data: pd.DataFrame) -> pd.DataFrame:
        """Rows of ``data`` in Model A's training period (those the data holds)."""
        a = self.dual.model_a
        return data.loc[
            (data.index >= pd.Timestamp(a.training_date_start))
            & (data.index <= pd.Timestamp(a.training_date_end))
        ]


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


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

    def train_command(self) -> str:
        """The command that trains this directory's set (for messages)."""
        if self.symbol == PRIMARY_SYMBOL:
            return f"volforecast train --models-dir {self.root}"
        # A symbol's directory is <models-dir>/symbols/<SYMBOL>.
        return f"volforecast train --symbol {self.symbol} --models-dir {self.root.parent.parent}"

    def require_directory(self) -> None:
        """Readers never create the directory: a mistyped path is an error, not a new tree."""
        if not self.root.is_dir():
            raise ArtifactsMissingError(
                f"the models directory {self.root} does not exist. Fix: check --models-dir / "
                f"VOLF_MODELS_DIR, or run `{self.train_command()}` first."
            )

    @contextlib.contextmanager
    def lock(self, timeout: float, purpose: str, *, create: bool = False) -> Iterator[None]:
        """Hold the directory's lock (released by the OS if the process dies).

        Only train creates a missing directory (``create``); other writers require it.
        """
        created = [p for p in (self.root, *self.root.parents) if not p.exists()]
        if create:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise storage_error("create", self.root, exc) from exc
        else:
            self.require_directory()
            created = []
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
            raise storage_error("lock", path, exc) from exc
        self._lock_identity = _identity(path)
        try:
            yield
        finally:
            self._lock_identity = None
            lock.release()
            self._remove_if_unused(created)

    def _remove_if_unused(self, created: list[Path]) -> None:
        """Folders this run created and left holding nothing but the lock file (it failed
        before publishing, e.g. a symbol without data) are removed: no trace of a symbol that
        never had a set."""
        if not created or any(p.name != LOCK_FILE for p in self.root.iterdir()):
            return
        with contextlib.suppress(OSError):
            (self.root / LOCK_FILE).unlink()
            for folder in created:  # deepest first
                folder.rmdir()

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
        blobs = integrity.sealed(
            run_id,
            record.timestamp,
            {**files, RECORD_FILE: record.model_dump_json(indent=2).encode()},
            self.signing_key,
            data_digest=record.data_digest,
            library_versions=record.library_versions,
        )
        sets = self.root / SETS_DIR
        tmp = sets / f"{TMP_PREFIX}{run_id}"
        final = sets / run_id
        with signals_deferred():
            try:
                sets.mkdir(parents=True, exist_ok=True)
                tmp.mkdir()
                for name, data in blobs.items():
                    atomic.write_new_file(tmp / name, data)
                atomic.fsync_dir(tmp)
                tmp.rename(final)
                atomic.fsync_dir(sets)
            except BaseException as exc:  # whatever stops the write, no half-written set stays
                shutil.rmtree(tmp, ignore_errors=True)
                if isinstance(exc, OSError):
                    raise storage_error("write the new model set in", sets, exc) from exc
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
            self._log_deployment(
                DeploymentRecord(
                    timestamp=record.timestamp,
                    symbol=self.symbol,
                    run_id=run_id,
                    action="train",
                    previous_run_id=previous,
                )
            )
        except (OSError, VolforecastError) as exc:
            failure = (
                exc
                if isinstance(exc, VolforecastError)
                else storage_error("switch to the new model set in", self.root, exc)
            )
            try:
                self._undo_switch(previous, final)
            except OSError as undo_exc:
                if self.current_run_id() != run_id:
                    raise failure from exc  # the switch never happened: nothing to undo
                cause = exc if isinstance(exc, OSError) else exc.__cause__
                raise storage_error(
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
        atomic.replace_symlink(self.root / CURRENT, f"{SETS_DIR}/{run_id}")
        for alias, target in ALIASES.items():
            atomic.replace_symlink(self.root / alias, f"{CURRENT}/{target}")
        atomic.fsync_dir(self.root)

    def _undo_switch(self, previous: str | None, final: Path) -> None:
        """Put ``current`` back as it was and remove the set that did not become live."""
        if previous is not None:
            atomic.replace_symlink(self.root / CURRENT, f"{SETS_DIR}/{previous}")
        else:
            for name in (CURRENT, *ALIASES):
                with contextlib.suppress(FileNotFoundError):
                    (self.root / name).unlink()
        atomic.fsync_dir(self.root)
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

    def live_data_end(self) -> dt.date | None:
        """The live set's last bar of data, from its dual baseline; None when there is no
        live set or its baseline cannot be read (train then proceeds: it is the fix)."""
        if self.current_run_id() is None:
            return None
        try:
            dual = DualModelBaseline.model_validate_json(
                (self.root / CURRENT / DUAL_FILE).read_bytes()
            )
        except (OSError, ValueError):
            return None
        return dual.data_end or dual.model_b.test_date_end

    def recover(self, keep: int) -> None:
        """Finish what a killed run left (call under the lock, before any change):

        the live set's history line if it is missing (appended from the set's own record), its
        deployment-log line if the switch to it was not logged, the spec names' links, then
        ``_tidy``. Idempotent.
        """
        current = self.current_run_id()
        if current is not None:
            self._check_owner(current)
            self._ensure_history_line(current)
            self._ensure_deployment_line(current)
        if current is not None:
            try:
                self._point_at(current)  # a spec name deleted by hand comes back
            except OSError as exc:
                log.warning("could not restore the links of set %s: %s", current, exc)
        self._tidy(keep)

    def _ensure_history_line(self, current: str) -> None:
        """The live set has a training-history line (appended from its own record if not)."""
        if current not in self._history_run_ids():
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

    # ------------------------------------------------------------------ deployments

    def deployments(self) -> list[DeploymentRecord]:
        """The deployment log: which set went live when, and why (oldest first)."""
        return self.read_history(DEPLOYMENT_LOG, DeploymentRecord)

    def live_deployment(self, run_id: str) -> DeploymentRecord | None:
        """The line that made ``run_id`` live (the last one naming it), if logged."""
        return next((d for d in reversed(self.deployments()) if d.run_id == run_id), None)

    def _log_deployment(self, entry: DeploymentRecord) -> None:
        """Append ``entry``; a failure only warns: the switch is done, and the next train or
        monitor run's ``recover`` logs the live set."""
        try:
            self.append_history(DEPLOYMENT_LOG, entry)
        except VolforecastError as exc:
            log.warning("could not log the deployment of set %s: %s", entry.run_id, exc)

    def _ensure_deployment_line(self, current: str) -> None:
        logged = self.deployments()
        if logged and logged[-1].run_id == current:
            return
        self._log_deployment(
            DeploymentRecord(
                timestamp=dt.datetime.now(dt.UTC).isoformat(),
                symbol=self.symbol,
                run_id=current,
                action="recovered",
                previous_run_id=logged[-1].run_id if logged else None,
                note="live, but the switch to it was not logged (a run stopped right after "
                "switching, or a directory from before the log): recorded on recovery",
            )
        )

    def _archived(self) -> list[Path]:
        archive = self.root / ARCHIVE_DIR
        if not archive.is_dir():
            return []
        return sorted(p for p in archive.iterdir() if p.is_dir() and "_" in p.name)

    def _find_set(self, run_id: str) -> Path:
        """Where set ``run_id`` is kept: ``sets/`` or (newest) ``archive/``."""
        kept = self.root / SETS_DIR / run_id
        if kept.is_dir():
            return kept
        matches = [p for p in self._archived() if p.name.split("_", 1)[1] == run_id]
        if not matches:
            available = [p.name.split("_", 1)[1] for p in self._archived()]
            raise ArtifactsMissingError(
                f"no set {run_id} in {self.root / SETS_DIR} or {self.root / ARCHIVE_DIR} "
                f"(archived: {', '.join(available) or 'none'}). Fix: give one of the archived run "
                "ids (`volforecast report` lists the deployments)."
            )
        return matches[-1]

    def previous_live(self) -> str:
        """The set that was live before the current one: the deployment log's, else the newest
        archived set."""
        current = self.current_run_id()
        logged = self.deployments()
        if logged and logged[-1].run_id == current and logged[-1].previous_run_id:
            return logged[-1].previous_run_id
        archived = [p.name.split("_", 1)[1] for p in self._archived()]
        candidates = [r for r in archived if r != current]
        if not candidates:
            raise ArtifactsMissingError(
                f"no previous set to roll back to in {self.root} (nothing archived). Fix: "
                "train again, or raise --archive-keep so previous sets are kept."
            )
        return candidates[-1]

    def activate(
        self,
        run_id: str,
        action: Literal["rollback", "promote"],
        keep: int,
        note: str | None = None,
    ) -> DeploymentRecord:
        """Make the kept set ``run_id`` live again (``action``: "rollback" or "promote"), under
        the lock the caller holds.

        The set is verified (manifest, signature, symbol, library versions) before anything
        changes; it is moved back from the archive, ``current`` is switched (the commit point),
        the switch is logged and the set that was live is archived. A run killed at any step
        leaves either set live and whole; the next ``recover`` logs and tidies the rest.
        """
        self.recover(keep)
        current = self.current_run_id()
        if run_id == current:
            raise ConfigError(f"set {run_id} is already live in {self.root}: nothing to do.")
        source = self._find_set(run_id)
        fix = f"Fix: choose another run id, or run `{self.train_command()}`."
        integrity.verify_set(run_id, source, self.signing_key, fix)
        record = self._parse(RECORD_FILE, (source / RECORD_FILE).read_bytes(), TrainingRecord)
        if record.symbol != self.symbol:
            raise IntegrityError(f"set {run_id} is {record.symbol}'s, not {self.symbol}'s. {fix}")
        lineage.check_versions(record.library_versions, run_id)
        final = self.root / SETS_DIR / run_id
        with signals_deferred():
            try:
                if source != final:
                    (self.root / SETS_DIR).mkdir(exist_ok=True)
                    source.rename(final)
                    atomic.fsync_dir(self.root / SETS_DIR)
                self.assert_lock_held()
                self._point_at(run_id)
                self._ensure_history_line(run_id)
            except OSError as exc:
                raise storage_error(
                    f"{action} to set {run_id} in",
                    self.root,
                    exc,
                    changed=f"the live set is {self.current_run_id()} (the next train or "
                    "monitor run tidies the rest).",
                ) from exc
            entry = DeploymentRecord(
                timestamp=dt.datetime.now(dt.UTC).isoformat(),
                symbol=self.symbol,
                run_id=run_id,
                action=action,
                previous_run_id=current,
                note=note,
            )
            self._log_deployment(entry)
        self._tidy(keep)
        return entry

    def _check_owner(self, run_id: str) -> None:
        """Refuse to write into a directory whose live set belongs to another symbol (a set
        copied by hand): archiving it under this symbol would mix two symbols' sets."""
        try:
            raw = json.loads((self.root / SETS_DIR / run_id / RECORD_FILE).read_bytes())
        except (OSError, ValueError):
            return  # unreadable: recover's own checks name it
        owner = raw.get("symbol", PRIMARY_SYMBOL) if isinstance(raw, dict) else None
        if owner is not None and owner != self.symbol:
            raise IntegrityError(
                f"the live set {run_id} in {self.root} is {owner}'s, not {self.symbol}'s (a set "
                f"copied into the wrong directory?); refusing to archive it or to write beside "
                f"it. Fix: move {self.root} back under {owner}'s directory, or remove its "
                f"`{CURRENT}` link and train {self.symbol} afresh."
            )

    def _history_run_ids(self) -> set[str]:
        path = self.root / TRAINING_HISTORY
        try:
            return history.recorded_run_ids(path.read_bytes())
        except FileNotFoundError:
            return set()
        except OSError as exc:
            raise history.unreadable_history(path, exc) from exc

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
                f"no model set in {self.root} (no `{CURRENT}` link). Fix: run "
                f"`{self.train_command()}` first."
            )
        set_dir = self.root / SETS_DIR / run_id
        try:
            target = (self.root / CURRENT).resolve()
        except (RuntimeError, OSError) as exc:  # RuntimeError: a symlink loop
            raise IntegrityError(
                f"{self.root / CURRENT} cannot be followed ({exc}): the link is a loop or "
                "damaged. Fix: point it at a set with `volforecast promote RUN_ID`, or run "
                "`volforecast train` to write a fresh set."
            ) from exc
        if not target.is_relative_to(self.root.resolve()):
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
        fix = f"Fix: run `volforecast train`, or restore the whole set from {self.root / ARCHIVE_DIR}."
        return integrity.verify_set(run_id, set_dir, self.signing_key, fix)

    def _parse(self, name: str, data: bytes, model: type[M]) -> M:
        try:
            return model.model_validate_json(data)
        except ValueError as exc:
            raise IntegrityError(
                f"{name} of the current set is invalid ({integrity.first_line(exc)}). "
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
            and validation.model_sha256
            == dual.model_a.sha256
            == integrity.sha256(blobs[MODEL_A_FILE])
            and dual.model_b.sha256 == integrity.sha256(blobs[MODEL_B_FILE])
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
        lineage.check_versions(record.library_versions, run_id)
        model_a = integrity.unpickle(blobs[MODEL_A_FILE], MODEL_A_FILE, run_id)
        model_b = integrity.unpickle(blobs[MODEL_B_FILE], MODEL_B_FILE, run_id)
        return CurrentModels(
            validation=validation, dual=dual, model_a=model_a, model_b=model_b, record=record
        )

    # ------------------------------------------------------------------ histories

    def append_history(self, name: str, record: BaseModel) -> None:
        """Append ``record`` to the history ``name`` (``history.append_record``)."""
        history.append_record(self.root / name, record)

    def read_history(self, name: str, model: type[M]) -> list[M]:
        """Every valid record of this symbol in the history ``name`` (``history.read_records``);
        lines of another symbol (a history copied from another directory) are skipped with a
        warning."""
        records = history.read_records(self.root / name, model)
        mine = [r for r in records if getattr(r, "symbol", self.symbol) == self.symbol]
        if len(mine) < len(records):
            log.warning(
                "%s: skipping %d line(s) of another symbol than %s (copied from another "
                "symbol's directory?); the file is left as it is",
                self.root / name,
                len(records) - len(mine),
                self.symbol,
            )
        return mine

    def training_history(self, live: TrainingRecord | None = None) -> list[TrainingRecord]:
        """The training history as readers should see it: the file's records, plus the live
        set's own record (``CurrentModels.record``) when its run stopped between the commit and
        the history append (the next writer appends it; until then it is counted here)."""
        records = self.read_history(TRAINING_HISTORY, TrainingRecord)
        if live is not None and live.run_id not in {r.run_id for r in records}:
            records.append(live)
        return records


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
