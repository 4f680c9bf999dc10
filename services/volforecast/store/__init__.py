"""The models directory (models/README.md): the only package that reads or writes it.

``directory``: one directory's lock, atomic commit and undo, recovery and archive, and the
verified reading of its current set (``ModelsDirectory``, ``CurrentModels``); ``integrity``:
manifest hashes and HMAC signatures; ``history``: the append-only JSONL histories; ``layout``:
the names of every file. Files are written with ``volforecast.atomic``.
"""

from volforecast.store.directory import CurrentModels, ModelsDirectory
from volforecast.store.integrity import serialize_model, sha256, sign
from volforecast.store.layout import (
    ALIASES,
    ARCHIVE_DIR,
    CURRENT,
    DEPLOYMENT_LOG,
    DUAL_FILE,
    HASHED_FILES,
    LATEST_FILE,
    LOCK_FILE,
    MANIFEST_FILE,
    MODEL_A_FILE,
    MODEL_B_FILE,
    MONITORING_HISTORY,
    RECORD_FILE,
    SET_FILES,
    SETS_DIR,
    SIGNATURE_FILE,
    SYMBOLS_DIR,
    TRAINING_HISTORY,
    VALIDATION_FILE,
    symbol_root,
)

__all__ = [
    "ALIASES",
    "ARCHIVE_DIR",
    "CURRENT",
    "DEPLOYMENT_LOG",
    "DUAL_FILE",
    "HASHED_FILES",
    "LATEST_FILE",
    "LOCK_FILE",
    "MANIFEST_FILE",
    "MODEL_A_FILE",
    "MODEL_B_FILE",
    "MONITORING_HISTORY",
    "RECORD_FILE",
    "SETS_DIR",
    "SET_FILES",
    "SIGNATURE_FILE",
    "SYMBOLS_DIR",
    "TRAINING_HISTORY",
    "VALIDATION_FILE",
    "CurrentModels",
    "ModelsDirectory",
    "serialize_model",
    "sha256",
    "sign",
    "symbol_root",
]
