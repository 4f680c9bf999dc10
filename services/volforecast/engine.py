"""The compute engine: independent, pure pieces of work run as Dask tasks.

Commands cut their work into ``Piece``\\ s (a symbol's train; one model on one refit block of
one symbol and horizon) and hand them to an ``Engine``. With a Dask client the pieces run on
its workers: an embedded ``LocalCluster`` by default (one single-threaded worker process per
CPU this process may use, or ``--workers N``), or an existing cluster (``--scheduler``).
Dask does the scheduling, the data transfer and the retries of pieces whose worker died;
nothing here re-implements them. Without a client (library calls, most tests) the same pieces
run in this process, one after another.

Every piece is pure and seeded, and every model fit inside a piece uses a fixed number of
threads (``--threads``, default 1; ``0`` also means 1 on Dask: the workers are the
parallelism), so the results do not depend on the number of workers or on which worker ran
what.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from volforecast.config import Settings
from volforecast.errors import ClusterError
from volforecast.runtime import Stopped, available_cpus

if TYPE_CHECKING:
    from distributed import Client

T = TypeVar("T")

log = logging.getLogger(__name__)

# How long a client waits for an existing scheduler before giving up.
CONNECT_TIMEOUT_SECONDS = 30
BAR_WIDTH = 30


@dataclass(frozen=True)
class Piece:
    """One independent unit of work: ``func(*args)``; ``label`` names it in progress lines,
    ``kind`` groups it with pieces of the same cost (one model's refits, one command)."""

    label: str
    func: Callable[..., Any]
    args: tuple[Any, ...]
    kind: str = "piece"


@dataclass(frozen=True)
class Outcome:
    """What a piece gave: its ``value``, or the ``error`` it raised."""

    label: str
    value: Any = None
    error: BaseException | None = None


@dataclass(frozen=True)
class _Failed:
    """A piece's error, returned as its value: Dask then logs no "Compute Failed" traceback
    on the worker for a failure that the command reports in one plain line anyway."""

    error: BaseException


def _guarded(func: Callable[..., Any], *args: Any) -> Any:
    try:
        return func(*args)
    except Exception as exc:  # reported per piece by the command, with its cause and fix
        return _Failed(exc)


class Engine:
    """Runs pieces on a Dask client, or in this process when ``client`` is None."""

    def __init__(self, client: Client | None = None) -> None:
        self.client = client

    @property
    def workers(self) -> int:
        if self.client is None:
            return 1
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def task_settings(self, settings: Settings) -> Settings:
        """``settings`` as pieces should see them: on Dask each model fit uses --threads, else
        one thread (the workers are the parallelism; more would oversubscribe the CPUs); in
        this process, unchanged."""
        if self.client is None:
            return settings
        return settings.model_copy(update={"threads": settings.threads or 1})

    def share(self, value: Any) -> Any:
        """``value`` as an argument many pieces use: sent to the cluster once, not per piece."""
        if self.client is None:
            return value
        return self.client.scatter(value, hash=False)

    def run(
        self, pieces: Sequence[Piece], what: str, progress: Callable[[str], None]
    ) -> list[Outcome]:
        """Run every piece; outcomes in the order of ``pieces``. A failing piece does not stop
        the others: its outcome carries the error."""
        total = len(pieces)
        ticker = _Ticker(what, total, progress)
        if self.client is None:
            outcomes: list[Outcome] = []
            for piece in pieces:
                try:
                    outcome = Outcome(piece.label, value=piece.func(*piece.args))
                except Stopped as stop:
                    stop.finished = [o.label for o in outcomes if o.error is None]
                    raise
                except Exception as exc:  # reported per piece, like a failed Dask task
                    outcome = Outcome(piece.label, error=exc)
                ticker.done(outcome)
                outcomes.append(outcome)
            ticker.close()
            return outcomes
        from distributed import as_completed

        # The key's prefix (before the first "-<hex>") is what Dask groups tasks by: it learns
        # their duration per prefix and sums every worker's load over its prefixes on each
        # transition. One prefix per kind, not per piece: with the label in the key, each of
        # 11,220 pieces was its own prefix and the scheduler spent over half a core on that sum.
        run = uuid.uuid4().hex[:8]
        futures = [
            self.client.submit(_guarded, p.func, *p.args, key=f"{p.kind}-{run}-{i}", pure=False)
            for i, p in enumerate(pieces)
        ]
        position = {f.key: i for i, f in enumerate(futures)}
        results: list[Outcome | None] = [None] * total
        try:
            self._collect(as_completed(futures), position, pieces, results, ticker)
        except Stopped as stop:
            stop.finished = [r.label for r in results if r is not None and r.error is None]
            _quiet_teardown()
            # Cancelled first, the pending pieces let the cluster close at once: otherwise the
            # scheduler keeps handing them out while the client waits to close (a minute of
            # tracebacks for a large run).
            with contextlib.suppress(Exception):
                self.client.cancel([f for f in futures if not f.done()], force=True)
            raise
        # distributed's CommClosedError is an OSError; a lost scheduler cancels every pending
        # future (FutureCancelledError, a concurrent.futures.CancelledError).
        except (OSError, TimeoutError, concurrent.futures.CancelledError) as exc:
            raise ClusterError(
                f"lost the connection to the Dask cluster after {ticker.finished} of {total} "
                f"pieces ({exc}). Fix: check the scheduler and its workers, then run again "
                "(finished model sets are committed; nothing is half-written)."
            ) from exc
        ticker.close()
        return [r for r in results if r is not None]

    @staticmethod
    def _collect(
        finished: Any,
        position: dict[Any, int],
        pieces: Sequence[Piece],
        results: list[Outcome | None],
        ticker: _Ticker,
    ) -> None:
        for future in finished:
            i = position[future.key]
            if future.status == "error":
                error = future.exception()
                outcome = Outcome(
                    pieces[i].label,
                    error=error if isinstance(error, BaseException) else RuntimeError(str(error)),
                )
            else:
                value = future.result()
                outcome = (
                    Outcome(pieces[i].label, error=value.error)
                    if isinstance(value, _Failed)
                    else Outcome(pieces[i].label, value=value)
                )
            future.release()
            results[i] = outcome
            ticker.done(outcome)


class _Ticker:
    """Progress of a run: a bar redrawn in place on a terminal, one plain line per finished
    piece otherwise (cron, docker logs)."""

    def __init__(self, what: str, total: int, progress: Callable[[str], None]) -> None:
        self.what = what
        self.total = total
        self.progress = progress
        self.finished = 0
        self.failed = 0
        self.started = time.monotonic()
        self.bar = sys.stderr.isatty()

    def done(self, outcome: Outcome) -> None:
        self.finished += 1
        self.failed += outcome.error is not None
        state = "FAILED: " + _reason(outcome.error) if outcome.error is not None else "done"
        if not self.bar:
            self.progress(f"{self.what} {self.finished}/{self.total}: {outcome.label} {state}")
            return
        filled = BAR_WIDTH * self.finished // max(self.total, 1)
        line = (
            f"\r{self.what} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
            f"{self.finished}/{self.total} {time.monotonic() - self.started:6.0f}s "
            f"{outcome.label[:40]:<40}"
        )
        sys.stderr.write(line)
        sys.stderr.flush()
        if outcome.error is not None:  # failures stay on screen, each on its own line
            sys.stderr.write("\n")
            self.progress(f"{outcome.label} FAILED: {_reason(outcome.error)}")

    def close(self) -> None:
        if self.bar and self.total:
            sys.stderr.write("\n")
        self.progress(
            f"{self.what}: {self.finished - self.failed} of {self.total} pieces done"
            + (f", {self.failed} failed" if self.failed else "")
            + f" in {time.monotonic() - self.started:.1f}s"
        )


def _reason(error: BaseException | None) -> str:
    return str(error).split("\n", 1)[0] if error is not None else ""


@contextlib.contextmanager
def open_engine(
    settings: Settings, progress: Callable[[str], None], pieces: int | None = None
) -> Iterator[Engine]:
    """A Dask engine for one command: a client of ``--scheduler`` when given, else of an
    embedded local cluster that is shut down when the block ends, with ``--workers`` worker
    processes (0: one per CPU) but never more than the CPUs this process may use, nor than
    ``pieces`` when the command knows how many pieces it has."""
    from distributed import Client, LocalCluster

    # distributed sets its loggers to INFO when imported; its chatter is not our progress.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if settings.dask_scheduler:
        try:
            client = Client(settings.dask_scheduler, timeout=CONNECT_TIMEOUT_SECONDS)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {settings.dask_scheduler} within "
                f"{CONNECT_TIMEOUT_SECONDS}s ({exc}). Fix: start it (`docker compose --profile "
                "cluster up -d`) or unset --scheduler / VOLF_DASK_SCHEDULER to use a local "
                "cluster."
            ) from exc
        with client:
            engine = Engine(client)
            progress(f"Dask cluster {settings.dask_scheduler}: {engine.workers} workers")
            yield engine
        return
    workers = local_workers(settings.workers, pieces, progress)
    # One single-threaded process per worker: model fits hold the GIL in places, and a piece
    # that crashes a process takes only its own worker down (Dask restarts it).
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        # Its HTTP server (health, metrics; the dashboard needs bokeh) on a free port: a fixed
        # one would collide with another cluster on the host.
        dashboard_address=":0",
        # A piece's failure comes back as its value (``_guarded``) and is reported in one line;
        # what the workers log besides is cluster housekeeping, and on a stop only noise.
        silence_logs=logging.CRITICAL,
    )
    with cluster, Client(cluster) as client:
        progress(f"local Dask cluster: {workers} worker process(es), 1 thread each")
        try:
            yield Engine(client)
        except BaseException:
            _quiet_teardown()
            raise


