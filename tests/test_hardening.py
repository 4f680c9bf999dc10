"""The adversarial cases of the hardening issue, one test per row of its table (numbered), plus
signed sets, read-only readers, SIGTERM and implausible data. Each asserts the exit code, the
message and what changed on disk."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from volforecast import atomic
from volforecast.cli import main
from volforecast.config import option_names
from volforecast.store import (
    DUAL_FILE,
    MANIFEST_FILE,
    MODEL_A_FILE,
    MONITORING_HISTORY,
    TRAINING_HISTORY,
    VALIDATION_FILE,
    ModelsDirectory,
    sha256,
)
from volforecast.store import history as store_history

from .conftest import cli_args, snapshot

TRAINED_ON = "2018-01-25"  # day 800 of the synthetic data: the `project` fixture's training day
KEY = "0123456789abcdef0123456789abcdef"


def _edit_json(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    """Rewrite a set file in place (through the spec name's link), as a hand edit would."""
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2))


def _rehash(models: Path) -> None:
    """What an attacker who can write the volume does next: make the manifest agree again."""
    set_dir = models / "current"
    manifest = json.loads((set_dir / MANIFEST_FILE).read_text())
    for name in manifest["files"]:
        manifest["files"][name] = sha256((set_dir / name).read_bytes())
    (set_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))


def _csv_cell(project: Path, row: int, column: str, value: str) -> None:
    path = project / "data" / "spy_daily.csv"
    frame = pd.read_csv(path, dtype=str)
    frame.loc[row, column] = value
    frame.to_csv(path, index=False)


# ------------------------------------------------------------------ 1-3: the commit point


def test_1_train_leaves_directory_as_before_and_says_so_when_history_append_fills_disk(
    project: Path, monkeypatch, capsys
):
    before = snapshot(project / "models")
    real = ModelsDirectory.append_history

    def full(self: ModelsDirectory, name: str, record: object) -> None:
        if name == TRAINING_HISTORY:
            raise store_history.storage_error(
                "append to", self.root / name, OSError(errno.ENOSPC, "No space left on device")
            )
        real(self, name, record)  # type: ignore[arg-type]

    monkeypatch.setattr(ModelsDirectory, "append_history", full)
    assert main(cli_args(project, "train", "--as-of", TRAINED_ON)) == 8
    err = capsys.readouterr().err
    assert "No space left on device" in err and "nothing was changed" in err
    assert "stays current" in err
    assert snapshot(project / "models") == before


def test_2_next_train_removes_a_dead_runs_complete_set_instead_of_archiving_it(project: Path):
    models = project / "models"
    live = (models / "current").readlink().name
    # A run SIGKILLed after renaming its complete set into sets/, before switching `current`:
    shutil.copytree(models / "sets" / live, models / "sets" / "20990101T000000Z-dead00")
    assert main(cli_args(project, "train", "--as-of", TRAINED_ON)) == 0
    assert [p.name for p in (models / "sets").iterdir()] == [(models / "current").readlink().name]
    assert [p.name.split("_", 1)[1] for p in (models / "archive").iterdir()] == [live]


def test_3_train_leaves_no_set_behind_when_models_directory_refuses_the_switch(
    project: Path, monkeypatch, capsys
):
    before = snapshot(project / "models")
    real = atomic.replace_symlink

    def immutable(link: Path, target: str) -> None:  # `chattr +i models/`
        if link.parent == project / "models" and str(link.readlink()) != target:
            raise OSError(errno.EPERM, "Operation not permitted")
        real(link, target)

    monkeypatch.setattr(atomic, "replace_symlink", immutable)
    assert main(cli_args(project, "train", "--as-of", TRAINED_ON)) == 8
    assert "nothing was changed" in capsys.readouterr().err
    assert snapshot(project / "models") == before


# ------------------------------------------------------------------ 4: a full disk under monitor


def test_4_monitor_leaves_no_torn_fragment_when_disk_fills_twice(project: Path, monkeypatch):
    assert main(cli_args(project, "monitor")) == 0
    history = project / "models" / MONITORING_HISTORY
    before = history.read_bytes()
    real_write = os.write
    monkeypatch.setattr(atomic.os, "write", lambda fd, data: real_write(fd, bytes(data)[:65]))
    assert main(cli_args(project, "monitor")) == 8
    assert main(cli_args(project, "monitor")) == 8
    assert history.read_bytes() == before


