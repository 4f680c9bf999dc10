"""``volforecast promote RUN_ID``: an archived set made live."""

from __future__ import annotations

import argparse

from volforecast.config import Settings
from volforecast.deployment import switch_live_set
from volforecast.progress import Progress
from volforecast.summaries import deployment_line


def run(settings: Settings, args: argparse.Namespace, say: Progress) -> int:
    print(deployment_line(switch_live_set(settings, args.run_id, "promote", say)))
    return 0
