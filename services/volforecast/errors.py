"""Exceptions that end a command, each with the exit code the CLI returns for it.

Every error names the cause and the fix in its message; the CLI prints the message and exits
with ``exit_code``. The codes are documented in the README and in ``models/README.md``.
"""

from __future__ import annotations


class VolforecastError(Exception):
    """Base class: a failure the user can act on."""

    exit_code = 1


def exit_code_of(error: BaseException) -> int:
    """The exit code a failure stands for: its own for ours, 1 for anything else."""
    return error.exit_code if isinstance(error, VolforecastError) else 1


class ConfigError(VolforecastError):
    """Bad command-line option or ``VOLF_`` environment variable."""

    exit_code = 2


class DataError(VolforecastError):
    """Market data missing, malformed or too short."""

    exit_code = 3


class DataFaultError(DataError):
    """The feed's new bars show a fault a model must not be scored on (frozen bars, a jump no
    market makes): reported as a data fault, before any scoring."""

    exit_code = 13


class ArtifactsMissingError(VolforecastError):
    """A file the command needs is not in the models directory (train has not run)."""

    exit_code = 4


class NoNewDataError(VolforecastError):
    """Monitor found no labeled rows after the models' training period."""

    exit_code = 5


class IntegrityError(VolforecastError):
    """A models-directory file is corrupt, tampered with or from another training run."""

    exit_code = 6


class LockTimeoutError(VolforecastError):
    """Another run holds the models directory lock for longer than the configured wait."""

    exit_code = 7


class LockLostError(LockTimeoutError):
    """The lock file was removed or replaced while this run held it: another run may be
    writing, so this one stops before its commit."""


class StorageError(VolforecastError):
    """The models or data directory cannot be written (permissions, full disk)."""

    exit_code = 8


class ClusterError(VolforecastError):
    """The Dask scheduler given with --scheduler cannot be reached."""

    exit_code = 9


# Not an exception: monitor's exit code when --fail-on-retrain is set and retraining is advised.
EXIT_RETRAIN_ADVISED = 10
# Not an exception: the exit code of a universe run in which at least one symbol failed (each
# symbol's own code is in the summary).
EXIT_SOME_SYMBOLS_FAILED = 11
# Not an exception: monitor's and predict's exit code when they ran on cached data because the
# download failed (degraded mode): their results are saved, but the data is not today's.
EXIT_STALE_DATA = 12
