"""Are this checkout's outputs bit-identical to an earlier release's for the same inputs?

A check for restructurings, not a benchmark: the git revision REF is exported to a temporary
folder and both versions run the same commands on the same CSV data, each with its own models
directory (``python -m volforecast.cli`` with that version first on PYTHONPATH, the same
interpreter and packages):

- ``train --as-of TRAIN_AS_OF``, ``monitor`` and ``predict --as-of MONITOR_AS_OF`` on SPY;
- ``evaluate`` on SPY at h = 5 (the README's benchmark) unless ``--skip-evaluate``;
- a short ``select`` (SPY, h = 5, one development year) unless ``--skip-select``.

It then compares every file a user relies on: the baselines, the history lines, the forecast,
``evaluation.json`` and ``forecasts.csv``, ``selection.json`` — all with the fields that differ
on every run set aside (timestamps, run ids, durations, and the pickles' SHA-256, which covers
their timestamps) — and the two pickles: every key, and every model's predictions on every
feature row, compared bit for bit. It prints one line per comparison and exits 1 on any
difference.

    python bench/identical.py --data-dir ../shared/data --against 6ccc1d6
    python bench/identical.py --data-dir ../shared/data --against 6ccc1d6 --added-ok
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

# Fields that differ between any two runs of the same version.
VOLATILE = {
    "timestamp",
    "created_at",
    # When the set went live: the clock of the run that trained it (deployments.jsonl).
    "live_since",
    "run_id",
    "models_run_id",
    "duration_seconds",
    "sha256",
    "model_sha256",
}
TRAIN_AS_OF = "2025-03-31"
MONITOR_AS_OF = "2025-09-19"


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _json_lines(path: Path) -> list[Any]:
    return [_strip(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def _run(version: Path, args: list[str], env: dict[str, str]) -> str:
    cmd = [sys.executable, "-m", "volforecast.cli", *args]
    proc = subprocess.run(
        cmd, env={**env, "PYTHONPATH": str(version)}, capture_output=True, text=True
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{' '.join(args[:1])} failed with exit {proc.returncode} ({version})")
    return proc.stdout


def _set_dir(models: Path) -> Path:
    return (models / "current").resolve() if (models / "current").exists() else models


def _predictions(set_dir: Path, name: str, data_dir: str) -> tuple[dict[str, Any], np.ndarray]:
    """The pickle's keys (volatile ones set aside, models replaced by their type) and the
    stacked prediction of every feature row, computed as the spec's snippet does."""
    with (set_dir / name).open("rb") as fh:
        artifact = pickle.load(fh)
    # Both versions' pickles are loaded and fed by this checkout's code: the same rows for
    # both, and a check that pickles written before the change still load after it.
    X = _features(data_dir, artifact)
    stacked = np.column_stack([artifact["xgb_model"].predict(X), artifact["lgbm_model"].predict(X)])
    prediction = artifact["meta_model"].predict(stacked)
    keys = {
        k: (type(v).__name__ if k in ("xgb_model", "lgbm_model", "meta_model") else v)
        for k, v in artifact.items()
        if k not in VOLATILE
    }
    return keys, prediction


def _features(data_dir: str, artifact: dict[str, Any]) -> np.ndarray:
    from volforecast.config import build_settings
    from volforecast.data import load_market_data
    from volforecast.features import build_dataset

    settings = build_settings(data_source="csv", data_dir=data_dir)
    market = load_market_data(settings)
    rows = build_dataset(market.frame, int(artifact.get("horizon", 5)))
    return rows.loc[:, list(artifact["feature_cols"])].to_numpy()


def _added(new: Any, old: Any, path: str = "") -> list[str]:
    """Keys ``new`` has beyond ``old`` (recursively), as dotted paths."""
    if isinstance(new, dict) and isinstance(old, dict):
        out = [f"{path}{k}" for k in new if k not in old]
        for k in new.keys() & old.keys():
            out += _added(new[k], old[k], f"{path}{k}.")
        return out
    if isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        return sorted({a for n, o in zip(new, old, strict=True) for a in _added(n, o, path)})
    return []


