"""What built a model set: a digest of the market data it was fitted on and the versions of
Python and of every library whose objects are pickled in it, recorded at training and checked
when a set is loaded.

A pickled XGBoost, LightGBM or scikit-learn model loaded under another major version may fail
or, worse, predict differently; under another minor version it usually works, and the loader
says so. The rule (models/README.md, "Lineage"): a different major version of a pickled
library refuses the set with a fix; any other difference warns once per set.
"""

from __future__ import annotations

import hashlib
import logging
import platform
from collections.abc import Mapping
from importlib import metadata

import pandas as pd

from volforecast.errors import IntegrityError

log = logging.getLogger(__name__)

# Libraries whose objects a set's pickles hold (their major version must match to load it),
# then the others whose numbers a set depends on.
PICKLED = ("scikit-learn", "xgboost", "lightgbm", "numpy")
RECORDED = (*PICKLED, "pandas", "scipy", "volforecast")
# The distribution that provides a module, where the names differ (xgboost-cpu: see
# pyproject.toml).
_DISTRIBUTIONS = {"xgboost": ("xgboost-cpu", "xgboost")}


def _version(name: str) -> str:
    for dist in _DISTRIBUTIONS.get(name, (name,)):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def library_versions() -> dict[str, str]:
    """Python's version and every recorded library's, as installed in this process."""
    return {"python": platform.python_version(), **{name: _version(name) for name in RECORDED}}


def data_digest(frame: pd.DataFrame, symbol: str, implied_vol: str) -> dict[str, str]:
    """SHA-256 of each input series over the rows a set was fitted on (``frame``: the aligned
    market data, dated up to the training's last day): the underlying's prices and the
    implied-volatility index, each as canonical CSV text (ISO dates, 10 significant digits).

    Two trainings on the same data give the same digests; a revised or re-adjusted history
    gives another, which is how a changed input is told from a changed model.
    """
    series = {
        symbol: [c for c in frame.columns if c.startswith("spy_")],
        implied_vol: ["vix_close"],
    }
    return {name: _csv_sha256(frame.loc[:, columns]) for name, columns in series.items()}


def _csv_sha256(part: pd.DataFrame) -> str:
    """SHA-256 of a frame as canonical CSV text (ISO dates, 10 significant digits)."""
    part = part.copy()
    part.index = pd.DatetimeIndex(part.index).strftime("%Y-%m-%d")
    text = part.to_csv(float_format="%.10g", lineterminator="\n")
    return hashlib.sha256(text.encode()).hexdigest()


def history_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of the underlying's close and the implied volatility over ``frame``'s rows, as
    canonical CSV text. Unlike ``data_digest`` it leaves out the adjusted close, which a
    source revises at every dividend: the monitor compares it with the same period of today's
    feed, and a difference means the set was fitted on other data than the feed now shows (the
    wrong series, a split since, a revised history).

    Examples
    --------
    >>> f = pd.DataFrame({"spy_close": [1.0], "vix_close": [20.0]},
    ...                  index=pd.DatetimeIndex(["2020-01-02"]))
    >>> history_digest(f)[:12]
    'b52545b02f9b'
    """
    return _csv_sha256(frame.loc[:, ["spy_close", "vix_close"]])


def _major(version: str) -> str:
    return version.split(".", 1)[0]


def check_versions(recorded: Mapping[str, str] | None, run_id: str) -> list[str]:
    """Compare the versions a set was trained under with this process's.

    Returns the differences that only warn (each logged); raises IntegrityError naming the
    library and the fix when a pickled library's major version differs. A set trained before
    versions were recorded (``recorded`` None) is read without a check.
    """
    if not recorded:
        return []
    here = library_versions()
    notes = []
    for name, then in recorded.items():
        now = here.get(name)
        if now is None or now == then:
            continue
        if name in PICKLED and _major(now) != _major(then):
            raise IntegrityError(
                f"set {run_id} was trained with {name} {then}, and {name} {now} is installed: "
                "a pickled model of another major version cannot be trusted to load or to "
                f"predict the same. Fix: run `volforecast train` under this installation, or "
                f"install {name} {_major(then)}.x to read the set."
            )
        notes.append(f"{name} {then} -> {now}")
    if notes:
        log.warning(
            "set %s was trained under other versions (%s); it loads, but its numbers may "
            "differ in the last digits. Retrain to remove this warning.",
            run_id,
            ", ".join(notes),
        )
    return notes