# ------------------------------------------------------------------ 5: baselines' content


@pytest.mark.parametrize(
    ("file", "edit"),
    [
        pytest.param(VALIDATION_FILE, lambda d: d.update(validation_rmse=d["validation_rmse"] / 10), id="rmse_10x_smaller"),
        pytest.param(VALIDATION_FILE, lambda d: d.update(validation_rmse=float("nan")), id="rmse_nan"),
        pytest.param(VALIDATION_FILE, lambda d: d.update(validation_rmse=-1), id="rmse_negative"),
        pytest.param(DUAL_FILE, lambda d: d["model_b"].update(training_date_end="2017-01-02"), id="training_date_end"),
    ],
)  # fmt: skip
def test_5_monitor_exits_6_when_a_baseline_number_or_date_is_edited(
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
def test_5_monitor_exits_6_when_an_edited_rmse_is_out_of_range_even_with_rehashed_manifest(
    project: Path, capsys, value, message
):
    _edit_json(project / "models" / VALIDATION_FILE, lambda d: d.update(validation_rmse=value))
    _rehash(project / "models")
    assert main(cli_args(project, "monitor")) == 6
    err = capsys.readouterr().err
    assert "validation_baseline.json of the current set is invalid" in err and message in err
    assert not (project / "models" / MONITORING_HISTORY).exists()


def test_5_monitor_exits_6_when_validation_dates_are_out_of_order_even_with_rehashed_manifest(
    project: Path, capsys
):
    _edit_json(
        project / "models" / VALIDATION_FILE,
        lambda d: d["date_range"].update(val_start=d["date_range"]["train_start"]),
    )
    _rehash(project / "models")
    assert main(cli_args(project, "monitor")) == 6
    assert "dates out of order: train_end < val_start" in capsys.readouterr().err


# ------------------------------------------------------------------ 6: broken histories


@pytest.mark.parametrize("command", ["monitor", "predict", "report"])
def test_6_command_exits_6_with_a_message_when_monitoring_history_is_a_directory(
    project: Path, capsys, command
):
    (project / "models" / MONITORING_HISTORY).mkdir()
    assert main(cli_args(project, command)) == 6
    assert "monitoring_history.jsonl cannot be read" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["monitor", "predict", "report"])
def test_6_command_skips_a_history_line_nested_too_deep_to_parse(project: Path, capsys, command):
    (project / "models" / MONITORING_HISTORY).write_bytes(b"[" * 200_000 + b"\n")
    assert main(cli_args(project, command)) == 0
    assert "line 1 is not a valid record" in capsys.readouterr().err


# ------------------------------------------------------------------ 7: signed sets


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
    _rehash(models)


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


def test_7_signed_set_is_read_when_the_key_matches(signed_project: Path):
    models = signed_project / "models"
    assert (models / "current" / "manifest.sig").is_file()
    assert main(cli_args(signed_project, "monitor")) == 0


def test_7_monitor_refuses_rehashed_malicious_pickle_before_it_runs_when_signing(
    signed_project: Path, tmp_path: Path, capsys
):
    marker = tmp_path / "payload-ran"
    _plant_malicious_pickle(signed_project / "models", marker)
    for command in ("monitor", "predict", "report"):
        assert main(cli_args(signed_project, command)) == 6
        assert "signature of set" in capsys.readouterr().err
    assert not marker.exists()


def test_7_hashes_alone_do_not_stop_a_rehashed_pickle_which_is_why_signing_exists(
    project: Path, tmp_path: Path
):
    # The threat model in models/README.md: without a key, whoever can write the volume can
    # rewrite the hashes too. This pins that documented limit.
    marker = tmp_path / "payload-ran"
    _plant_malicious_pickle(project / "models", marker)
    assert main(cli_args(project, "monitor")) == 6
    assert marker.exists()


def test_7_reader_with_a_key_refuses_an_unsigned_set(project: Path, monkeypatch, capsys):
    monkeypatch.setenv("VOLF_SIGNING_KEY", KEY)
    assert main(cli_args(project, "predict")) == 6
    assert "is not signed, and a signing key is configured" in capsys.readouterr().err


