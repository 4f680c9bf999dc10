"""What makes a set trustworthy: the SHA-256 of every file in its manifest, the manifest's
HMAC signature when a key is configured, and checks that run before anything is parsed or
unpickled (models/README.md, "Threat model")."""

from __future__ import annotations

import hashlib
import hmac
import pickle
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from volforecast.errors import IntegrityError
from volforecast.schemas import Manifest
from volforecast.store.layout import HASHED_FILES, MANIFEST_FILE, SIGNATURE_FILE


def serialize_model(artifact: dict[str, Any]) -> bytes:
    return pickle.dumps(artifact, protocol=pickle.HIGHEST_PROTOCOL)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sign(key: bytes, manifest: bytes) -> str:
    return hmac.new(key, manifest, hashlib.sha256).hexdigest()


def sealed(
    run_id: str,
    created_at: str,
    blobs: dict[str, bytes],
    key: bytes | None,
    **lineage: Any,
) -> dict[str, bytes]:
    """``blobs`` with the manifest of their hashes (and ``lineage`` fields), and its signature
    when ``key`` is given."""
    manifest = Manifest(
        run_id=run_id,
        created_at=created_at,
        files={name: sha256(data) for name, data in blobs.items()},
        signature="hmac-sha256" if key else "none",
        **lineage,
    )
    out = {**blobs, MANIFEST_FILE: manifest.model_dump_json(indent=2).encode()}
    if key:
        out[SIGNATURE_FILE] = sign(key, out[MANIFEST_FILE]).encode()
    return out


def _read(path: Path, fix: str) -> bytes:
    """A set file's bytes; a file that is gone raises FileNotFoundError (the caller tells a
    replaced set from a damaged one), any other failure an IntegrityError naming the file."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise IntegrityError(
            f"{path} cannot be read ({exc.strerror or exc}): the set is damaged. {fix}"
        ) from exc


def verify_set(run_id: str, set_dir: Path, key: bytes | None, fix: str) -> dict[str, bytes]:
    """Every file of the set in ``set_dir``, each matching the manifest (and the manifest its
    signature when ``key`` is given); IntegrityError ending with ``fix`` otherwise. Raises
    FileNotFoundError for a missing file (the caller tells a replaced set from a damaged one).
    """
    raw = _read(set_dir / MANIFEST_FILE, fix)
    if key is not None:
        sig_path = set_dir / SIGNATURE_FILE
        if not sig_path.exists():
            raise IntegrityError(
                f"the set {run_id} is not signed, and a signing key is configured: refusing "
                "to read it. Fix: run `volforecast train` with the key to write a signed set."
            )
        if not hmac.compare_digest(sig_path.read_bytes().strip(), sign(key, raw).encode()):
            raise IntegrityError(
                f"the signature of set {run_id} does not match its manifest under the "
                "configured key: the set was altered or signed with another key; refusing "
                f"to read it. {fix}"
            )
    try:
        manifest = Manifest.model_validate_json(raw)
    except ValueError as exc:
        raise IntegrityError(
            f"{set_dir / MANIFEST_FILE} is unreadable ({first_line(exc)}). {fix}"
        ) from exc
    if manifest.run_id != run_id or set(manifest.files) != set(HASHED_FILES):
        raise IntegrityError(
            f"{set_dir / MANIFEST_FILE} does not describe set {run_id} "
            f"(run {manifest.run_id}, files {sorted(manifest.files)}). {fix}"
        )
    blobs = {}
    for name, expected in manifest.files.items():
        data = _read(set_dir / name, fix)
        if sha256(data) != expected:
            raise IntegrityError(
                f"{set_dir / name} does not match the SHA-256 recorded in {MANIFEST_FILE} "
                f"(run {run_id}): it was modified or copied from another run. Refusing to "
                f"read it (a pickle is never unpickled unverified). {fix}"
            )
        blobs[name] = data
    return blobs


def first_line(exc: Exception) -> str:
    """A one-line cause: each pydantic error as ``field: message``, else the first line."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in exc.errors()
        )
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def unpickle(data: bytes, name: str, run_id: str) -> dict[str, Any]:
    artifact = pickle.loads(data)
    if not isinstance(artifact, dict) or artifact.get("run_id") != run_id:
        raise IntegrityError(
            f"{name} belongs to another training run. Fix: run `volforecast train`."
        )
    return artifact
