"""Feed faults (volforecast.faults): what the monitor and train refuse before scoring, on a
seeded synthetic market and on the real series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from volforecast.data import align, validate_prices
from volforecast.errors import DataFaultError
from volforecast.faults import check_feed, feed_faults

from .conftest import SHARED_DATA, needs_shared_data, synthetic_market


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    spy, vix = synthetic_market(n_days=400, seed=5)
    return align(validate_prices(spy, "s"), validate_prices(vix, "v"))


def _since(frame: pd.DataFrame, k: int) -> pd.Timestamp:
    return frame.index[k]


def test_feed_faults_finds_nothing_when_the_feed_is_clean(frame):
    assert feed_faults(frame, None) == []


def test_feed_faults_names_a_repeated_price_bar_on_its_first_day(frame):
    bad = frame.copy()
    bad.iloc[300, :5] = bad.iloc[299, :5].to_numpy()
    faults = feed_faults(bad, _since(bad, 299))
    assert len(faults) == 1 and "frozen feed" in faults[0]
    assert faults[0].startswith(str(bad.index[300].date()))


def test_feed_faults_tells_a_frozen_vix_only_from_its_fourth_repeat(frame):
    bad = frame.copy()
    bad.iloc[300:305, bad.columns.get_loc("vix_close")] = bad["vix_close"].iloc[299]
    since = _since(bad, 299)
    assert feed_faults(bad.iloc[:303], since) == []  # 3 repeats: what the data layer fills
    assert "VIX has closed at" in feed_faults(bad.iloc[:304], since)[0]


@pytest.mark.parametrize("factor", [0.5, 100.0])
def test_feed_faults_names_a_jump_no_market_makes(frame, factor):
    bad = frame.copy()
    prices = ["spy_open", "spy_high", "spy_low", "spy_close", "spy_adj_close"]
    bad.loc[bad.index[300] :, prices] *= factor
    [fault] = feed_faults(bad, _since(bad, 299))
    assert "the adjusted close moved x" in fault and "unadjusted split" in fault
    move = float(fault.split("moved x")[1].split()[0])
    assert move == pytest.approx(factor, rel=0.1)  # the fault times the day's own return


def test_feed_faults_names_vix_arriving_as_a_decimal(frame):
    bad = frame.copy()
    bad.loc[bad.index[300] :, "vix_close"] /= 100.0
    faults = feed_faults(bad, _since(bad, 299))
    assert any("VIX moved x0.01" in f for f in faults)


def test_feed_faults_ignores_bars_up_to_since(frame):
    bad = frame.copy()
    bad.iloc[300, :5] = bad.iloc[299, :5].to_numpy()
    assert feed_faults(bad, _since(bad, 300)) == []


def test_check_feed_raises_exit_13_naming_the_fix(frame):
    bad = frame.copy()
    bad.iloc[300, :5] = bad.iloc[299, :5].to_numpy()
    with pytest.raises(DataFaultError, match="Fix: correct the source") as caught:
        check_feed(bad, _since(bad, 299), "csv")
    assert caught.value.exit_code == 13


@needs_shared_data
@pytest.mark.parametrize("symbol", ["SPY", "QQQ", "TLT", "GLD", "VTI", "AGG", "IEF", "TIP"])
def test_feed_faults_never_fire_on_the_real_etf_history(symbol):
    from volforecast.config import build_settings
    from volforecast.data import load_market_data

    settings = build_settings(
        data_source="csv", data_dir=SHARED_DATA, symbol=symbol, start="1993-01-01"
    )
    real = load_market_data(settings).frame
    assert feed_faults(real, None) == []
    assert np.isfinite(real["vix_close"]).all()


def test_train_exits_13_rather_than_fit_a_new_set_on_a_frozen_feed(project, capsys):
    from volforecast.cli import main

    from .conftest import cli_args

    path = project / "data" / "spy_daily.csv"
    prices = pd.read_csv(path)
    cols = ["open", "high", "low", "close", "adj_close"]
    prices.loc[850, cols] = prices.loc[849, cols].to_numpy()  # after the live set's data
    prices.to_csv(path, index=False)
    live = (project / "models" / "current").readlink()
    capsys.readouterr()
    assert main(cli_args(project, "train")) == 13
    assert "a frozen feed" in capsys.readouterr().err
    assert (project / "models" / "current").readlink() == live
