"""Integrity of a set (volforecast.store.integrity): edited baselines, rehashed manifests and
malicious pickles refused before anything is unpickled; signed sets."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

from volforecast.cli import main
from volforecast.store import (
    DUAL_FILE,
    MANIFEST_FILE,
    MODEL_A_FILE,
    MONITORING_HISTORY,
    VALIDATION_FILE,
    sha256,
)

from .conftest import TRAINED_ON, cli_args, rehash_manifest, snapshot

KEY = "0123456789abcdef0123456789abcdef"


def _edit_json(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    """Rewrite a set file in place (through the spec name's link), as a hand edit would."""
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2))


@pytest.mark.parametrize(
    ("file", "edit"),
    [
        pytest.param(VALIDATION_FILE, lambda d: d.update(validation_rmse=d["validation_rmse"] / 10), id="rmse_10x_smaller"),
        pytest.param(VALIDATION_FILE, lambda d: d.update(validation_rmse=float("nan")), id="rmse_nan"),
        pytest.param(VALIDATION_FILE, lambda d: d.update(validation_rmse=-1), id="rmse_negative"),
        pytest.param(DUAL_FILE, lambda d: d["model_b"].update(training_date_end="2017-01-02"), id="training_date_end"),
    ],
)  # fmt: skip
def test_monitor_exits_6_when_a_baseline_number_or_date_is_edited(
    project: Path, capsys, file, edit
):
    _edit_json(project / "models" / file, edit)
    before = snapshot(project / "models")
    assert main(cli_args(project, "monitor")) == 6
    assert f"{file} does not match the SHA-256 recorded in manifest.json" in capsys.readouterr().err
    assert snapshot(project / "models") == before


@pytest.mark.parametrize(
    ("value", "message"),
    [(float("nan"), "finite number"), (-1, "greater than 0")],
    ids=["nan", "negative"],
)
def test_monitor_exits_6_when_an_edited_rmse_is_out_of_range_even_with_rehashed_manifest(
    project: Path, capsys, value, message
):
    _edit_json(project / "models" / VALIDATION_FILE, lambda d: d.update(validation_rmse=value))
    rehash_manifest(project / "models")
    assert main(cli_args(project, "monitor")) == 6
    err = capsys.readouterr().err
    assert "validation_baseline.json of the current set is invalid" in err and message in err
    assert not (project / "models" / MONITORING_HISTORY).exists()


def test_monitor_exits_6_when_validation_dates_are_out_of_order_even_with_rehashed_manifest(
    project: Path, capsys
):
    _edit_json(
        project / "models" / VALIDATION_FILE,
        lambda d: d["date_range"].update(val_start=d["date_range"]["train_start"]),
    )
    rehash_manifest(project / "models")
    assert main(cli_args(project, "monitor")) == 6
    assert "dates out of order: train_end < val_start" in capsys.readouterr().err


class _Payload:
    """Unpickling this creates a directory: the proof that a pickle's code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.mkdir, (self.marker,))


def _plant_malicious_pickle(models: Path, marker: Path) -> None:
    """Replace Model A with a payload and rewrite every hash that names it."""
    data = pickle.dumps({"run_id": "x", "payload": _Payload(marker)})
    (models / "current" / MODEL_A_FILE).write_bytes(data)
    digest = sha256(data)
    _edit_json(models / VALIDATION_FILE, lambda d: d.update(model_sha256=digest))
    _edit_json(models / DUAL_FILE, lambda d: d["model_a"].update(sha256=digest))
    rehash_manifest(models)


@pytest.fixture(scope="module")
def signed_set(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `trained` project retrained once with a signing key (shared, never modified)."""
    root = tmp_path_factory.mktemp("signed") / "p"
    shutil.copytree(trained, root, symlinks=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VOLF_SIGNING_KEY", KEY)
        assert main(cli_args(root, "train", "--as-of", TRAINED_ON)) == 0
    return root


@pytest.fixture
def signed_project(signed_set: Path, project: Path, monkeypatch) -> Path:
    """A fresh copy of the signed set, with the key in the environment."""
    shutil.rmtree(project)
    shutil.copytree(signed_set, project, symlinks=True)
    monkeypatch.setenv("VOLF_SIGNING_KEY", KEY)
    return project


def test_signed_set_is_read_when_the_key_matches(signed_project: Path):
    models = signed_project / "models"
    assert (models / "current" / "manifest.sig").is_file()
    assert main(cli_args(signed_project, "monitor")) == 0


def test_monitor_refuses_rehashed_malicious_pickle_before_it_runs_when_signing(
    signed_project: Path, tmp_path: Path, capsys
):
    marker = tmp_path / "payload-ran"
    _plant_malicious_pickle(signed_project / "models", marker)
    for command in ("monitor", "predict", "report"):
        assert main(cli_args(signed_project, command)) == 6
        assert "signature of set" in capsys.readouterr().err
    assert not marker.exists()


def test_hashes_alone_do_not_stop_a_rehashed_pickle_which_is_why_signing_exists(
    project: Path, tmp_path: Path
):
    # The threat model in models/README.md: without a key, whoever can write the volume can
    # rewrite the hashes too. This pins that documented limit.
    marker = tmp_path / "payload-ran"
    _plant_malicious_pickle(project / "models", marker)
    assert main(cli_args(project, "monitor")) == 6
    assert marker.exists()


def test_reader_with_a_key_refuses_an_unsigned_set(project: Path, monkeypatch, capsys):
    monkeypatch.setenv("VOLF_SIGNING_KEY", KEY)
    assert main(cli_args(project, "predict")) == 6
    assert "is not signed, and a signing key is configured" in capsys.readouterr().err


def test_reader_refuses_a_set_signed_with_another_key(signed_project: Path, monkeypatch, capsys):
    monkeypatch.setenv("VOLF_SIGNING_KEY", "another-key-of-enough-length-000")
    assert main(cli_args(signed_project, "monitor")) == 6
    assert "signed with another key" in capsys.readouterr().err


def test_key_file_signs_like_the_key(project: Path, tmp_path: Path, monkeypatch):
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    monkeypatch.setenv("VOLF_SIGNING_KEY_FILE", str(key_file))
    assert main(cli_args(project, "train", "--as-of", TRAINED_ON)) == 0
    monkeypatch.delenv("VOLF_SIGNING_KEY_FILE")
    monkeypatch.setenv("VOLF_SIGNING_KEY", KEY)
    assert main(cli_args(project, "monitor")) == 0


def test_short_signing_key_is_a_configuration_error(project: Path, monkeypatch, capsys):
    monkeypatch.setenv("VOLF_SIGNING_KEY", "short")
    assert main(cli_args(project, "train")) == 2
    assert "at least 16 are needed" in capsys.readouterr().err


@pytest.mark.parametrize("name", [MANIFEST_FILE, MODEL_A_FILE, DUAL_FILE])
def test_predict_exits_6_naming_the_file_when_a_set_file_is_a_directory(
    project: Path, capsys, name
):
    path = project / "models" / "current" / name
    path.unlink()
    path.mkdir()
    assert main(cli_args(project, "predict")) == 6
    err = capsys.readouterr().err
    assert f"{name} cannot be read" in err and "Traceback" not in err


def test_predict_exits_6_when_the_current_link_is_a_loop(project: Path, capsys):
    current = project / "models" / "current"
    current.unlink()
    current.symlink_to("current")  # `ln -s current models/current`
    assert main(cli_args(project, "predict")) == 6
    assert "the link is a loop or damaged" in capsys.readouterr().err
