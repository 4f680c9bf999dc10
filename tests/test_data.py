from __future__ import annotations

import datetime as dt
import errno
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from volforecast.cli import main
from volforecast.data import (
    YahooDownloader,
    _flatten_yahoo,
    align,
    apply_bad_rows,
    glitches,
    load_market_data,
    read_price_csv,
    refresh_cache,
    validate_prices,
)
from volforecast.errors import DataError

from .conftest import StubDownloader, cli_args, snapshot, synthetic_market, write_market


def _spy(rows: list[tuple[str, float, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["date", "open", "high", "low", "close"])


GOOD = [("2020-01-02", 10.0, 11.0, 9.0, 10.5), ("2020-01-03", 10.5, 11.5, 10.0, 11.0)]


@pytest.mark.parametrize(
    ("rows", "columns", "message"),
    [
        ([], None, "no rows"),
        (GOOD, ["date", "open", "high", "close"], "missing column(s) low"),
        (
            [("2020-01-02", 10, 11, 9, 10), ("02/30/2020", 10, 11, 9, 10)],
            None,
            "row 3 has an unparsable date",
        ),
        (
            [("2020-01-02", 10, 11, 9, 10), ("2020-01-02", 10, 11, 9, 10)],
            None,
            "row 3 repeats the date 2020-01-02",
        ),
        (
            [("2020-01-03", 10, 11, 9, 10), ("2020-01-02", 10, 11, 9, 10)],
            None,
            "rows are not sorted",
        ),
        (
            [("2020-01-02", 10, 11, 9, 10), ("2020-01-03", 10, 11, 9, 0)],
            None,
            "row 3 (2020-01-03) has a non-positive close",
        ),
        (
            [("2020-01-02", 10, 11, 9, 10), ("2020-01-03", 10, 11, 9, np.nan)],
            None,
            "has no numeric close",
        ),
        ([("2020-01-02", 10, 9, 11, 10)], None, "has high 9.0 below low 11.0"),
        ([("2030-01-02", 10, 11, 9, 10)], None, "after today"),
    ],
)
def test_validate_prices_raises_naming_row_when_input_is_bad(rows, columns, message):
    frame = _spy(rows) if columns is None else _spy(rows)[columns]
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_prices(frame, "spy.csv", today=dt.date(2026, 1, 1))


def test_validate_prices_uses_close_as_adjusted_close_when_column_absent():
    out = validate_prices(_spy(GOOD), "x")
    assert out["adj_close"].tolist() == [10.5, 11.0]
    assert out.index.name == "date"


def test_read_price_csv_names_file_and_fix_when_missing(tmp_path: Path):
    with pytest.raises(DataError, match=r"spy_daily.csv: file not found\. Fix"):
        read_price_csv(tmp_path / "spy_daily.csv")


def test_read_price_csv_raises_when_file_is_empty(tmp_path: Path):
    (tmp_path / "spy_daily.csv").write_text("")
    with pytest.raises(DataError, match="not a readable CSV"):
        read_price_csv(tmp_path / "spy_daily.csv")


def _frame(dates: list[str], values: list[float]) -> pd.DataFrame:
    idx = pd.DatetimeIndex(pd.to_datetime(dates), name="date")
    return pd.DataFrame(
        {"open": values, "high": values, "low": values, "close": values, "adj_close": values},
        index=idx,
    )


def test_align_drops_vix_holidays_and_fills_short_gaps_from_the_past():
    spy = _frame(["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"], [1, 2, 3, 4])
    vix = _frame(["2020-01-02", "2020-01-04", "2020-01-06"], [20, 99, 22])
    out = align(spy, vix)
    assert out["vix_close"].tolist() == [20, 20, 22, 22]
    assert list(out.index.strftime("%Y-%m-%d")) == [
        "2020-01-02",
        "2020-01-03",
        "2020-01-06",
        "2020-01-07",
    ]


def test_align_drops_spy_days_before_first_vix_value():
    spy = _frame(["2020-01-02", "2020-01-03", "2020-01-06"], [1, 2, 3])
    vix = _frame(["2020-01-03", "2020-01-06"], [20, 21])
    assert len(align(spy, vix)) == 2


def test_align_raises_when_vix_missing_for_more_than_three_days():
    days = pd.bdate_range("2020-01-01", periods=8).strftime("%Y-%m-%d").tolist()
    spy = _frame(days, list(range(1, 9)))
    vix = _frame([days[0], days[7]], [20, 21])
    with pytest.raises(DataError, match="more than 3 consecutive"):
        align(spy, vix)


def test_align_raises_when_vix_is_empty():
    spy = _frame(["2020-01-02"], [1])
    with pytest.raises(DataError, match="no VIX rows"):
        align(spy, _frame([], []))


def test_load_market_data_stops_at_as_of_when_replaying(market_dir, make_settings):
    data = load_market_data(make_settings(as_of=dt.date(2016, 3, 31)))
    assert data.last_date == dt.date(2016, 3, 31)


def test_load_market_data_raises_when_vix_absent_for_whole_period(tmp_path, make_settings):
    spy, vix = synthetic_market(n_days=50)
    vix["date"] = pd.bdate_range("2030-01-01", periods=50).strftime("%Y-%m-%d")
    write_market(tmp_path / "data", spy, vix.iloc[:0])
    with pytest.raises(DataError, match="no rows"):
        load_market_data(make_settings())


def test_load_market_data_reads_sample_when_offline(make_settings):
    data = load_market_data(make_settings(data_source="sample"))
    assert (data.first_date, data.last_date) == (dt.date(2014, 1, 3), dt.date(2018, 12, 31))
    assert len(data.frame) == 1257
    assert not data.frame.isna().any().any()


# --------------------------------------------------------------------------- yahoo


def test_flatten_yahoo_handles_multiindex_columns():
    idx = pd.DatetimeIndex(["2020-01-02", "2020-01-03"], name="Date", tz="America/New_York")
    cols = pd.MultiIndex.from_product(
        [["Adj Close", "Close", "High", "Low", "Open", "Volume"], ["SPY"]],
        names=["Price", "Ticker"],
    )
    raw = pd.DataFrame(np.full((2, 6), 5.0), index=idx, columns=cols)
    out = _flatten_yahoo(raw, "SPY")
    assert list(out.columns) == ["date", "open", "high", "low", "close", "adj_close", "volume"]
    assert validate_prices(out, "y").index[0] == pd.Timestamp("2020-01-02")


def _yahoo_with(monkeypatch, answers):
    import yfinance

    calls = []

    def fake_download(*args, **kwargs):
        calls.append(args)
        answer = answers[min(len(calls) - 1, len(answers) - 1)]
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(yfinance, "download", fake_download)
    return calls


def test_yahoo_downloader_retries_then_raises_clear_error_when_answers_are_empty(
    monkeypatch, tmp_path
):
    calls = _yahoo_with(monkeypatch, [pd.DataFrame()])
    sleeps: list[float] = []
    loader = YahooDownloader(tmp_path, retries=3, backoff=1.0, sleep=sleeps.append)
    with pytest.raises(
        DataError, match=r"could not download SPY after 3 attempts \(last: an empty table"
    ):
        loader("SPY", dt.date(2020, 1, 1), None)
    assert len(calls) == 3
    assert sleeps == [1.0, 2.0]


def test_yahoo_downloader_recovers_when_rate_limit_passes(monkeypatch, tmp_path):
    from yfinance.exceptions import YFRateLimitError

    good = pd.DataFrame(
        {
            "Open": [1.0],
            "High": [2.0],
            "Low": [0.5],
            "Close": [1.5],
            "Adj Close": [1.4],
            "Volume": [9],
        },
        index=pd.DatetimeIndex(["2020-01-02"], name="Date"),
    )
    _yahoo_with(monkeypatch, [YFRateLimitError(), good])
    out = YahooDownloader(tmp_path, retries=2, sleep=lambda _s: None)(
        "SPY", dt.date(2020, 1, 1), None
    )
    assert out["adj_close"].tolist() == [1.4]
    assert (tmp_path / ".yfinance-cache").is_dir()


def test_refresh_cache_rescales_cached_adjusted_close_when_dividend_appears(tmp_path):
    spy, _ = synthetic_market(n_days=40)
    old = spy.iloc[:30].copy()
    write_market(tmp_path, old, old)
    new = spy.copy()
    new["adj_close"] = new["close"] * 0.99  # a dividend re-scales all history
    stub = StubDownloader({"SPY": new})
    merged, stale = refresh_cache(
        tmp_path / "spy_daily.csv",
        "SPY",
        dt.date(2015, 1, 1),
        stub,
        require_ohlc=True,
        today=dt.date(2026, 1, 1),
    )
    assert not stale and stub.calls[0][1] > dt.date(2015, 1, 20)  # incremental: the tail only
    np.testing.assert_allclose(
        merged["adj_close"].to_numpy(), (spy["close"] * 0.99).to_numpy(), rtol=1e-9
    )
    assert len(read_price_csv(tmp_path / "spy_daily.csv")) == 40


def test_load_market_data_downloads_and_caches_when_source_is_yahoo(tmp_path, make_settings):
    spy, vix = synthetic_market(n_days=100)
    stub = StubDownloader({"SPY": spy, "^VIX": vix})
    data = load_market_data(
        make_settings(data_source="yahoo"), downloader=stub, today=dt.date(2026, 1, 1)
    )
    assert len(data.frame) == 100
    assert (tmp_path / "data" / "spy_daily.csv").is_file()
    assert (tmp_path / "data" / "vix_daily.csv").is_file()


def _csv_cell(project: Path, row: int, column: str, value: str) -> None:
    path = project / "data" / "spy_daily.csv"
    frame = pd.read_csv(path, dtype=str)
    frame.loc[row, column] = value
    frame.to_csv(path, index=False)


@pytest.mark.parametrize(
    ("row", "column", "value", "message"),
    [
        pytest.param(3, "date", "2015-01-08 00:00:00+05:00", "mixed time zones", id="9_mixed_offsets"),
        pytest.param(3, "date", "01/08/2015", "dates must be YYYY-MM-DD", id="us_date_format"),
        pytest.param(40, "high", "inf", "row 42 (2015-02-27) has a non-finite high", id="11_inf_high"),
        pytest.param(899, "high", "inf", "has a non-finite high", id="11_inf_high_last_row"),
        pytest.param(50, "adj_close", "1e-300", "beyond the plausible factor of 3", id="tiny_price"),
        pytest.param(50, "high", "1e10", "more than 3 times away from its close", id="huge_high"),
    ],
)  # fmt: skip
def test_train_exits_3_on_implausible_or_non_iso_data(
    project: Path, capsys, row, column, value, message
):
    if column == "date":
        _csv_cell(project, 2, "date", "2015-01-07 00:00:00-05:00")
    _csv_cell(project, row, column, value)
    before = snapshot(project / "models")
    assert main(cli_args(project, "train", "--bad-rows", "fail")) == 3
    err = capsys.readouterr().err
    assert message in err and "Fix:" in err
    assert snapshot(project / "models") == before


def test_predict_exits_3_instead_of_forecasting_from_the_day_before_when_last_row_is_inf(
    project: Path, capsys
):
    _csv_cell(project, 899, "low", "inf")
    assert main(cli_args(project, "predict")) == 3
    assert "non-finite low" in capsys.readouterr().err


def test_train_exits_3_naming_the_file_when_it_cannot_be_read(project: Path, monkeypatch, capsys):
    def denied(path: object, *_a: object, **_k: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(pd, "read_csv", denied)
    assert main(cli_args(project, "train")) == 3
    err = capsys.readouterr().err
    assert "spy_daily.csv: cannot be read (Permission denied)" in err and "Fix:" in err


def test_train_exits_3_naming_the_gap_when_a_year_of_rows_is_missing(project: Path, capsys):
    path = project / "data" / "spy_daily.csv"
    frame = pd.read_csv(path)
    dates = pd.to_datetime(frame["date"])
    frame.loc[(dates < "2016-06-01") | (dates > "2017-05-31")].to_csv(path, index=False)
    assert main(cli_args(project, "train")) == 3
    assert "calendar days between 2016-05-31 and 2017-06-01" in capsys.readouterr().err


def test_train_repairs_a_bad_tick_by_default_naming_the_row_and_recording_it(project: Path, capsys):
    _csv_cell(project, 50, "high", "1e10")
    assert main(cli_args(project, "train")) == 0
    assert "repaired a bad tick (--bad-rows repair): 2015-03-13" in capsys.readouterr().err
    record = json.loads(
        (project / "models" / "training_history.jsonl").read_text().splitlines()[-1]
    )
    [repaired] = record["repaired_rows"]
    assert repaired.startswith("2015-03-13") and "high 1e+10 ->" in repaired


def test_glitches_flag_an_extreme_no_close_confirms_and_keep_a_crash_the_closes_confirm():
    days = pd.bdate_range("2020-01-01", periods=4)
    prices = pd.DataFrame(
        {
            "open": [10.0, 10.0, 9.0, 3.9],
            "high": [10.5, 40.0, 9.9, 4.2],  # day 2: a high no close is within 3 times of
            "low": [9.5, 9.8, 1.5, 3.8],  # day 3: a crash from 10.1 to 4.0, range 6.6 times
            "close": [10.0, 10.1, 4.0, 4.0],
        },
        index=days,
    )
    bad = glitches(prices)
    assert bad["high"].tolist() == [False, True, False, False]
    assert not bad["low"].any() and not bad["open"].any()
    repaired, notes = apply_bad_rows(prices, "test", "repair")
    assert repaired["high"].tolist() == [10.5, 10.1, 9.9, 4.2]
    assert repaired["low"].tolist() == prices["low"].tolist()
    assert len(notes) == 1 and notes[0].startswith(str(days[1].date()))