def test_7_reader_refuses_a_set_signed_with_another_key(signed_project: Path, monkeypatch, capsys):
    monkeypatch.setenv("VOLF_SIGNING_KEY", "another-key-of-enough-length-000")
    assert main(cli_args(signed_project, "monitor")) == 6
    assert "signed with another key" in capsys.readouterr().err


def test_7_key_file_signs_like_the_key(project: Path, tmp_path: Path, monkeypatch):
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    monkeypatch.setenv("VOLF_SIGNING_KEY_FILE", str(key_file))
    assert main(cli_args(project, "train", "--as-of", TRAINED_ON)) == 0
    monkeypatch.delenv("VOLF_SIGNING_KEY_FILE")
    monkeypatch.setenv("VOLF_SIGNING_KEY", KEY)
    assert main(cli_args(project, "monitor")) == 0


def test_7_short_signing_key_is_a_configuration_error(project: Path, monkeypatch, capsys):
    monkeypatch.setenv("VOLF_SIGNING_KEY", "short")
    assert main(cli_args(project, "train")) == 2
    assert "at least 16 are needed" in capsys.readouterr().err


# ------------------------------------------------------------------ 8: feature drift without reference


def test_8_monitor_skips_feature_drift_and_says_so_when_start_is_after_training(
    project: Path, capsys
):
    assert main(cli_args(project, "monitor", "--start", "2017-09-01")) == 0
    err = capsys.readouterr().err
    assert "feature drift not computed: only 0 of Model A's training rows" in err
    line = (project / "models" / MONITORING_HISTORY).read_text().splitlines()[-1]
    assert json.loads(line)["feature_drift"]["skipped"].startswith("only 0 of")


# ------------------------------------------------------------------ 9-11: data


@pytest.mark.parametrize(
    ("row", "column", "value", "message"),
    [
        pytest.param(3, "date", "2015-01-08 00:00:00+05:00", "mixed time zones", id="9_mixed_offsets"),
        pytest.param(3, "date", "01/08/2015", "dates must be YYYY-MM-DD", id="us_date_format"),
        pytest.param(40, "high", "inf", "row 42 (2015-02-27) has a non-finite high", id="11_inf_high"),
        pytest.param(899, "high", "inf", "has a non-finite high", id="11_inf_high_last_row"),
        pytest.param(50, "adj_close", "1e-300", "beyond the plausible factor of 3", id="tiny_price"),
        pytest.param(50, "high", "1e10", "over 3 times its low", id="huge_high"),
    ],
)  # fmt: skip
def test_9_11_train_exits_3_on_implausible_or_non_iso_data(
    project: Path, capsys, row, column, value, message
):
    if column == "date":
        _csv_cell(project, 2, "date", "2015-01-07 00:00:00-05:00")
    _csv_cell(project, row, column, value)
    before = snapshot(project / "models")
    assert main(cli_args(project, "train")) == 3
    err = capsys.readouterr().err
    assert message in err and "Fix:" in err
    assert snapshot(project / "models") == before


def test_11_predict_exits_3_instead_of_forecasting_from_the_day_before_when_last_row_is_inf(
    project: Path, capsys
):
    _csv_cell(project, 899, "low", "inf")
    assert main(cli_args(project, "predict")) == 3
    assert "non-finite low" in capsys.readouterr().err


