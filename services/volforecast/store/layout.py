"""The names and places of the models directory (models/README.md, "Layout"): every file of
a set, the histories, the ``current`` link, the per-symbol folders."""

from __future__ import annotations

from pathlib import Path

from volforecast.atomic import TMP_PREFIX
from volforecast.config import PRIMARY_SYMBOL

__all__ = ["TMP_PREFIX"]

MODEL_A_FILE = "model_90pct.pkl"
MODEL_B_FILE = "model_100pct.pkl"
LATEST_FILE = "latest_ensemble.pkl"
VALIDATION_FILE = "validation_baseline.json"
DUAL_FILE = "dual_model_baseline.json"
TRAINING_HISTORY = "training_history.jsonl"
MONITORING_HISTORY = "monitoring_history.jsonl"
# Which set was live from when, and why (train, rollback, promote): append-only.
DEPLOYMENT_LOG = "deployments.jsonl"
RECORD_FILE = "training_record.json"
MANIFEST_FILE = "manifest.json"
# Every symbol but SPY has its own complete models directory here, named by its ticker.
SYMBOLS_DIR = "symbols"
SIGNATURE_FILE = "manifest.sig"
# The spec's files of a set, and every file the manifest covers.
SET_FILES = (MODEL_A_FILE, MODEL_B_FILE, VALIDATION_FILE, DUAL_FILE)
HASHED_FILES = (*SET_FILES, RECORD_FILE)
# A reader that finds its set archived under it (a train run committed meanwhile) starts over.
READ_ATTEMPTS = 3
ALIASES = {name: name for name in SET_FILES} | {LATEST_FILE: MODEL_A_FILE}
SETS_DIR = "sets"
CURRENT = "current"
ARCHIVE_DIR = "archive"
LOCK_FILE = ".lock"


def symbol_root(models_dir: Path, symbol: str) -> Path:
    """Where a symbol's complete models directory lives (see models/README.md)."""
    return models_dir if symbol == PRIMARY_SYMBOL else models_dir / SYMBOLS_DIR / symbol
