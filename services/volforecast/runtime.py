"""The process's share of the machine: how many CPUs it may use, how its OpenMP threads wait,
and how it stops on SIGTERM.

XGBoost and LightGBM run OpenMP thread teams. By default OpenMP threads *spin* while they wait
for work, which is harmless on an idle machine and ruinous on a shared one: each spinning
thread competes with the threads that do the work (one fit went from 10 s to 466 s beside busy
neighbours). Passive waiting gives identical results. The OpenMP runtime reads its policy once,
when the library loads, so ``prefer_passive_waiting`` must run before xgboost or lightgbm is
imported (the CLI calls it first thing; the images also set the variable).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

CGROUP_V2_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def prefer_passive_waiting(environ: dict[str, str] | None = None) -> None:
    """Make idle OpenMP threads sleep instead of spin, unless the user chose otherwise."""
    env = os.environ if environ is None else environ
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _cgroup_quota(cpu_max: Path, quota: Path, period: Path) -> float | None:
    """CPUs granted by the cgroup's CFS quota (``docker run --cpus``), or None if unlimited."""
    with contextlib.suppress(OSError, ValueError):
        limit, length = cpu_max.read_text().split()[:2]
        return None if limit == "max" else int(limit) / int(length)
    with contextlib.suppress(OSError, ValueError):
        q, p = int(quota.read_text()), int(period.read_text())
        return None if q <= 0 or p <= 0 else q / p
    return None


def available_cpus(
    cpu_max: Path = CGROUP_V2_CPU_MAX,
    quota: Path = CGROUP_V1_QUOTA,
    period: Path = CGROUP_V1_PERIOD,
) -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    granted = _cgroup_quota(cpu_max, quota, period)
    if granted is not None:
        cpus = min(cpus, max(1, math.ceil(granted)))
    return max(1, cpus)


def fit_threads(requested: int) -> int:
    """Threads for one model fit: ``requested``, or every CPU the process may use when 0."""
    return requested if requested > 0 else available_cpus()


class Stopped(BaseException):
    """SIGTERM or SIGINT arrived: the run stops where it is (before publishing, nothing changed).

    A BaseException, like KeyboardInterrupt: the signal handler raises it wherever the main
    thread is, and a library's (or our own) ``except Exception`` around that point — yfinance's
    retries, distributed's result loop — must not swallow the stop and carry on."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        # Pieces of work that had finished when the signal came (a universe run publishes each
        # symbol's set as its piece finishes): the CLI names them.
        self.finished: list[str] = []
        super().__init__(signal.Signals(signum).name)


class _StopState:
    """Whether a commit is running, and a stop signal that arrived during it."""

    deferring = 0
    pending: int | None = None


def _on_stop_signal(signum: int, _frame: FrameType | None) -> None:
    if _StopState.deferring:
        _StopState.pending = signum
        return
    raise Stopped(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM (``docker stop``) and SIGINT (Ctrl-C) raise ``Stopped``, so
    both unwind the same way: temporary files removed, locks released, a log line, exit
    128 + signal. The previous handlers come back afterwards (the CLI also runs in-process)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; the caller's stay in force
        return
    previous = {signum: signal.signal(signum, _on_stop_signal) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGTERM and SIGINT back while the block runs (a commit that must finish once begun);
    a signal that arrived meanwhile stops the run when the block ends.

    A flag rather than a signal mask: the kernel may hand a process-directed signal to any
    thread (OpenMP's included), and Python runs the handler in the main thread regardless.
    """
    _StopState.deferring += 1
    try:
        yield
    finally:
        _StopState.deferring -= 1
    if not _StopState.deferring and _StopState.pending is not None:
        signum, _StopState.pending = _StopState.pending, None
        raise Stopped(signum)