def test_10_train_exits_3_naming_the_file_when_it_cannot_be_read(
    project: Path, monkeypatch, capsys
):
    def denied(path: object, *_a: object, **_k: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(pd, "read_csv", denied)
    assert main(cli_args(project, "train")) == 3
    err = capsys.readouterr().err
    assert "spy_daily.csv: cannot be read (Permission denied)" in err and "Fix:" in err


# ------------------------------------------------------------------ 12-13: configuration


def test_12_train_exits_2_when_seed_does_not_fit_the_learners(project: Path, capsys):
    assert main(cli_args(project, "train", "--seed", "99999999999999999999")) == 2
    assert "--seed / VOLF_SEED" in capsys.readouterr().err


def test_13_config_error_names_the_real_flag(project: Path, monkeypatch, capsys):
    monkeypatch.setenv("VOLF_DATA_SOURCE", "bogus")
    assert main(["monitor", "--models-dir", str(project / "models")]) == 2
    assert "--source / VOLF_DATA_SOURCE" in capsys.readouterr().err
    assert option_names("output_dir") == "--output / VOLF_OUTPUT_DIR"


# ------------------------------------------------------------------ 14: parallel reports


def test_14_parallel_reports_into_one_output_directory_all_succeed(project: Path, tmp_path: Path):
    out = tmp_path / "same"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLF_")}
    command = [sys.executable, "-m", "volforecast.cli",
               *cli_args(project, "report", "--output", str(out), "--log-level", "WARNING")]  # fmt: skip
    procs = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(8)
    ]
    errors = [p.communicate()[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, errors
    assert not [p.name for p in out.iterdir() if p.name.startswith(".tmp-")]
    assert json.loads((out / "report.json").read_text())["summary"]["training_runs"] == 1


# ------------------------------------------------------------------ 15: a removed lock file


def test_15_train_stops_before_commit_when_lock_file_is_replaced_during_the_run(
    project: Path, monkeypatch, capsys
):
    from volforecast import training

    real = training.load_market_data

    def meanwhile(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        lock = project / "models" / ".lock"
        lock.unlink()  # `rm models/.lock` while train runs; another run may lock a new file
        lock.touch()
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(training, "load_market_data", meanwhile)
    before = snapshot(project / "models")
    assert main(cli_args(project, "train", "--as-of", TRAINED_ON)) == 7
    assert "was removed or replaced while this run held it" in capsys.readouterr().err
    assert snapshot(project / "models") == before


# ------------------------------------------------------------------ readers need no write access


@pytest.mark.parametrize("command", ["monitor", "predict", "report"])
def test_reader_exits_4_and_creates_nothing_when_models_dir_is_mistyped(
    project: Path, capsys, command
):
    typo = project / "modles"
    assert main(cli_args(project, command, "--models-dir", str(typo))) == 4
    assert "does not exist" in capsys.readouterr().err
    assert not typo.exists()


def test_predict_and_report_take_no_lock(project: Path, tmp_path: Path, monkeypatch):
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("a reader took the lock")

    (project / "models" / ".lock").unlink(missing_ok=True)
    monkeypatch.setattr(ModelsDirectory, "lock", refuse)
    before = snapshot(project / "models")
    assert main(cli_args(project, "predict")) == 0
    assert main(cli_args(project, "report", "--output", str(tmp_path / "r"))) == 0
    assert snapshot(project / "models") == before


@contextlib.contextmanager
def _read_only_view(source: Path, target: Path) -> Iterator[Path]:
    target.mkdir()
    bound = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True)
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bound.stderr.decode().strip()}")
    try:
        ro = subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], capture_output=True)
        if ro.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {ro.stderr.decode().strip()}")
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=False)


def test_predict_and_report_work_on_a_read_only_models_volume(
    project: Path, tmp_path: Path, capsys
):
    with _read_only_view(project / "models", tmp_path / "ro") as ro:
        with pytest.raises(OSError, match="Read-only file system"):
            (ro / "probe").write_text("x")
        assert main(cli_args(project, "predict", "--models-dir", str(ro))) == 0
        out = tmp_path / "report"
        assert main(cli_args(project, "report", "--models-dir", str(ro), "--output", str(out))) == 0
        assert (out / "report.html").is_file()
        capsys.readouterr()
        assert main(cli_args(project, "monitor", "--models-dir", str(ro))) == 8
        assert "Read-only file system" in capsys.readouterr().err


# ------------------------------------------------------------------ SIGTERM


# A train whose fit announces itself and then takes as long as needed: the signal then always
# lands mid-run, however slow or fast the machine is.
SLOW_TRAIN = """
import sys, time
from volforecast import training
def fit(*args, **kwargs):
    print("FITTING", file=sys.stderr, flush=True)
    time.sleep(600)
training.fit_on_split = fit
from volforecast.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_train_exits_143_with_a_log_line_and_unchanged_directory_on_sigterm(project: Path):
    before = snapshot(project / "models")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLF_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_TRAIN, *cli_args(project, "train")],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("FITTING"):
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.communicate(timeout=600)[1]
    assert proc.returncode == 143
    assert "stopped by SIGTERM" in "".join(lines) + rest
    assert snapshot(project / "models") == before
