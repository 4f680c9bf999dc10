"""Progress lines: what a long command says it is doing while it works.

Every command takes a ``Progress`` callback and calls it with plain sentences ("fitting Model
A on 3,493 rows"); the CLI hands it ``elapsed_logger()``, which logs each line with the
seconds since the command started. The type lives apart from the modelling modules so that a
command which fits nothing (``promote``, ``rollback``) never loads xgboost, lightgbm or
scikit-learn just to name it.

Examples
--------
>>> lines = []
>>> progress: Progress = lines.append
>>> progress("loading SPY")
>>> lines
['loading SPY']
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

Progress = Callable[[str], None]

log = logging.getLogger("volforecast")


def elapsed_logger() -> Progress:
    """A ``Progress`` that logs each line at INFO with the seconds since it was made."""
    started = time.monotonic()

    def say(message: str) -> None:
        log.info("[%5.1fs] %s", time.monotonic() - started, message)

    return say
