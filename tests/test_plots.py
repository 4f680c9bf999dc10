"""Plots (volforecast.plots) scaled to their data."""

from __future__ import annotations

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd

from volforecast.plots import _time_axis


def test_time_axis_of_a_single_run_spans_one_week_around_it():
    fig, ax = plt.subplots()
    when = pd.DatetimeIndex(["2025-03-31"])
    ax.plot(when, [1.0], marker="o")
    _time_axis(ax, when)
    left, right = (mdates.num2date(x).replace(tzinfo=None) for x in ax.get_xlim())
    plt.close(fig)
    assert (left, right) == (pd.Timestamp("2025-03-27 12:00"), pd.Timestamp("2025-04-03 12:00"))


def test_time_axis_keeps_matplotlibs_limits_when_runs_span_months():
    fig, ax = plt.subplots()
    when = pd.DatetimeIndex(["2025-03-31", "2025-09-26"])
    ax.plot(when, [1.0, 2.0])
    before = ax.get_xlim()
    _time_axis(ax, when)
    assert ax.get_xlim() == before
    plt.close(fig)
