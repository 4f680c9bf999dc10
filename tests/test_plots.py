"""Plots (volforecast.plots) scaled to their data, and drawn without touching pyplot."""

from __future__ import annotations

import subprocess
import sys

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from volforecast.plots import _time_axis, forecasts_vs_realized

PNG = b"\x89PNG\r\n\x1a\n"


def test_time_axis_of_a_single_run_spans_one_week_around_it():
    ax = Figure().subplots()
    when = pd.DatetimeIndex(["2025-03-31"])
    ax.plot(when, [1.0], marker="o")
    _time_axis(ax, when)
    left, right = (mdates.num2date(x).replace(tzinfo=None) for x in ax.get_xlim())
    assert (left, right) == (pd.Timestamp("2025-03-27 12:00"), pd.Timestamp("2025-04-03 12:00"))


def test_time_axis_keeps_matplotlibs_limits_when_runs_span_months():
    ax = Figure().subplots()
    when = pd.DatetimeIndex(["2025-03-31", "2025-09-26"])
    ax.plot(when, [1.0, 2.0])
    before = ax.get_xlim()
    _time_axis(ax, when)
    assert ax.get_xlim() == before


def test_import_leaves_pyplot_and_the_backend_alone_when_a_caller_imports_plots():
    # A notebook that imports the library keeps its own backend: pyplot's import is what
    # picks one, so the module must not import it (or call matplotlib.use).
    code = (
        "import sys, matplotlib\n"
        "before = matplotlib.rcParams._get('backend')\n"
        "import volforecast.plots\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
        "assert matplotlib.rcParams._get('backend') is before, 'backend changed'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_forecasts_vs_realized_is_a_png_when_drawn_without_a_display():
    index = pd.bdate_range("2024-01-01", periods=30)
    realized = pd.Series(np.linspace(0.005, 0.02, 30), index=index)
    png = forecasts_vs_realized(pd.DataFrame({"ensemble": realized * 1.1}), realized, "SPY")
    assert png.startswith(PNG)