def _shared(new: Any, old: Any) -> Any:
    """``new`` restricted to the keys ``old`` has (recursively)."""
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: _shared(new[k], old[k]) for k in old if k in new}
    if isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        return [_shared(n, o) for n, o in zip(new, old, strict=True)]
    return new


def compare(name: str, a: Any, b: Any, failures: list[str], added_ok: bool = False) -> None:
    added = _added(a, b) if added_ok else []
    if added:
        a = _shared(a, b)
    same = bool(np.array_equal(a, b, equal_nan=True)) if isinstance(a, np.ndarray) else a == b
    label = "identical" if same else "DIFFERENT"
    note = f" (keys added: {', '.join(added)})" if added else ""
    print(f"{label:<10} {name}{note}", flush=True)
    if not same:
        failures.append(name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", required=True, help="folder with spy_daily.csv, vix_daily.csv"
    )
    parser.add_argument("--against", required=True, metavar="REF", help="git revision to compare")
    parser.add_argument("--skip-evaluate", action="store_true", help="leave out evaluate")
    parser.add_argument("--skip-select", action="store_true", help="leave out the short select")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and print it")
    parser.add_argument(
        "--added-ok",
        action="store_true",
        help="keys this checkout adds are listed, not counted as differences: every key of REF "
        "must keep its value (the contract's rule: add fields, never rename or drop one)",
    )
    args = parser.parse_args()

    repo = Path(__file__).resolve().parents[1]
    work = Path(tempfile.mkdtemp(prefix="volf-identical-"))
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", args.against, "services"],
        check=True,
        capture_output=True,
    ).stdout
    (work / "previous").mkdir()
    subprocess.run(["tar", "-x", "-C", str(work / "previous")], input=archive, check=True)
    versions = {"this": repo / "services", args.against: work / "previous" / "services"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLF_")}
    out: dict[str, dict[str, Any]] = {}
    for label, version in versions.items():
        root = work / label.replace("/", "_")
        models = root / "models"
        csv = ["--source", "csv", "--data-dir", args.data_dir, "--models-dir", str(models)]
        print(f"running {label} ({version})", flush=True)
        _run(version, ["train", *csv, "--as-of", TRAIN_AS_OF, "--format", "json"], env)
        _run(version, ["monitor", *csv, "--as-of", MONITOR_AS_OF, "--format", "json"], env)
        forecast = _run(version, ["predict", *csv, "--as-of", MONITOR_AS_OF], env)
        got: dict[str, Any] = {
            "forecast": _strip(json.loads(forecast)),
            "training_history.jsonl": _json_lines(models / "training_history.jsonl"),
            "monitoring_history.jsonl": _json_lines(models / "monitoring_history.jsonl"),
        }
        set_dir = _set_dir(models)
        for baseline in ("validation_baseline.json", "dual_model_baseline.json"):
            got[baseline] = _strip(json.loads((set_dir / baseline).read_text()))
        for pkl in ("model_90pct.pkl", "model_100pct.pkl"):
            keys, prediction = _predictions(set_dir, pkl, args.data_dir)
            got[f"{pkl} keys"], got[f"{pkl} predictions"] = keys, prediction
        if not args.skip_evaluate:
            ev = root / "evaluation"
            _run(version, ["evaluate", *csv, "--output", str(ev)], env)
            got["evaluation.json"] = _strip(json.loads((ev / "evaluation.json").read_text()))
            got["forecasts.csv"] = (ev / "forecasts.csv").read_bytes()
        if not args.skip_select:
            sel = root / "selection"
            short = ["--symbols", "spy", "--horizons", "5", "--dev-start", "2007-01-01"]
            short += ["--dev-eval-start", "2011-01-01", "--eval-start", "2012-01-01"]
            short += ["--refit-every", "126", "--output", str(sel)]
            _run(version, ["select", *csv, *short], env)
            got["selection.json"] = _strip(json.loads((sel / "selection.json").read_text()))
        out[label] = got
    failures: list[str] = []
    this, previous = out["this"], out[args.against]
    for name in this:
        compare(name, this[name], previous[name], failures, args.added_ok)
    if args.keep:
        print(f"work folder: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{len(this) - len(failures)} of {len(this)} identical to {args.against}"
        + (f"; different: {', '.join(failures)}" if failures else "")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
