"""``volforecast predict``: the forecast of one symbol, or of a universe, as JSON or a table;
exit 12 when it came from cached data after a failed download."""

from __future__ import annotations

import argparse

from volforecast import universe
from volforecast.config import Settings
from volforecast.progress import Progress
from volforecast.summaries import forecast_table


def run(settings: Settings, args: argparse.Namespace, say: Progress) -> int:
    return universe.run_command(
        "predict", settings, args.format, say, forecast_table, requested=args.model
    )
