"""Settings (volforecast.config): one class, VOLF_ variables under flags, errors that name the real
flag."""

from __future__ import annotations

import re
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


def test_horizons_are_deduplicated_as_integers_when_given_as_5_and_05():
    from volforecast.config import build_settings

    assert build_settings(horizons="5,05,22").horizons == [5, 22]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"horizons": "x"}, "--horizons / VOLF_HORIZONS: Value error, not a whole number"),
        ({"implied_vol": "QQQ=^VXN,=X"}, "'=X' is not SYMBOL=INDEX"),
        ({"implied_vol": "QQQ=VXN,QQQ=VIX"}, "QQQ is given twice"),
    ],
)
def test_settings_error_names_the_option_and_the_problem_when_a_list_is_malformed(
    overrides, message
):
    from volforecast.config import build_settings
    from volforecast.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        build_settings(**overrides)
    assert ".0" not in str(caught.value).split(":")[1]


def test_implied_vol_accepts_a_caret_spaces_and_a_repeated_identical_entry():
    from volforecast.config import build_settings

    vols = build_settings(implied_vol="QQQ=^VXN, GLD = GVZ ,QQQ=VXN").implied_vol
    assert vols == {"QQQ": "VXN", "GLD": "GVZ"}


def test_universe_file_is_read_when_it_has_a_byte_order_mark_and_crlf_lines(tmp_path: Path):
    from volforecast.config import build_settings

    path = tmp_path / "symbols.txt"
    path.write_bytes("\ufeffSPY\r\nqqq\r\n# a comment\r\n".encode())
    assert build_settings(universe_file=path).universe() == ["SPY", "QQQ"]


def test_universe_file_that_is_not_utf8_exits_2_naming_the_file(project: Path, capsys):
    path = project / "symbols.txt"
    path.write_text("SPY\nQQQ\n", encoding="utf-16")
    assert main(cli_args(project, "predict", "--universe-file", str(path))) == 2
    err = capsys.readouterr().err
    assert f"the universe file {path} is not UTF-8 text" in err and "Traceback" not in err
