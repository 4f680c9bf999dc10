"""PNG figures for ``evaluate`` and ``report``: pure functions from data to PNG bytes.

Figures are built as plain ``matplotlib.figure.Figure`` objects, not through pyplot: they render
to PNG without a display (cron, containers), leave the caller's matplotlib backend and pyplot's
figure registry alone, and are freed when the function returns, so long runs do not accumulate
memory. Importing this module changes no matplotlib setting.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import cast

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from volforecast.features import ANNUALIZED_PCT

_DPI = 110


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def forecasts_vs_realized(forecasts: pd.DataFrame, realized: pd.Series, title: str) -> bytes:
    """Realized volatility and each forecast column over time, annualized percent."""
    fig = Figure(figsize=(11, 4.5))
    ax = fig.subplots()
    ax.plot(realized.index, realized * ANNUALIZED_PCT, color="0.6", lw=0.8, label="realized")
    for name in forecasts.columns:
        ax.plot(forecasts.index, forecasts[name] * ANNUALIZED_PCT, lw=0.9, label=name)
    ax.set_ylabel("volatility (annualized %)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def cumulative_loss_difference(differences: Mapping[str, pd.Series], title: str) -> bytes:
    """One panel per loss: cumulative sum of (ensemble loss - baseline loss); falling is good."""
    fig = Figure(figsize=(11, 3.2 * len(differences)))
    axes = fig.subplots(len(differences), 1, sharex=True)
    axes_list = np.atleast_1d(axes)
    for ax, (label, diff) in zip(axes_list, differences.items(), strict=True):
        ax.plot(diff.index, diff.cumsum(), lw=1.0)
        ax.axhline(0.0, color="0.4", lw=0.6)
        ax.set_ylabel(label, fontsize=9)
        ax.grid(alpha=0.3)
    axes_list[0].set_title(title)
    return _png(fig)


# A single run (or runs within a day) would leave matplotlib to invent a span of years.
MIN_TIME_SPAN = pd.Timedelta(days=7)


def _time_axis(ax: Axes, timestamps: pd.DatetimeIndex) -> None:
    """Scale the x axis to the data: at least a week around runs that are close together."""
    if len(timestamps) == 0:
        return
    first, last = timestamps.min(), timestamps.max()
    if last - first < MIN_TIME_SPAN:
        middle = first + (last - first) / 2
        # Matplotlib converts dates on a date axis; its stubs only admit floats.
        left, right = middle - MIN_TIME_SPAN / 2, middle + MIN_TIME_SPAN / 2
        ax.set_xlim(cast(float, left), cast(float, right))
    ax.figure.autofmt_xdate()


def drift_over_time(
    timestamps: pd.DatetimeIndex, drift_pct: Sequence[float], thresholds: Sequence[float]
) -> bytes:
    fig = Figure(figsize=(10, 4))
    ax = fig.subplots()
    ax.plot(timestamps, drift_pct, marker="o", lw=1.0, label="drift")
    for level, color in zip(thresholds, ("orange", "red"), strict=False):
        ax.axhline(level, color=color, ls="--", lw=0.9, label=f"{level:g}% threshold")
    ax.set_ylabel("RMSE drift vs validation (%)")
    ax.set_title("Drift of Model A over monitoring runs")
    _time_axis(ax, timestamps)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def rmse_over_time(timestamps: pd.DatetimeIndex, series: Mapping[str, Sequence[float]]) -> bytes:
    fig = Figure(figsize=(10, 4))
    ax = fig.subplots()
    for label, values in series.items():
        ax.plot(timestamps, values, marker="o", lw=1.0, label=label)
    ax.set_ylabel("RMSE (daily volatility)")
    ax.set_title("Model A and Model B RMSE on new data")
    _time_axis(ax, timestamps)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def psi_bars(psi: Mapping[str, float], thresholds: Sequence[float], title: str) -> bytes:
    names = list(psi)
    fig = Figure(figsize=(10, 0.3 * len(names) + 1.5))
    ax = fig.subplots()
    ax.barh(names, [psi[n] for n in names], color="steelblue")
    for level, color in zip(thresholds, ("orange", "red"), strict=False):
        ax.axvline(level, color=color, ls="--", lw=0.9, label=f"PSI {level:g}")
    ax.invert_yaxis()
    ax.set_xlabel("population stability index (new rows vs Model A training rows)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def signals_over_time(
    timestamps: pd.DatetimeIndex,
    series: Mapping[str, Sequence[float]],
    thresholds: Sequence[float],
    title: str,
    ylabel: str,
) -> bytes:
    """Several daily signals on one axis, with the alarm thresholds."""
    fig = Figure(figsize=(11, 4))
    ax = fig.subplots()
    for label, values in series.items():
        ax.plot(timestamps, values, lw=0.7, label=label)
    for level, color in zip(thresholds, ("orange", "red"), strict=False):
        ax.axhline(level, color=color, ls="--", lw=0.9, label=f"{level:g}% threshold")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    _time_axis(ax, timestamps)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    return _png(fig)


def interval_and_exceedances(risk: pd.DataFrame, title: str) -> bytes:
    """Two panels over the same days: the realized volatility against the forecast and its
    90% band (annualized percent); the next day's loss against the 1-day 95% and 99% VaR,
    with the days it exceeded each marked. ``risk``: columns ``realized``, ``forecast``,
    ``lower_90``, ``upper_90``, ``loss_1d``, ``var_95``, ``var_99``."""
    fig = Figure(figsize=(11, 7))
    top, bottom = fig.subplots(2, 1, sharex=True)
    x = risk.index
    top.fill_between(
        x, risk["lower_90"] * ANNUALIZED_PCT, risk["upper_90"] * ANNUALIZED_PCT,
        color="tab:blue", alpha=0.2, lw=0, label="90% interval",
    )  # fmt: skip
    top.plot(x, risk["forecast"] * ANNUALIZED_PCT, color="tab:blue", lw=0.9, label="forecast")
    top.plot(x, risk["realized"] * ANNUALIZED_PCT, color="0.3", lw=0.7, label="realized")
    top.set_ylabel("volatility (annualized %)")
    top.set_title(title)
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    bottom.plot(x, risk["loss_1d"] * 100, color="0.5", lw=0.6, label="next-day loss")
    for column, color, label in (("var_95", "tab:orange", "95%"), ("var_99", "tab:red", "99%")):
        bottom.plot(x, risk[column] * 100, color=color, lw=0.9, label=f"1-day {label} VaR")
        hit = risk["loss_1d"] > risk[column]
        bottom.scatter(x[hit], risk.loc[hit, "loss_1d"] * 100, color=color, s=14, zorder=3)
    bottom.set_ylabel("loss (% log return)")
    bottom.legend(loc="upper left", fontsize=8)
    bottom.grid(alpha=0.3)
    return _png(fig)
