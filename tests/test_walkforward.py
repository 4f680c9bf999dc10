"""Walk-forward forecasts (volforecast.walkforward): every model refit on the same schedule, the
purge gap respected."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from volforecast.walkforward import REALIZED, Block, schedule, walk_forward


@pytest.mark.parametrize("purge", [1, 5, 22])
def test_schedule_ends_training_purge_rows_before_each_block_when_refitting(purge):
    blocks = schedule(1000, 600, 63, purge)
    assert blocks[0] == Block(train_end=600 - purge, start=600, stop=663)
    assert blocks[-1].stop == 1000
    for b in blocks:
        # The last training row's target window (horizon = purge rows) ends before the block.
        assert (b.train_end - 1) + purge < b.start


class _Recorder:
    """A forecaster that remembers what it was trained on and forecasts its training mean."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[pd.Timestamp, pd.Timestamp]] = []

    def fit(self, train: pd.DataFrame, returns: pd.Series) -> _Recorder:
        self.level_ = float(train["target"].mean())
        self.last_ = train.index[-1]
        return self

    def predict(self, rows: pd.DataFrame, returns: pd.Series) -> np.ndarray:
        self.seen.append((self.last_, rows.index[0]))
        return np.full(len(rows), self.level_)


def test_walk_forward_never_trains_on_rows_inside_the_purge_or_the_block():
    dates = pd.bdate_range("2020-01-01", periods=300)
    data = pd.DataFrame({"target": np.linspace(1.0, 2.0, 300)}, index=dates)
    recorder = _Recorder()
    fc = walk_forward(data, pd.Series(0.0, index=dates), [recorder], schedule(300, 100, 50, 5))
    assert len(fc) == 200 and fc.index[0] == dates[100]
    for last_train, first_forecast in recorder.seen:
        assert dates.get_loc(first_forecast) - dates.get_loc(last_train) == 6
    np.testing.assert_array_equal(fc[REALIZED], data["target"].iloc[100:])
