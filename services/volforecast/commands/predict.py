"""``volforecast predict``: the forecast of one symbol, or of a universe, as JSON or a table."""

from __future__ import annotations

import argparse
import time

from volforecast import universe
from volforecast.config import Settings
from volforecast.ensemble import Progress
from volforecast.forecasting import run_predict
from volforecast.summaries import forecast_table, rendered


def run(settings: Settings, args: argparse.Namespace, say: Progress) -> int:
    symbols = settings.universe()
    if symbols is not None:
        return universe.run_command(
            "predict", settings, symbols, args.format, say, time.monotonic(), args.model
        )
    forecast = run_predict(settings, say, requested=args.model)
    print(rendered(forecast, args.format, forecast_table))
    return 0
