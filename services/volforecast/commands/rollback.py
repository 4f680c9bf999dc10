"""``volforecast rollback [--to RUN_ID]``: the previous live set (or the one named) live again."""

from __future__ import annotations

import argparse

from volforecast.config import Settings
from volforecast.deployment import switch_live_set
from volforecast.progress import Progress
from volforecast.summaries import deployment_line


def run(settings: Settings, args: argparse.Namespace, say: Progress) -> int:
    print(deployment_line(switch_live_set(settings, args.to, "rollback", say)))
    return 0