def _quiet_teardown() -> None:
    """Stopping or failing: what the cluster logs while it is torn down under running pieces
    (closed comms, lost tasks, cancelled reports) is not news, and the README promises no
    tracebacks."""
    quiet = ("distributed", "tornado", "asyncio")
    # Each of their loggers: distributed gives its children levels of their own, and logs a
    # closed comm at CRITICAL.
    for name in [*quiet, *logging.Logger.manager.loggerDict]:
        if name.split(".", 1)[0] in quiet:
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def local_workers(requested: int, pieces: int | None, progress: Callable[[str], None]) -> int:
    """Worker processes of a local cluster: ``requested`` (0: every CPU), capped by the CPUs
    this process may use (more would only share them, each with its own memory) and by
    ``pieces`` (an idle worker costs a process)."""
    cpus = available_cpus()
    workers = min(requested or cpus, cpus)
    if pieces is not None:
        workers = min(workers, max(pieces, 1))
    if requested and workers < requested:
        progress(
            f"--workers {requested} capped at {workers} ({cpus} CPU(s) available"
            + (f", {pieces} piece(s) of work" if pieces is not None else "")
            + ")"
        )
    return workers


def run_on_engine(settings: Settings, progress: Callable[[str], None], run: Callable[..., T]) -> T:
    """``run(settings, progress, engine=...)`` on the engine of ``open_engine``, closed after."""
    with open_engine(settings, progress) as engine:
        return run(settings, progress, engine=engine)
