"""What an operator sees: a future --as-of refused, the rule behind a recommendation, plots
scaled to their data."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from volforecast.cli import main
from volforecast.plots import _time_axis
from volforecast.policy import recommendation_reason

from .conftest import cli_args, snapshot


@pytest.mark.parametrize("command", ["train", "monitor", "predict"])
def test_command_exits_2_and_changes_nothing_when_as_of_is_in_the_future(
    project: Path, capsys, command
):
    before = snapshot(project / "models")
    assert main(cli_args(project, command, "--as-of", "2999-01-01")) == 2
    assert "--as-of / VOLF_AS_OF 2999-01-01 is after today" in capsys.readouterr().err
    assert snapshot(project / "models") == before


def test_recommendation_reason_names_drift_when_b_wins_but_drift_blocks_the_switch():
    reason = recommendation_reason(100.0, 12.3)
    assert reason == (
        "Model B won 100% of windows, but drift 12.3% is not below 10%: the rule switches to "
        "Model B only while drift stays below it"
    )


def test_recommendation_reason_names_both_conditions_when_b_is_recommended():
    assert recommendation_reason(75.0, 2.0) == (
        "Model B won 75% of windows (>= 75%) and drift 2.0% is below 10%"
    )


def test_recommendation_reason_names_the_win_rate_when_it_is_short():
    assert recommendation_reason(50.0, 0.0) == (
        "Model B won 50% of windows (fewer than 75%): Model A stays"
    )


def test_monitor_prints_the_rule_behind_its_recommendation(project: Path, capsys):
    assert main(cli_args(project, "monitor")) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("Recommendation"))
    assert re.match(r"Recommendation: USE MODEL [AB] \([^)]*\): Model B won \d+% of windows", line)


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
