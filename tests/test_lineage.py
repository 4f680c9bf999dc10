"""Lineage (volforecast.lineage): what built each set — a digest of its data and the library
versions — recorded at training and checked when the set is loaded."""

from __future__ import annotations

import json
from pathlib import Path

from volforecast import lineage
from volforecast.cli import main
from volforecast.data import align, validate_prices
from volforecast.store import MANIFEST_FILE, RECORD_FILE, TRAINING_HISTORY

from .conftest import cli_args, rehash_manifest, synthetic_market


def _frame(seed: int = 7):  # type: ignore[no-untyped-def]
    spy, vix = synthetic_market(n_days=300, seed=seed)
    return align(validate_prices(spy, "s"), validate_prices(vix, "v"))


def test_data_digest_is_the_same_when_the_data_is_and_differs_when_one_price_changes():
    frame = _frame()
    digest = lineage.data_digest(frame, "SPY", "VIX")
    assert digest == lineage.data_digest(_frame(), "SPY", "VIX")
    changed = frame.copy()
    changed.iloc[100, changed.columns.get_loc("spy_adj_close")] *= 1.001
    other = lineage.data_digest(changed, "SPY", "VIX")
    assert other["SPY"] != digest["SPY"] and other["VIX"] == digest["VIX"]


def test_training_record_and_manifest_carry_the_data_digest_and_library_versions(project: Path):
    models = project / "models"
    record = json.loads((models / TRAINING_HISTORY).read_text().splitlines()[-1])
    manifest = json.loads((models / "current" / MANIFEST_FILE).read_text())
    assert set(record["data_digest"]) == {"SPY", "VIX"}
    assert record["library_versions"] == lineage.library_versions()
    assert {"xgboost", "lightgbm", "scikit-learn", "numpy", "pandas", "python"} <= set(
        record["library_versions"]
    )
    assert manifest["data_digest"] == record["data_digest"]
    assert manifest["library_versions"] == record["library_versions"]
    assert record["implied_vol"] == "VIX"


def _record_versions(models: Path, **versions: str) -> None:
    path = models / "current" / RECORD_FILE
    record = json.loads(path.read_text())
    record["library_versions"].update(versions)
    path.write_text(json.dumps(record, indent=2))
    rehash_manifest(models)


def test_predict_exits_6_naming_the_fix_when_a_pickled_library_has_another_major_version(
    project: Path, capsys
):
    _record_versions(project / "models", xgboost="1.7.6")
    assert main(cli_args(project, "predict")) == 6
    err = capsys.readouterr().err
    assert "trained with xgboost 1.7.6" in err and "Fix: run `volforecast train`" in err


def test_predict_warns_and_forecasts_when_only_a_minor_version_differs(project: Path, capsys):
    installed = lineage.library_versions()["lightgbm"]
    major = installed.split(".")[0]
    _record_versions(project / "models", lightgbm=f"{major}.0.0-older")
    assert main(cli_args(project, "predict")) == 0
    assert f"lightgbm {major}.0.0-older -> {installed}" in capsys.readouterr().err
