"""The ``volforecast`` command: parses flags, builds Settings once, runs a subcommand, maps
errors to exit codes. All work lives in the library modules."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from volforecast import __version__
from volforecast.config import SETTING_FLAGS, Settings, build_settings
from volforecast.errors import EXIT_RETRAIN_ADVISED, EXIT_SOME_SYMBOLS_FAILED, VolforecastError
from volforecast.runtime import Stopped, prefer_passive_waiting, stop_on_signals

log = logging.getLogger("volforecast")

# The flags of every command that reads data and the models directory.
COMMON_FLAGS = [
    "--source",
    "--data-dir",
    "--models-dir",
    "--symbol",
    "--implied-vol",
    "--start",
    "--as-of",
    "--horizon",
    "--seed",
    "--threads",
    "--lock-timeout",
    "--log-level",
]
# A universe run: one command over many symbols, on Dask.
UNIVERSE_FLAGS = ["--symbols", "--universe-file", "--workers", "--scheduler"]


def _add_settings(parser: argparse.ArgumentParser, flags: Sequence[str]) -> list[str]:
    """Add ``flags`` (help from the Settings field) and return the fields they set."""
    fields = []
    for flag in flags:
        field, extra = SETTING_FLAGS[flag]
        info = Settings.model_fields[field]
        env = "VOLF_" + field.upper()
        parser.add_argument(
            flag,
            dest=field,
            default=None,
            help=f"{info.description} [env {env}; default {info.default}]",
            **extra,
        )
        fields.append(field)
    return fields


def _setup_logging(level: str) -> None:
    # Cron and docker capture stderr without a terminal: full timestamps there, short ones on a TTY.
    fmt = "%(asctime)s %(levelname)s %(message)s"
    datefmt = "%H:%M:%S" if sys.stderr.isatty() else "%Y-%m-%dT%H:%M:%S%z"
    logging.basicConfig(level=level, format=fmt, datefmt=datefmt, stream=sys.stderr, force=True)
    for noisy in (
        "yfinance",
        "peewee",
        "urllib3",
        "matplotlib",
        "distributed",
        "tornado",
        "asyncio",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _progress() -> Callable[[str], None]:
    started = time.monotonic()

    def say(message: str) -> None:
        log.info("[%5.1fs] %s", time.monotonic() - started, message)

    return say


def _cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    from volforecast.commands.train import run_train
    from volforecast.reporting import training_summary

    started = time.monotonic()
    symbols = settings.universe()
    if symbols is not None:
        return _universe(settings, args, "train", symbols, started)
    result = run_train(settings, _progress())
    print(
        training_summary(result.record)
        if args.format == "table"
        else result.record.model_dump_json(indent=2)
    )
    _publish(settings, "train", {settings.symbol: result.record}, started)
    return 0


def _cmd_monitor(settings: Settings, args: argparse.Namespace) -> int:
    from volforecast.commands.monitor import run_monitor
    from volforecast.reporting import monitoring_summary

    started = time.monotonic()
    symbols = settings.universe()
    if symbols is not None:
        return _universe(settings, args, "monitor", symbols, started)
    result = run_monitor(settings, _progress())
    print(
        monitoring_summary(result.record)
        if args.format == "table"
        else result.record.model_dump_json(indent=2)
    )
    _publish(settings, "monitor", {settings.symbol: result.record}, started)
    if settings.fail_on_retrain and result.record.retraining.action == "retrain_now":
        log.warning("retraining is advised; exiting %d (--fail-on-retrain)", EXIT_RETRAIN_ADVISED)
        return EXIT_RETRAIN_ADVISED
    return 0


def _universe(
    settings: Settings,
    args: argparse.Namespace,
    command: Literal["train", "monitor", "predict"],
    symbols: list[str],
    started: float,
) -> int:
    """train, monitor or predict over ``symbols``: one summary, exit 11 if any symbol failed."""
    from volforecast.commands.universe import run_universe, universe_table
    from volforecast.engine import Engine, open_engine

    say = _progress()
    say(f"{command} {len(symbols)} symbols: {', '.join(symbols)}")
    if command == "predict":  # a forecast takes a second: not worth starting a cluster
        result = run_universe(command, settings, symbols, Engine(), say, requested=args.model)
    else:
        with open_engine(settings, say) as engine:
            result = run_universe(command, settings, symbols, engine, say)
    print(
        universe_table(result)
        if args.format == "table"
        else result.summary.model_dump_json(indent=2)
    )
    if command != "predict":
        _publish(settings, command, result.records, started)
    if result.failed:
        for row in result.failed:
            log.error("%s %s failed (exit %d): %s", command, row.symbol, row.exit_code, row.error)
        log.error(
            "%d of %d symbols failed; exiting %d",
            len(result.failed),
            len(symbols),
            EXIT_SOME_SYMBOLS_FAILED,
        )
        return EXIT_SOME_SYMBOLS_FAILED
    advised = [
        s for s, r in result.records.items() if getattr(r, "retraining", None) is not None
        and r.retraining.action == "retrain_now"
    ]  # fmt: skip
    if command == "monitor" and settings.fail_on_retrain and advised:
        log.warning(
            "retraining is advised for %s; exiting %d (--fail-on-retrain)",
            ", ".join(advised),
            EXIT_RETRAIN_ADVISED,
        )
        return EXIT_RETRAIN_ADVISED
    return 0


def _publish(settings: Settings, command: str, records: dict[str, Any], started: float) -> None:
    """Metrics of the successful runs (one time series per symbol), when a metrics file or a
    Pushgateway is configured."""
    if settings.metrics_file is None and not settings.pushgateway_url:
        return
    from volforecast.telemetry import monitor_metrics, publish, registry_of, train_metrics

    metrics = train_metrics if command == "train" else monitor_metrics
    duration, finished = time.monotonic() - started, time.time()
    registry = registry_of({s: metrics(r, duration, finished) for s, r in records.items()})
    publish(registry, f"volforecast_{command}", settings.metrics_file, settings.pushgateway_url)


def _cmd_evaluate(settings: Settings, _args: argparse.Namespace) -> int:
    from volforecast.commands.evaluate import (
        markdown_table,
        run_evaluate,
        run_evaluate_universe,
        summary_markdown,
    )
    from volforecast.engine import open_engine

    say = _progress()
    symbols = settings.universe()
    with open_engine(settings, say) as engine:
        if symbols is None and settings.horizons is None:
            report, paths = run_evaluate(settings, say, engine=engine)
            print(markdown_table(report))
            print("wrote " + ", ".join(str(p) for p in paths))
            return 0
        summary, paths = run_evaluate_universe(
            settings,
            symbols or [settings.symbol],
            settings.horizons or [settings.horizon],
            say,
            engine=engine,
        )
    print(summary_markdown(summary))
    print("wrote " + ", ".join(str(p) for p in paths))
    failed = [r for r in summary.results if r.status == "failed"]
    if failed:
        log.error(
            "%d of %d benchmarks failed (%s); exiting %d",
            len(failed),
            len(summary.results),
            ", ".join(f"{r.symbol} h={r.horizon}: exit {r.exit_code}" for r in failed),
            EXIT_SOME_SYMBOLS_FAILED,
        )
        return EXIT_SOME_SYMBOLS_FAILED
    return 0


def _on_engine(
    settings: Settings, run: Callable[..., tuple[Any, list[Path]]], render: Callable[[Any], str]
) -> int:
    """A command that runs on a Dask engine and prints its report and the files it wrote."""
    from volforecast.engine import open_engine

    say = _progress()
    with open_engine(settings, say) as engine:
        result, paths = run(settings, say, engine=engine)
    print(render(result))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _cmd_replay(settings: Settings, _args: argparse.Namespace) -> int:
    from volforecast.commands.replay import replay_markdown, run_replay

    return _on_engine(settings, run_replay, replay_markdown)


def _cmd_select(settings: Settings, _args: argparse.Namespace) -> int:
    from volforecast.commands.select import run_select, selection_markdown

    return _on_engine(settings, run_select, selection_markdown)


def _cmd_predict(settings: Settings, args: argparse.Namespace) -> int:
    from volforecast.commands.predict import forecast_table, run_predict

    symbols = settings.universe()
    if symbols is not None:
        return _universe(settings, args, "predict", symbols, time.monotonic())
    forecast = run_predict(settings, _progress(), requested=args.model)
    print(
        forecast_table(forecast) if args.format == "table" else forecast.model_dump_json(indent=2)
    )
    return 0


def _cmd_report(settings: Settings, _args: argparse.Namespace) -> int:
    from volforecast.commands.report import run_report

    result = run_report(settings, _progress())
    print(result.text)
    print("wrote " + ", ".join(str(p) for p in result.paths))
    return 0


def _add_format(parser: argparse.ArgumentParser, default: str = "table") -> None:
    parser.add_argument(
        "--format",
        choices=["json", "table"],
        default=default,
        help=f"output: a table for people or JSON for programs [{default}]",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="volforecast",
        description="Forecast SPY realized volatility and keep the models honest.",
    )
    parser.add_argument("--version", action="version", version=f"volforecast {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="fit Model A (90%%) and Model B (all-30) and write the model set",
        description="Download or read SPY and VIX, build the features, fit both stacked "
        "ensembles and write them with their baselines to the models directory.",
    )
    train.set_defaults(
        handler=_cmd_train,
        settings_fields=_add_settings(
            train,
            [*COMMON_FLAGS, *UNIVERSE_FLAGS, "--archive-keep", "--metrics-file", "--candidate"],
        ),
    )
    _add_format(train)

    monitor = sub.add_parser(
        "monitor",
        help="score both models on new data, measure drift, recommend a model",
        description="Score Model A and Model B on the labeled rows that arrived after training, "
        "compare them over several windows, measure drift against the validation baseline and "
        "append the verdict to monitoring_history.jsonl.",
    )
    monitor.set_defaults(
        handler=_cmd_monitor,
        settings_fields=_add_settings(
            monitor, [*COMMON_FLAGS, *UNIVERSE_FLAGS, "--fail-on-retrain", "--metrics-file"]
        ),
    )
    _add_format(monitor)

    predict = sub.add_parser(
        "predict",
        help="forecast the next horizon's volatility from the latest data",
        description="Forecast the realized volatility of the next horizon days from the latest "
        "row of data, with the model the latest monitoring run recommends (Model A when there "
        "is none) or the one given with --model. Prints JSON (or a table).",
    )
    predict.add_argument(
        "--model", choices=["a", "b"], default=None, help="use Model A or B, whatever monitor says"
    )
    _add_format(predict, default="json")
    predict.set_defaults(
        handler=_cmd_predict,
        settings_fields=_add_settings(predict, [*COMMON_FLAGS, *UNIVERSE_FLAGS]),
    )

    report = sub.add_parser(
        "report",
        help="trends of the training and monitoring histories: summary, PNG plots, HTML page",
        description="Summarize training_history.jsonl and monitoring_history.jsonl (runs, RMSE "
        "change, drift, win rates, runs since the last retrain) and write PNG plots, report.json "
        "and a self-contained report.html to --output.",
    )
    report.set_defaults(
        handler=_cmd_report, settings_fields=_add_settings(report, [*COMMON_FLAGS, "--output"])
    )

    evaluate = sub.add_parser(
        "evaluate",
        help="walk-forward benchmark of the ensemble against HAR, GARCH, EWMA and more",
        description="Refit the ensemble and every baseline on an expanding window every "
        "--refit-every trading days (purged), forecast each following day out of sample, and "
        "write evaluation.json, evaluation.md, forecasts.csv and PNG plots to --output.",
    )
    evaluate_flags = ["--source", "--data-dir", "--models-dir", "--start", "--end", "--eval-start", "--threads",
                      "--refit-every", "--output", "--symbol", "--implied-vol", "--horizon", "--horizons",
                      "--seed", "--candidate", "--log-level", *UNIVERSE_FLAGS]  # fmt: skip
    evaluate.set_defaults(
        handler=_cmd_evaluate, settings_fields=_add_settings(evaluate, evaluate_flags)
    )
    replay = sub.add_parser(
        "replay",
        help="put the train/monitor policy on trial: years of weekly training and daily "
        "monitoring, replayed",
        description="Replay the production loop from --replay-start to the data's end with the "
        "services' own code: train every --train-every trading days, monitor every day, follow "
        "the monitor's advice, publish predict's forecast. Scores that policy against always "
        "Model A, always Model B and scheduled retraining without monitoring, and the spec's "
        "RMSE drift alarms against a scale-free signal. Writes replay.json, replay.md, days.csv, "
        "plots and a models directory with the histories (for `report`) to --output.",
    )
    replay_flags = ["--source", "--data-dir", "--models-dir", "--symbol", "--implied-vol", "--start",
                    "--end", "--replay-start", "--train-every", "--no-retrain-on-advice", "--horizon",
                    "--seed", "--threads", "--workers", "--scheduler", "--output", "--log-level"]  # fmt: skip
    replay.set_defaults(handler=_cmd_replay, settings_fields=_add_settings(replay, replay_flags))
    select = sub.add_parser(
        "select",
        help="choose the ensemble's settings on a development period before --eval-start",
        description="Run every candidate setting of the ensemble walk-forward on the "
        "development period (data from --dev-start, scored from --dev-eval-start to the day "
        "before --eval-start; nothing later is read) on --symbols (default SPY,QQQ) at "
        "--horizons (default 1,5,22), pick one per horizon by the written rule and write "
        "selection.json and selection.md to --output. Copying selection.json into "
        "services/volforecast/ ships the choice.",
    )
    select_flags = ["--source", "--data-dir", "--models-dir", "--dev-start", "--dev-eval-start",
                    "--eval-start", "--refit-every", "--symbols", "--implied-vol", "--horizons",
                    "--seed", "--threads", "--workers", "--scheduler", "--output", "--log-level"]  # fmt: skip
    select.set_defaults(handler=_cmd_select, settings_fields=_add_settings(select, select_flags))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Before anything imports xgboost or lightgbm: their OpenMP runtime reads this once.
    prefer_passive_waiting()
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides = {f: getattr(args, f, None) for f in args.settings_fields}
    try:
        with stop_on_signals():
            settings = build_settings(**overrides)
            _setup_logging(settings.log_level)
            settings.check_as_of(dt.datetime.now(dt.UTC).date())
            code: int = args.handler(settings, args)
        return code
    except VolforecastError as exc:
        _ensure_logging()
        log.error("%s", exc)
        return exc.exit_code
    except Stopped as exc:
        _ensure_logging()
        log.error(
            "stopped by %s; the models directory is consistent: a run stopped before publishing "
            "left it as it was, one stopped while publishing finished first",
            exc,
        )
        return exc.exit_code


def _ensure_logging() -> None:
    if not logging.getLogger().handlers:  # failed before logging was set up
        _setup_logging("INFO")


if __name__ == "__main__":
    sys.exit(main())
