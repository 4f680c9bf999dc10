"""Scoring forecasts (volforecast.scoring): metrics, ratios, the best baseline, DM families with
Holm."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from volforecast.scoring import score_forecasts
from volforecast.walkforward import ENSEMBLE, REALIZED


def test_score_forecasts_flags_the_best_baseline_and_ratios_to_har_rv():
    rng = np.random.default_rng(2)
    y = rng.uniform(0.005, 0.03, 500)
    fc = pd.DataFrame(
        {
            REALIZED: y,
            ENSEMBLE: y * rng.lognormal(0, 0.05, 500),
            "har_rv": y * rng.lognormal(0, 0.4, 500),
            "other": y * rng.lognormal(0, 0.2, 500),
        },
        index=pd.bdate_range("2020-01-01", periods=500),
    )
    ev = score_forecasts(fc, horizon=5)
    assert ev.best_baseline["rmse"] == "other" and ev.best_baseline["qlike"] == "other"
    assert ev.beats == {k: True for k in ev.beats}
    assert ev.ratio_to_har_rv["har_rv"]["qlike"] == pytest.approx(1.0)
    assert {(t.against, t.loss) for t in ev.dm_tests} == {
        ("har_rv", "squared_error"),
        ("other", "squared_error"),
        ("har_rv", "qlike"),
        ("other", "qlike"),
    }
    assert all(t.statistic < -2 for t in ev.dm_tests)
    # Holm over the two baselines of each loss: never below the raw p-value.
    assert all(t.p_value <= t.p_value_holm <= 1 for t in ev.dm_tests)
