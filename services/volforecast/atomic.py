"""Files that are never seen half-written: every write goes to a temporary file of its own in
the destination's folder, is flushed to disk, and is renamed into place (the rename is atomic
on POSIX, and the folder is fsynced so the new name survives a crash).

The models directory (``volforecast.store``), the download cache (``volforecast.data``) and
every report writer use these; none of them opens a user-facing file for writing itself.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from volforecast.errors import StorageError

TMP_PREFIX = ".tmp-"


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename or a new file in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (``os.write`` may write fewer) and fsync it."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def write_new_file(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist) with ``data``: for files inside a folder that is
    itself renamed into place once complete."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def replace_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file of its own, renamed over ``path``:
    a reader sees the old file or the new one, and concurrent writers never share a temporary
    file. Raises OSError; the temporary file never stays behind."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f"{TMP_PREFIX}{path.name}.")
    tmp = Path(tmp_name)
    try:
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        tmp.chmod(0o644)  # mkstemp's 0600 would hide the file from other users
        tmp.replace(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(path.parent)


def write_outputs(directory: Path, files: dict[str, bytes]) -> list[Path]:
    """Write report files into ``directory`` (created if needed), each with ``replace_file``.
    Returns the written paths; raises StorageError naming the folder and the fix."""
    directory = Path(directory)
    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            replace_file(directory / name, data)
            written.append(directory / name)
    except OSError as exc:
        raise StorageError(
            f"cannot write {directory}: {exc.strerror or exc}. Fix: choose a writable --output "
            "directory with free space."
        ) from exc
    return written


def check_writable(directory: Path) -> None:
    """Raise OSError unless ``directory`` exists or can be created, and a file can be created
    in it: checked before long work whose files would otherwise fail only at the end. Leaves
    the file system as it was (folders it had to create for the probe are removed again)."""
    created = [p for p in (directory, *directory.parents) if not p.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=f"{TMP_PREFIX}probe.")
        os.close(fd)
        Path(probe).unlink()
    finally:
        for folder in created:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()


def check_output(directory: Path, flag: str = "--output") -> None:
    """StorageError naming ``flag`` unless ``directory`` can hold the command's files."""
    try:
        check_writable(directory)
    except OSError as exc:
        raise StorageError(
            f"cannot write into {directory} ({exc.strerror or exc}). Fix: choose a writable "
            f"{flag} directory with free space (nothing was computed)."
        ) from exc


def replace_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` atomically (create a temporary link, rename it over)."""
    if link.is_symlink() and str(link.readlink()) == target:
        return
    tmp = link.with_name(f"{TMP_PREFIX}{link.name}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(target)
    tmp.replace(link)
