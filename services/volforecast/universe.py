"""Universe runs: train, monitor or predict over a list of symbols in one run.

Each symbol is one piece of work for the engine (a Dask task for train and monitor; predict is
cheap and runs in this process). Every symbol gets its own complete models directory, lock and
histories (``ModelsDirectory.for_settings``), so symbols never wait for each other. A symbol
that fails is reported with its cause and exit code; the others complete, and the command's
exit code says that something failed (``EXIT_SOME_SYMBOLS_FAILED``).
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from volforecast.config import Settings
from volforecast.engine import Engine, Outcome, Piece, open_engine
from volforecast.errors import (
    EXIT_RETRAIN_ADVISED,
    EXIT_SOME_SYMBOLS_FAILED,
    EXIT_STALE_DATA,
    exit_code_of,
)
from volforecast.progress import Progress
from volforecast.schemas import UniverseRow, UniverseSummary
from volforecast.summaries import rendered

log = logging.getLogger(__name__)

Command = Literal["train", "monitor", "predict"]


def _worker_logging(level: str) -> None:
    """Log lines of a piece on a Dask worker process go to its stderr, which a local cluster
    shares with the command's terminal (and a remote worker with its own log)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=level,
            format="%(asctime)s %(levelname)s %(message)s",
            datefmt="%Y-%m-%dT%H:%M:%S%z",
            stream=sys.stderr,
        )
    logging.getLogger("volforecast").setLevel(level)


def _say(symbol: str) -> Callable[[str], None]:
    def say(message: str) -> None:
        log.info("%s: %s", symbol, message)

    return say


def train_symbol(settings: Settings, progress: Progress | None = None) -> BaseModel:
    """One symbol's train run (a Dask task when ``progress`` is None): its training record."""
    from volforecast.training import run_train  # each command loads only what it runs

    if progress is None:
        _worker_logging(settings.log_level)
    return run_train(settings, progress or _say(settings.symbol)).record


def monitor_symbol(settings: Settings, progress: Progress | None = None) -> BaseModel:
    """One symbol's monitor run (a Dask task when ``progress`` is None): its history line."""
    from volforecast.monitoring import run_monitor  # scipy.stats, for feature drift

    if progress is None:
        _worker_logging(settings.log_level)
    return run_monitor(settings, progress or _say(settings.symbol)).record


def predict_symbol(
    settings: Settings, requested: Literal["a", "b"] | None, progress: Progress | None = None
) -> BaseModel:
    """One symbol's forecast."""
    from volforecast.forecasting import run_predict

    return run_predict(settings, progress or _say(settings.symbol), requested=requested)


SYMBOL_RUNS: dict[str, Callable[[Settings, Progress | None], BaseModel]] = {
    "train": train_symbol,
    "monitor": monitor_symbol,
}


@dataclass(frozen=True)
class UniverseResult:
    summary: UniverseSummary
    records: dict[str, Any]

    @property
    def failed(self) -> list[UniverseRow]:
        return [row for row in self.summary.symbols if row.status == "failed"]


def run_universe(
    command: Command,
    settings: Settings,
    symbols: Sequence[str],
    engine: Engine,
    progress: Callable[[str], None],
    *,
    requested: Literal["a", "b"] | None = None,
    now: dt.datetime | None = None,
) -> UniverseResult:
    """``command`` once per symbol on ``engine``; one row per symbol in the summary."""
    now = now or dt.datetime.now(dt.UTC)
    pieces = []
    for symbol in symbols:
        one = engine.task_settings(settings.for_symbol(symbol))
        if command == "train":
            pieces.append(Piece(f"train {symbol}", train_symbol, (one,), "train"))
        elif command == "monitor":
            pieces.append(Piece(f"monitor {symbol}", monitor_symbol, (one,), "monitor"))
        else:
            pieces.append(Piece(f"predict {symbol}", predict_symbol, (one, requested), "predict"))
    outcomes = engine.run(pieces, command, progress)
    rows = [_row(symbol, outcome) for symbol, outcome in zip(symbols, outcomes, strict=True)]
    summary = UniverseSummary(command=command, created_at=now.isoformat(), symbols=rows)
    records = {
        symbol: outcome.value
        for symbol, outcome in zip(symbols, outcomes, strict=True)
        if outcome.error is None
    }
    return UniverseResult(summary, records)


def _row(symbol: str, outcome: Outcome) -> UniverseRow:
    if outcome.error is not None:
        return UniverseRow(
            symbol=symbol,
            status="failed",
            exit_code=exit_code_of(outcome.error),
            error=str(outcome.error),
        )
    value = outcome.value
    return UniverseRow(
        symbol=symbol,
        status="ok",
        exit_code=0,
        result=value.model_dump(mode="json") if isinstance(value, BaseModel) else value,
    )


