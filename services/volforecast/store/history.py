"""The append-only histories (``training_history.jsonl``, ``monitoring_history.jsonl``): one
record per line, appended with one write and never rewritten; readers skip a torn or invalid
line with a warning and never repair it."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from volforecast.errors import IntegrityError, StorageError

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


def storage_error(
    action: str, path: Path, exc: OSError, changed: str | None = None
) -> StorageError:
    """A write into the models directory failed: what, where, the fix, and what changed."""
    reason = exc.strerror or str(exc)
    return StorageError(
        f"cannot {action} {path}: {reason}. Fix: make the models directory writable "
        "(--models-dir / VOLF_MODELS_DIR) and check free disk space; "
        + (changed or "nothing was changed.")
    )


def unreadable_history(path: Path, exc: OSError) -> IntegrityError:
    return IntegrityError(
        f"{path} cannot be read ({exc.strerror or exc}). Fix: it must be a readable file; "
        "restore it from a backup (never replace a history with an empty file)."
    )


def append_record(path: Path, record: BaseModel) -> None:
    """Append one record as one line, with one write. Never rewrites the file: a write
    that fails part-way is cut back to the old size, so no torn fragment stays."""
    line = (record.model_dump_json() + "\n").encode()
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise storage_error("append to", path, exc) from exc
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
        raise storage_error("append to", path, exc) from exc
    finally:
        os.close(fd)


def read_records(path: Path, model: type[M]) -> list[M]:
    """All valid records; a torn or invalid line is skipped with a warning, never repaired."""
    try:
        raw_lines = path.read_bytes().split(b"\n")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise unreadable_history(path, exc) from exc
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


def recorded_run_ids(raw: bytes) -> set[str]:
    """Run ids named by history lines, read leniently (a line that fails the schema still
    proves its set went live; only unparsable lines are ignored)."""
    ids = set()
    for line in raw.split(b"\n"):
        with contextlib.suppress(ValueError, RecursionError):
            value = json.loads(line)
            if isinstance(value, dict) and isinstance(value.get("run_id"), str):
                ids.add(value["run_id"])
    return ids
