"""The ``volforecast`` command: parses flags, builds Settings once, runs a subcommand, maps
errors to exit codes. All work lives in the library modules."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from pydantic.fields import FieldInfo

from volforecast import __version__
from volforecast.config import SETTING_FLAGS, Settings, build_settings
from volforecast.errors import VolforecastError
from volforecast.progress import elapsed_logger
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
    "--bad-rows",
]
# A universe run: one command over many symbols, on Dask.
UNIVERSE_FLAGS = ["--symbols", "--universe-file", "--workers", "--scheduler"]


def _shown_default(info: FieldInfo) -> str:
    """A field's default as --help shows it (a factory's value; "none" for None or empty)."""
    default = info.get_default(call_default_factory=True)
    if isinstance(default, dict):
        return ",".join(f"{k}={v}" for k, v in default.items()) or "none"
    return "none" if default is None else str(default)


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
            # argparse %-formats help: a literal % in a description (e.g. "90%") must be doubled.
            help=f"{info.description} [env {env}; default {_shown_default(info)}]".replace(
                "%", "%%"
            ),
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


def _handler(name: str) -> Callable[[Settings, argparse.Namespace], int]:
    """The ``run`` of ``volforecast.commands.<name>``, imported only when that command runs (a
    command's ``--help`` or a usage error never loads xgboost, lightgbm or Dask)."""

    def handler(settings: Settings, args: argparse.Namespace) -> int:
        module = importlib.import_module(f"volforecast.commands.{name}")
        code: int = module.run(settings, args, elapsed_logger())
        return code

    return handler


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
        handler=_handler("train"),
        settings_fields=_add_settings(
            train,
            [
                *COMMON_FLAGS,
                *UNIVERSE_FLAGS,
                "--archive-keep",
                "--metrics-file",
                "--candidate",
                "--allow-stale-data",
                "--quantiles",
                "--accept-data-through",
                "--pool-universe",
                "--pool-data-dir",
            ],
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
        handler=_handler("monitor"),
        settings_fields=_add_settings(
            monitor,
            [
                *COMMON_FLAGS,
                *UNIVERSE_FLAGS,
                "--fail-on-retrain",
                "--metrics-file",
                "--max-data-age",
                "--accept-data-through",
                "--max-set-age",
            ],
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
        handler=_handler("predict"),
        settings_fields=_add_settings(predict, [*COMMON_FLAGS, *UNIVERSE_FLAGS, "--max-data-age"]),
    )

    report = sub.add_parser(
        "report",
        help="trends of the training and monitoring histories: summary, PNG plots, HTML page",
        description="Summarize training_history.jsonl and monitoring_history.jsonl (runs, RMSE "
        "change, drift, win rates, runs since the last retrain) and write PNG plots, report.json "
        "and a self-contained report.html to --output.",
    )
    report.set_defaults(
        handler=_handler("report"),
        settings_fields=_add_settings(report, [*COMMON_FLAGS, "--output"]),
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
                      "--seed", "--candidate", "--log-level", "--bad-rows", "--quantiles", "--pool-universe",
                      "--pool-data-dir", *UNIVERSE_FLAGS]  # fmt: skip
    evaluate.set_defaults(
        handler=_handler("evaluate"), settings_fields=_add_settings(evaluate, evaluate_flags)
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
                    "--seed", "--threads", "--workers", "--scheduler", "--output", "--log-level",
                    "--bad-rows", "--inject", "--inject-other", "--max-set-age"]  # fmt: skip
    replay.set_defaults(
        handler=_handler("replay"), settings_fields=_add_settings(replay, replay_flags)
    )
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
                    "--seed", "--threads", "--workers", "--scheduler", "--output", "--log-level",
                    "--bad-rows", "--inject", "--inject-other", "--max-set-age"]  # fmt: skip
    select.set_defaults(
        handler=_handler("select"), settings_fields=_add_settings(select, select_flags)
    )
    deploy_flags = ["--models-dir", "--symbol", "--lock-timeout", "--archive-keep", "--log-level"]
    for name, summary, description, target in (
        ("rollback", "make the previous live model set live again (or --to a kept one)",
         "Under the models-directory lock, verify a kept set (manifest, signature, symbol, "
         "library versions), make it live (the `current` link, as train's commit does), log the "
         "switch in deployments.jsonl and archive the set that was live. Without --to: the set "
         "that was live before the current one.",
         ("--to", {"metavar": "RUN_ID", "default": None, "help": "the set to make live"})),
        ("promote", "make an archived model set live",
         "Like rollback --to RUN_ID: verify the archived set RUN_ID, make it live, log the "
         "switch in deployments.jsonl and archive the set that was live.",
         ("run_id", {"metavar": "RUN_ID", "help": "the archived set to make live"})),
    ):  # fmt: skip
        deploy = sub.add_parser(name, help=summary, description=description)
        deploy.add_argument(target[0], **target[1])
        deploy.set_defaults(
            handler=_handler(name), settings_fields=_add_settings(deploy, deploy_flags)
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Before anything imports xgboost or lightgbm: their OpenMP runtime reads this once.
    prefer_passive_waiting()
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides = {f: getattr(args, f, None) for f in args.settings_fields}
    configured = False
    try:
        with stop_on_signals():
            settings = build_settings(**overrides)
            _setup_logging(settings.log_level)
            configured = True
            settings.check_as_of(dt.datetime.now(dt.UTC).date())
            code: int = args.handler(settings, args)
        return code
    except VolforecastError as exc:
        if not configured:  # the settings failed: log to this process's stderr all the same
            _setup_logging("INFO")
        log.error("%s", exc)
        return exc.exit_code
    except Stopped as exc:
        if not configured:
            _setup_logging("INFO")
        if exc.finished:  # a run of many pieces: say which had finished (and published)
            log.error(
                "stopped by %s after %d piece(s) had finished: %s. Each of those is complete "
                "(a train piece's set is published); the pieces still running were stopped, and "
                "a set is published whole or not at all, so every models directory is "
                "consistent",
                exc,
                len(exc.finished),
                ", ".join(exc.finished[:10])
                + (f" and {len(exc.finished) - 10} more" if len(exc.finished) > 10 else ""),
            )
        else:
            log.error(
                "stopped by %s; the models directory is consistent: a run stopped before "
                "publishing left it as it was, one stopped while publishing finished first",
                exc,
            )
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