def universe_table(result: UniverseResult) -> str:
    """The summary for people: one line per symbol, failures with their cause."""
    command = result.summary.command
    lines = [f"{command} over {len(result.summary.symbols)} symbols:"]
    header = {
        "train": f"{'symbol':<8}{'status':<8}{'run id':<24}{'A valid. RMSE':>14}"
        f"{'B test RMSE':>13}{'data to':>12}",
        "monitor": f"{'symbol':<8}{'status':<8}{'drift %':>9}  {'level':<8}{'B wins %':>9}  "
        f"{'recommendation':<22}{'retraining':<12}",
        "predict": f"{'symbol':<8}{'status':<8}{'forecast (ann. %)':>18}  {'model':<6}"
        f"{'features of':<12}{'horizon':>8}",
    }[command]
    lines.append(header)
    for row in result.summary.symbols:
        if row.status == "failed":
            lines.append(f"{row.symbol:<8}{'FAILED':<8}exit {row.exit_code}: {row.error}")
            continue
        r = row.result or {}
        if command == "train":
            lines.append(
                f"{row.symbol:<8}{'ok':<8}{r['run_id']:<24}"
                f"{r['model_a']['validation_rmse']:>14.6f}{r['model_b']['test_rmse']:>13.6f}"
                f"{r['data_end']:>12}"
            )
        elif command == "monitor":
            lines.append(
                f"{row.symbol:<8}{'ok':<8}{r['drift']['model_a_drift_pct']:>9.2f}  "
                f"{r['drift']['level']:<8}{r['comparison']['model_b_win_rate']:>9.0f}  "
                f"{r['recommendation']:<22}{r['retraining']['action']:<12}"
            )
        else:
            lines.append(
                f"{row.symbol:<8}{'ok':<8}{r['forecast_annualized_pct']:>18.2f}  "
                f"{r['model']:<6}{r['features_date']:<12}{r['horizon']:>8}"
            )
    failed = result.failed
    lines.append(
        f"{len(result.summary.symbols) - len(failed)} succeeded, {len(failed)} failed"
        + (f" ({', '.join(r.symbol for r in failed)})" if failed else "")
    )
    return "\n".join(lines)


def run_command(
    command: Command,
    settings: Settings,
    output_format: str,
    progress: Callable[[str], None],
    table: Callable[[Any], str],
    requested: Literal["a", "b"] | None = None,
) -> int:
    """``volforecast train|monitor|predict``: one symbol (``table`` renders its record) or, with
    ``--symbols``/``--universe-file``, every symbol on the engine (``SYMBOL_RUNS``); the
    summary on stdout, the metrics of what succeeded, and the exit code: 11 if any symbol
    failed, 10 for monitor with --fail-on-retrain when retraining is advised, 12 when a run
    used cached data after a failed download."""
    started = time.monotonic()
    publishing = command != "predict" and bool(settings.metrics_file or settings.pushgateway_url)
    if publishing:  # prometheus-client is imported only by runs that publish
        from volforecast.telemetry import check_metrics_file, publish_runs

        check_metrics_file(settings)
    symbols = settings.universe()
    failed: list[UniverseRow] = []
    if symbols is None:
        record = (
            predict_symbol(settings, requested, progress)
            if command == "predict"
            else SYMBOL_RUNS[command](settings, progress)
        )
        print(rendered(record, output_format, table))
        records: dict[str, Any] = {settings.symbol: record}
    else:
        progress(f"{command} {len(symbols)} symbols: {', '.join(symbols)}")
        if command == "predict":  # a forecast takes a second: not worth starting a cluster
            result = run_universe(
                command, settings, symbols, Engine(), progress, requested=requested
            )
        else:
            with open_engine(settings, progress, pieces=len(symbols)) as engine:
                result = run_universe(command, settings, symbols, engine, progress)
        print(
            universe_table(result)
            if output_format == "table"
            else result.summary.model_dump_json(indent=2)
        )
        records, failed = result.records, result.failed
        for row in failed:  # before anything else can go wrong
            log.error("%s %s failed (exit %d): %s", command, row.symbol, row.exit_code, row.error)
    if publishing:
        publish_runs(settings, command, records, started)
    if failed:
        log.error(
            "%d of %d symbols failed; exiting %d",
            len(failed),
            len(failed) + len(records),
            EXIT_SOME_SYMBOLS_FAILED,
        )
        return EXIT_SOME_SYMBOLS_FAILED
    advised = [
        s for s, r in records.items() if getattr(r, "retraining", None) is not None
        and r.retraining.action == "retrain_now"
    ]  # fmt: skip
    if command == "monitor" and settings.fail_on_retrain and advised:
        log.warning(
            "retraining is advised for %s; exiting %d (--fail-on-retrain)",
            ", ".join(advised),
            EXIT_RETRAIN_ADVISED,
        )
        return EXIT_RETRAIN_ADVISED
    # train on a cache is an explicit choice (--allow-stale-data): its record says so.
    stale = [s for s, r in records.items() if getattr(r, "data_stale", False)]
    if stale and command != "train":
        log.warning(
            "%s: %s on cached data (the download failed); exiting %d",
            ", ".join(stale),
            "forecast" if command == "predict" else "ran",
            EXIT_STALE_DATA,
        )
        return EXIT_STALE_DATA
    return 0
