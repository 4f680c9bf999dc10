"""The ``volforecast`` command: parses flags, builds Settings once, runs a subcommand, maps
errors to exit codes. All work lives in the library modules."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from volforecast import __version__
from volforecast.config import DataSource, Settings, build_settings
from volforecast.errors import EXIT_RETRAIN_ADVISED, ConfigError, VolforecastError

log = logging.getLogger("volforecast")

# Flags shared by the commands that read data, mapped to Settings fields.
COMMON_FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
    "--source": ("data_source", {"choices": [s.value for s in DataSource]}),
    "--data-dir": ("data_dir", {}),
    "--models-dir": ("models_dir", {}),
    "--start": ("start", {"metavar": "YYYY-MM-DD"}),
    "--as-of": ("as_of", {"metavar": "YYYY-MM-DD"}),
    "--horizon": ("horizon", {"type": int}),
    "--seed": ("seed", {"type": int}),
    "--lock-timeout": ("lock_timeout", {"type": float, "metavar": "SECONDS"}),
    "--log-level": ("log_level", {}),
}


def _add_common(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    for flag in names:
        field, extra = COMMON_FLAGS[flag]
        info = Settings.model_fields[field]
        env = "VOLF_" + field.upper()
        parser.add_argument(
            flag,
            dest=field,
            default=None,
            help=f"{info.description} [env {env}; default {info.default}]",
            **extra,
        )


def _setup_logging(level: str) -> None:
    # Cron and docker capture stderr without a terminal: full timestamps there, short ones on a TTY.
    fmt = "%(asctime)s %(levelname)s %(message)s"
    datefmt = "%H:%M:%S" if sys.stderr.isatty() else "%Y-%m-%dT%H:%M:%S%z"
    logging.basicConfig(level=level, format=fmt, datefmt=datefmt, stream=sys.stderr, force=True)
    for noisy in ("yfinance", "peewee", "urllib3", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _progress() -> Callable[[str], None]:
    started = time.monotonic()

    def say(message: str) -> None:
        log.info("[%5.1fs] %s", time.monotonic() - started, message)

    return say


def _cmd_train(settings: Settings, _args: argparse.Namespace) -> int:
    from volforecast.reporting import training_summary
    from volforecast.training import run_train

    _spy_only(settings, "train")
    result = run_train(settings, _progress())
    print(training_summary(result.record))
    return 0


def _cmd_monitor(settings: Settings, _args: argparse.Namespace) -> int:
    from volforecast.monitoring import run_monitor
    from volforecast.reporting import monitoring_summary

    _spy_only(settings, "monitor")
    result = run_monitor(settings, _progress())
    print(monitoring_summary(result.record))
    if settings.fail_on_retrain and result.record.retraining.action == "retrain_now":
        log.warning("retraining is advised; exiting %d (--fail-on-retrain)", EXIT_RETRAIN_ADVISED)
        return EXIT_RETRAIN_ADVISED
    return 0


def _cmd_evaluate(settings: Settings, _args: argparse.Namespace) -> int:
    from volforecast.benchmark import markdown_table, run_evaluate

    report, paths = run_evaluate(settings, _progress())
    print(markdown_table(report))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _cmd_predict(settings: Settings, args: argparse.Namespace) -> int:
    from volforecast.prediction import forecast_table, run_predict

    _spy_only(settings, "predict")
    forecast = run_predict(settings, _progress(), requested=args.model)
    print(
        forecast_table(forecast) if args.format == "table" else forecast.model_dump_json(indent=2)
    )
    return 0


def _cmd_report(settings: Settings, _args: argparse.Namespace) -> int:
    from volforecast.history_report import run_report

    result = run_report(settings, _progress())
    print(result.text)
    print("wrote " + ", ".join(str(p) for p in result.paths))
    return 0


def _spy_only(settings: Settings, command: str) -> None:
    # The model set's contract (spec) is SPY; other symbols are for the benchmark only.
    if settings.symbol != "SPY":
        raise ConfigError(
            f"{command} forecasts SPY only (got --symbol / VOLF_SYMBOL {settings.symbol}). "
            "Fix: unset VOLF_SYMBOL; use `volforecast evaluate --symbol` to benchmark others."
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
    _add_common(train, list(COMMON_FLAGS))
    train.add_argument(
        "--archive-keep",
        dest="archive_keep",
        type=int,
        default=None,
        help="previous model sets kept in models/archive/ [env VOLF_ARCHIVE_KEEP; default 4]",
    )
    train.set_defaults(
        handler=_cmd_train, settings_fields=[*(f for f, _ in COMMON_FLAGS.values()), "archive_keep"]
    )

    monitor = sub.add_parser(
        "monitor",
        help="score both models on new data, measure drift, recommend a model",
        description="Score Model A and Model B on the labeled rows that arrived after training, "
        "compare them over several windows, measure drift against the validation baseline and "
        "append the verdict to monitoring_history.jsonl.",
    )
    _add_common(monitor, list(COMMON_FLAGS))
    monitor.add_argument(
        "--fail-on-retrain",
        dest="fail_on_retrain",
        action="store_true",
        default=None,
        help=f"exit {EXIT_RETRAIN_ADVISED} when retraining is advised, so cron can alert "
        "[env VOLF_FAIL_ON_RETRAIN; default False]",
    )
    monitor.set_defaults(
        handler=_cmd_monitor,
        settings_fields=[*(f for f, _ in COMMON_FLAGS.values()), "fail_on_retrain"],
    )

    predict = sub.add_parser(
        "predict",
        help="forecast the next horizon's volatility from the latest data",
        description="Forecast the realized volatility of the next horizon days from the latest "
        "row of data, with the model the latest monitoring run recommends (Model A when there "
        "is none) or the one given with --model. Prints JSON (or a table).",
    )
    _add_common(predict, list(COMMON_FLAGS))
    predict.add_argument(
        "--model", choices=["a", "b"], default=None, help="use Model A or B, whatever monitor says"
    )
    predict.add_argument(
        "--format", choices=["json", "table"], default="json", help="output format [json]"
    )
    predict.set_defaults(
        handler=_cmd_predict, settings_fields=[f for f, _ in COMMON_FLAGS.values()]
    )

    report = sub.add_parser(
        "report",
        help="trends of the training and monitoring histories: summary, PNG plots, HTML page",
        description="Summarize training_history.jsonl and monitoring_history.jsonl (runs, RMSE "
        "change, drift, win rates, runs since the last retrain) and write PNG plots, report.json "
        "and a self-contained report.html to --output.",
    )
    _add_common(report, list(COMMON_FLAGS))
    report.add_argument(
        "--output",
        dest="output_dir",
        default=None,
        metavar="DIR",
        help="where the files go [env VOLF_OUTPUT_DIR; default <models-dir>/reports]",
    )
    report.set_defaults(
        handler=_cmd_report,
        settings_fields=[*(f for f, _ in COMMON_FLAGS.values()), "output_dir"],
    )

    evaluate = sub.add_parser(
        "evaluate",
        help="walk-forward benchmark of the ensemble against HAR, GARCH, EWMA and more",
        description="Refit the ensemble and every baseline on an expanding window every "
        "--refit-every trading days (purged), forecast each following day out of sample, and "
        "write evaluation.json, evaluation.md, forecasts.csv and PNG plots to --output.",
    )
    _add_common(evaluate, ["--source", "--data-dir", "--models-dir", "--start"])
    evaluate.add_argument(
        "--end",
        dest="as_of",
        default=None,
        metavar="YYYY-MM-DD",
        help="last day of data used [env VOLF_AS_OF; default: all]",
    )
    for flag, field, kind, metavar in (
        ("--eval-start", "eval_start", str, "YYYY-MM-DD"),
        ("--refit-every", "refit_every", int, "DAYS"),
        ("--output", "output_dir", str, "DIR"),
        ("--symbol", "symbol", str, "TICKER"),
    ):
        info = Settings.model_fields[field]
        evaluate.add_argument(
            flag,
            dest=field,
            default=None,
            type=kind,
            metavar=metavar,
            help=f"{info.description} [env VOLF_{field.upper()}; default {info.default}]",
        )
    _add_common(evaluate, ["--horizon", "--seed", "--log-level"])
    evaluate.set_defaults(
        handler=_cmd_evaluate,
        settings_fields=[
            "data_source",
            "data_dir",
            "models_dir",
            "start",
            "as_of",
            "eval_start",
            "refit_every",
            "output_dir",
            "symbol",
            "horizon",
            "seed",
            "log_level",
        ],
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides = {f: getattr(args, f, None) for f in args.settings_fields}
    try:
        settings = build_settings(**overrides)
        _setup_logging(settings.log_level)
        code: int = args.handler(settings, args)
        return code
    except VolforecastError as exc:
        if not logging.getLogger().handlers:  # failed before logging was set up
            _setup_logging("INFO")
        log.error("%s", exc)
        return exc.exit_code
    except KeyboardInterrupt:
        log.error("interrupted; the models directory was left as it was")
        return 130


if __name__ == "__main__":
    sys.exit(main())
