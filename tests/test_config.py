"""Settings (volforecast.config): one class, VOLF_ variables under flags, errors that name the real
flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from volforecast.cli import main
from volforecast.config import option_names

from .conftest import cli_args, snapshot


def test_train_exits_2_when_seed_does_not_fit_the_learners(project: Path, capsys):
    assert main(cli_args(project, "train", "--seed", "99999999999999999999")) == 2
    assert "--seed / VOLF_SEED" in capsys.readouterr().err


def test_config_error_names_the_real_flag(project: Path, monkeypatch, capsys):
    monkeypatch.setenv("VOLF_DATA_SOURCE", "bogus")
    assert main(["monitor", "--models-dir", str(project / "models")]) == 2
    assert "--source / VOLF_DATA_SOURCE" in capsys.readouterr().err
    assert option_names("output_dir") == "--output / VOLF_OUTPUT_DIR"


@pytest.mark.parametrize("command", ["train", "monitor", "predict"])
def test_command_exits_2_and_changes_nothing_when_as_of_is_in_the_future(
    project: Path, capsys, command
):
    before = snapshot(project / "models")
    assert main(cli_args(project, command, "--as-of", "2999-01-01")) == 2
    assert "--as-of / VOLF_AS_OF 2999-01-01 is after today" in capsys.readouterr().err
    assert snapshot(project / "models") == before
