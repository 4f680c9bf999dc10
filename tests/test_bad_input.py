"""The bad-input matrix: each case gives a clear message, its documented exit code, and leaves
the models directory (sets, links, histories) exactly as it was."""

from __future__ import annotations

import errno
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from volforecast.cli import main

from .conftest import cli_args, lock_held_by_another_process, snapshot

Setup = Callable[[Path, pytest.MonkeyPatch], None]


def _edit_spy(edit: Callable[[list[str]], list[str]]) -> Setup:
    def setup(root: Path, _mp: pytest.MonkeyPatch) -> None:
        path = root / "data" / "spy_daily.csv"
        path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")

    return setup


def _set_cell(row: int, col: int, value: str) -> Callable[[list[str]], list[str]]:
    def edit(lines: list[str]) -> list[str]:
        cells = lines[row].split(",")
        cells[col] = value
        lines[row] = ",".join(cells)
        return lines

    return edit


def _swap_high_low(row: int) -> Callable[[list[str]], list[str]]:
    def edit(lines: list[str]) -> list[str]:
        cells = lines[row].split(",")
        cells[2], cells[3] = cells[3], cells[2]
        lines[row] = ",".join(cells)
        return lines

    return edit


def _yahoo(answer: object) -> Setup:
    def setup(_root: Path, mp: pytest.MonkeyPatch) -> None:
        import yfinance

        def download(*_a: object, **_k: object) -> object:
            if isinstance(answer, Exception):
                raise answer
            return answer

        mp.setattr(yfinance, "download", download)
        mp.setattr("volforecast.data.time.sleep", lambda _s: None)

    return setup


def _rate_limited() -> Exception:
    from yfinance.exceptions import YFRateLimitError

    return YFRateLimitError()


def _write(name: str, text: str) -> Setup:
    return lambda root, _mp: (root / "models" / name).write_text(text) and None


def _pickle_from_another_run(root: Path, _mp: pytest.MonkeyPatch) -> None:
    other = root / "other"
    code = main(["train", "--source", "csv", "--data-dir", str(root / "data"), "--models-dir", str(other),
                 "--start", "2000-01-01", "--as-of", "2017-12-29"])  # fmt: skip
    assert code == 0
    (root / "models" / "model_90pct.pkl").write_bytes((other / "model_90pct.pkl").read_bytes())
    shutil.rmtree(other)


def _models_dir_is_a_file(root: Path, _mp: pytest.MonkeyPatch) -> None:
    # Stands in for an unwritable directory: the suite runs as root, which ignores permissions.
    (root / "models" / "nested").write_text("not a directory")


def _disk_full(_root: Path, mp: pytest.MonkeyPatch) -> None:
    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    mp.setattr("volforecast.atomic.write_new_file", full)


CASES = [
    # (id, command, setup, extra args, exit code, message)
    ("empty_csv", "train", _edit_spy(lambda _l: []), [], 3, "not a readable CSV"),
    ("missing_columns", "train", _edit_spy(lambda ls: [",".join(x.split(",")[:3]) for x in ls]), [], 3, "missing column(s) low, close"),
    ("nan_price", "train", _edit_spy(_set_cell(40, 4, "nan")), [], 3, "row 41 (2015-02-26) has no numeric close"),
    ("duplicate_dates", "train", _edit_spy(lambda ls: [*ls[:9], ls[8], *ls[9:]]), [], 3, "row 10 repeats the date"),
    ("unsorted_dates", "train", _edit_spy(lambda ls: [ls[0], ls[2], ls[1], *ls[3:]]), [], 3, "rows are not sorted"),
    ("non_positive_price", "train", _edit_spy(_set_cell(7, 1, "0")), [], 3, "non-positive open"),
    ("non_positive_adj_close", "train", _edit_spy(_set_cell(10, 5, "-1")), [], 3, "non-positive adj_close"),
    ("high_below_low", "train", _edit_spy(_swap_high_low(20)), [], 3, "below low"),
    ("missing_file", "train", lambda root, _mp: (root / "data" / "spy_daily.csv").unlink(), [], 3, "file not found"),
    ("future_dates", "train", _edit_spy(lambda ls: [*ls, "2999-01-04,1,2,0.5,1,1,10"]), [], 3, "after today"),
    ("vix_missing_whole_period", "train",
     lambda root, _mp: (root / "data" / "vix_daily.csv").write_text("date,open,high,low,close\n") and None,
     [], 3, "vix_daily.csv: no rows"),
    ("history_too_short", "train", _edit_spy(lambda ls: ls[:400]), [], 3, "training needs at least 500"),
    ("yahoo_empty_frame", "train", _yahoo(pd.DataFrame()), ["--source", "yahoo"], 3, "an empty table"),
    ("yahoo_raises", "train", _yahoo(ConnectionError("boom")), ["--source", "yahoo"], 3, "ConnectionError: boom"),
    ("yahoo_rate_limited", "train", _yahoo(_rate_limited()), ["--source", "yahoo"], 3, "YFRateLimitError"),
    ("corrupt_baseline", "monitor", _write("dual_model_baseline.json", "{not json"), [], 6, "dual_model_baseline.json does not match the SHA-256"),
    ("missing_pickle", "monitor", lambda root, _mp: (root / "models" / "current" / "model_90pct.pkl").unlink(), [], 6, "lacks model_90pct.pkl"),
    ("pickle_from_another_run", "monitor", _pickle_from_another_run, [], 6, "does not match the SHA-256"),
    ("unwritable_models_dir", "train", _models_dir_is_a_file, ["--models-dir", "models/nested"], 8, "cannot create"),
    ("disk_full", "train", _disk_full, [], 8, "No space left on device"),
    ("no_new_data", "monitor", lambda _r, _mp: None, ["--as-of", "2017-06-01"], 5, "no labeled rows after"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("command", "setup", "extra", "code", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input_gives_clear_message_and_exit_code_and_keeps_models(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys, command, setup, extra, code, message
):
    setup(project, monkeypatch)
    before = snapshot(project / "models")
    assert main(cli_args(project, command, *extra)) == code
    err = capsys.readouterr().err
    assert message in err
    assert "Fix:" in err
    assert snapshot(project / "models") == before


def test_second_train_exits_7_when_lock_is_held_past_timeout(project: Path, capsys):
    with lock_held_by_another_process(project / "models"):
        before = snapshot(project / "models")
        args = ["train", "--source", "csv", "--data-dir", str(project / "data"),
                "--models-dir", str(project / "models"), "--lock-timeout", "0.5"]  # fmt: skip
        assert main(args) == 7
        assert "another volforecast run holds" in capsys.readouterr().err
        assert snapshot(project / "models") == before
