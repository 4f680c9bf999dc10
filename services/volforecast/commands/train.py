"""``volforecast train``: one symbol's model set trained and published, or a universe's."""

from __future__ import annotations

import argparse

from volforecast import universe
from volforecast.config import Settings
from volforecast.progress import Progress
from volforecast.summaries import training_summary


def run(settings: Settings, args: argparse.Namespace, say: Progress) -> int:
    return universe.run_command("train", settings, args.format, say, training_summary)
