"""``volforecast train``: one symbol's model set trained and published, or a universe's."""

from __future__ import annotations

import argparse
import time

from volforecast import universe
from volforecast.config import Settings
from volforecast.ensemble import Progress
from volforecast.summaries import rendered, training_summary
from volforecast.telemetry import check_metrics_file, publish_runs
from volforecast.training import run_train


def run(settings: Settings, args: argparse.Namespace, say: Progress) -> int:
    started = time.monotonic()
    check_metrics_file(settings)
    symbols = settings.universe()
    if symbols is not None:
        return universe.run_command("train", settings, symbols, args.format, say, started)
    result = run_train(settings, say)
    print(rendered(result.record, args.format, training_summary))
    publish_runs(settings, "train", {settings.symbol: result.record}, started)
    return 0
