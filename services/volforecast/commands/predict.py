"""``volforecast predict``: the forecast of one symbol, or of a universe, as JSON or a table."""

from __future__ import annotations

import argparse
import logging
import time

from volforecast import universe
from volforecast.config import Settings
from volforecast.ensemble import Progress
from volforecast.errors import EXIT_STALE_DATA
from volforecast.forecasting import run_predict
from volforecast.summaries import forecast_table, rendered

log = logging.getLogger(__name__)


def run(settings: Settings, args: argparse.Namespace, say: Progress) -> int:
    symbols = settings.universe()
    if symbols is not None:
        return universe.run_command(
            "predict", settings, symbols, args.format, say, time.monotonic(), args.model
        )
    forecast = run_predict(settings, say, requested=args.model)
    print(rendered(forecast, args.format, forecast_table))
    if forecast.data_stale:
        log.warning("forecast from cached data (the download failed); exiting %d", EXIT_STALE_DATA)
        return EXIT_STALE_DATA
    return 0
