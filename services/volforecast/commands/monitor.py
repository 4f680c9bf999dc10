"""``volforecast monitor``: one symbol's model set scored on new data and judged, or a
universe's; exit 10 with ``--fail-on-retrain`` when retraining is advised, 12 on cached data."""

from __future__ import annotations

import argparse

from volforecast import universe
from volforecast.config import Settings
from volforecast.progress import Progress
from volforecast.summaries import monitoring_summary


def run(settings: Settings, args: argparse.Namespace, say: Progress) -> int:
    return universe.run_command("monitor", settings, args.format, say, monitoring_summary)
