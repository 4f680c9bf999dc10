"""Degraded mode (volforecast.data.check_freshness): when the download fails, monitor and
predict run on a cache that is recent enough (exit 12, its age recorded), refuse an older one
(exit 3), and train refuses the cache unless told."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from volforecast import data
from volforecast.cli import main
from volforecast.errors import DataError
from volforecast.store import MONITORING_HISTORY, TRAINING_HISTORY

from .conftest import synthetic_market, write_market


def _failing_downloader(_cache_dir: Path) -> object:
    def download(ticker: str, _start: dt.date, _end: dt.date | None) -> pd.DataFrame:
        raise DataError(f"yahoo: could not download {ticker} after 4 attempts (last: outage)")

    return download


@pytest.fixture(scope="module")
def stale_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache whose last row is two weekdays before today, and a set trained on its first
    800 days (from the same files, as csv)."""
    root = tmp_path_factory.mktemp("stale")
    today = dt.datetime.now(dt.UTC).date()
    last = pd.Timestamp(np.busday_offset(today, -2, roll="backward"))
    start = pd.bdate_range(end=last, periods=900)[0]
    spy, vix = synthetic_market(start=start.strftime("%Y-%m-%d"))
    write_market(root / "data", spy, vix)
    args = ["train", "--source", "csv", "--data-dir", str(root / "data"), "--models-dir",
            str(root / "models"), "--start", spy["date"].iloc[0], "--as-of", spy["date"].iloc[799]]  # fmt: skip
    assert main(args) == 0
    return root


def _yahoo(root: Path, command: str, *extra: str) -> list[str]:
    first = pd.read_csv(root / "data" / "spy_daily.csv")["date"].iloc[0]
    return [command, "--source", "yahoo", "--data-dir", str(root / "data"), "--models-dir",
            str(root / "models"), "--start", first, *extra]  # fmt: skip


@pytest.fixture
def outage(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in __import__("os").environ if k.startswith("VOLF_")]:
        monkeypatch.delenv(key)
    monkeypatch.setattr(data, "YahooDownloader", _failing_downloader)


def test_monitor_runs_on_a_two_day_old_cache_and_exits_12_when_the_download_fails(
    stale_project: Path, outage, capsys
):
    history = stale_project / "models" / MONITORING_HISTORY
    before = len(history.read_text().splitlines()) if history.exists() else 0
    assert main(_yahoo(stale_project, "monitor")) == 12
    line = json.loads(history.read_text().splitlines()[-1])
    assert len(history.read_text().splitlines()) == before + 1
    assert line["data_age_days"] == 2 and line["data_stale"] is True
    assert "running on cached data 2 weekday(s) old" in capsys.readouterr().err


def test_monitor_exits_3_naming_the_age_and_the_flag_when_the_cache_is_too_old(
    stale_project: Path, outage, capsys
):
    history = stale_project / "models" / MONITORING_HISTORY
    before = history.read_bytes() if history.exists() else b""
    assert main(_yahoo(stale_project, "monitor", "--max-data-age", "1")) == 3
    assert "2 weekday(s) ago, more than --max-data-age 1" in capsys.readouterr().err
    assert (history.read_bytes() if history.exists() else b"") == before


def test_predict_json_gives_the_data_age_and_exits_12_on_a_cache(stale_project, outage, capsys):
    assert main(_yahoo(stale_project, "predict")) == 12
    forecast = json.loads(capsys.readouterr().out)
    assert forecast["data_age_days"] == 2 and forecast["data_stale"] is True


def test_train_refuses_the_cache_unless_allow_stale_data_is_given(stale_project, outage, capsys):
    history = stale_project / "models" / TRAINING_HISTORY
    lines = len(history.read_text().splitlines())
    assert main(_yahoo(stale_project, "train")) == 3
    assert "--allow-stale-data" in capsys.readouterr().err
    assert len(history.read_text().splitlines()) == lines
    assert main(_yahoo(stale_project, "train", "--allow-stale-data")) == 0
    assert json.loads(history.read_text().splitlines()[-1])["data_stale"] is True


@pytest.mark.parametrize(("ny_time", "kept"), [("15:30", False), ("16:30", True)])
def test_todays_bar_is_dropped_when_served_before_the_close(ny_time, kept):
    from zoneinfo import ZoneInfo

    days = pd.DatetimeIndex(["2025-06-04", "2025-06-05"], name="date")
    frame = pd.DataFrame({"close": [1.0, 2.0]}, index=days)
    hour, minute = map(int, ny_time.split(":"))
    now = dt.datetime(2025, 6, 5, hour, minute, tzinfo=ZoneInfo("America/New_York"))
    out = data.drop_unfinished_bar(frame, now, "SPY")
    assert len(out) == (2 if kept else 1)


def test_a_fresh_download_is_never_stale_and_a_past_bar_is_kept(tmp_path, make_settings):
    from .conftest import StubDownloader

    spy, vix = synthetic_market(n_days=120)
    stub = StubDownloader({"SPY": spy, "^VIX": vix})
    settings = make_settings(data_source="yahoo", data_dir=tmp_path, start="2015-01-01")
    market = data.load_market_data(settings, downloader=stub)
    assert not market.stale and len(market.frame) == 120
