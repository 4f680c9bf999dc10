"""``volforecast monitor``: one symbol's model set scored on new data and judged, or a
universe's; exit 10 with ``--fail-on-retrain`` when retraining is advised."""

from __future__ import annotations

import argparse
import logging
import time

from volforecast import universe
from volforecast.config import Settings
from volforecast.ensemble import Progress
from volforecast.errors import EXIT_RETRAIN_ADVISED, EXIT_STALE_DATA
from volforecast.monitoring import run_monitor
from volforecast.summaries import monitoring_summary, rendered
from volforecast.telemetry import check_metrics_file, publish_runs

log = logging.getLogger(__name__)


def run(settings: Settings, args: argparse.Namespace, say: Progress) -> int:
    started = time.monotonic()
    check_metrics_file(settings)
    symbols = settings.universe()
    if symbols is not None:
        return universe.run_command("monitor", settings, symbols, args.format, say, started)
    result = run_monitor(settings, say)
    print(rendered(result.record, args.format, monitoring_summary))
    publish_runs(settings, "monitor", {settings.symbol: result.record}, started)
    if settings.fail_on_retrain and result.record.retraining.action == "retrain_now":
        log.warning("retraining is advised; exiting %d (--fail-on-retrain)", EXIT_RETRAIN_ADVISED)
        return EXIT_RETRAIN_ADVISED
    if result.record.data_stale:
        log.warning("ran on cached data (the download failed); exiting %d", EXIT_STALE_DATA)
        return EXIT_STALE_DATA
    return 0
