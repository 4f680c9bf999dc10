"""Drift, A/B windows, feature drift and the recommendation rules. Pure functions.

Thresholds are those of the models-directory spec (Common Questions, Alert thresholds) and, for
feature drift, Evidently's defaults. Every one is a named constant documented in
services/monitor/README.md.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from volforecast.evaluation import qlike, rmse
from volforecast.schemas import (
    Comparison,
    Drift,
    FeatureDrift,
    FeatureDriftItem,
    Retraining,
    Window,
)

MODEL_A = "Model A"
MODEL_B = "Model B"
USE_A = "USE MODEL A (90%)"
USE_B = "USE MODEL B (ALL-30)"

TRAILING_WINDOWS = (20, 10, 5)
DRIFT_RETRAIN_PCT = 10.0  # drift above this: retrain now; Model B not recommended at or above it
DRIFT_PLAN_PCT = 5.0  # drift from this up to 10: plan retraining
SWITCH_WIN_RATE_PCT = 75.0  # Model B recommended at or above this win rate (and drift < 10)
CONSECUTIVE_RUNS = 3  # runs for the "degrading" and "consider switching" rules
PSI_THRESHOLD = 0.1
KS_PVALUE_THRESHOLD = 0.05
PSI_BINS = 10
# PSI over 10 bins has a sampling bias of about (bins - 1) / n: on 30 rows it is ~0.3 with no
# drift at all, so it only votes once the new rows are this many.
PSI_MIN_ROWS = 100
# Deciles of fewer training rows than this are too coarse to compare against.
MIN_REFERENCE_ROWS = 100


def winner(model_a_rmse: float, model_b_rmse: float) -> str:
    """Model B wins only when strictly better: a tie keeps the conservative default."""
    return MODEL_B if model_b_rmse < model_a_rmse else MODEL_A


def windows(
    y: npt.ArrayLike,
    pred_a: npt.ArrayLike,
    pred_b: npt.ArrayLike,
    sizes: Sequence[int] = TRAILING_WINDOWS,
) -> list[Window]:
    """All new data, then each trailing window shorter than it (longer ones would repeat it)."""
    t = np.asarray(y, dtype=np.float64)
    a = np.asarray(pred_a, dtype=np.float64)
    b = np.asarray(pred_b, dtype=np.float64)
    n = t.size
    out: list[Window] = []
    for size, name in [
        (n, f"All new data ({n} samples)"),
        *((k, f"Last {k} samples") for k in sizes),
    ]:
        if size > n or (size == n and out):
            continue
        ra, rb = rmse(t[-size:], a[-size:]), rmse(t[-size:], b[-size:])
        out.append(
            Window(
                name=name, n_samples=size, model_a_rmse=ra, model_b_rmse=rb, winner=winner(ra, rb)
            )
        )
    return out


def comparison(wins: Sequence[Window]) -> Comparison:
    """Both RMSEs on all new data (the first window) and Model B's share of window wins."""
    first = wins[0]
    b_wins = sum(w.winner == MODEL_B for w in wins)
    return Comparison(
        model_a_rmse=first.model_a_rmse,
        model_b_rmse=first.model_b_rmse,
        winner=first.winner,
        model_b_win_rate=100.0 * b_wins / len(wins),
    )


def drift_pct(model_a_rmse: float, baseline_rmse: float) -> float:
    """How much worse Model A is on new data than on its validation set, in percent (>= 0)."""
    return max(0.0, (model_a_rmse / baseline_rmse - 1.0) * 100.0)


def drift_level(pct: float) -> str:
    if pct > DRIFT_RETRAIN_PCT:
        return "retrain"
    if pct >= DRIFT_PLAN_PCT:
        return "watch"
    return "ok"


def drift(model_a_rmse: float, baseline_rmse: float) -> Drift:
    pct = drift_pct(model_a_rmse, baseline_rmse)
    return Drift(
        model_a_drift_pct=pct,
        baseline_rmse=baseline_rmse,
        model_a_rmse=model_a_rmse,
        level=drift_level(pct),
    )


def recommendation(model_b_win_rate: float, drift_percent: float) -> str:
    """The spec's rule: Model B only with a win rate >= 75% and drift < 10%."""
    if model_b_win_rate >= SWITCH_WIN_RATE_PCT and drift_percent < DRIFT_RETRAIN_PCT:
        return USE_B
    return USE_A


def recommendation_reason(model_b_win_rate: float, drift_percent: float) -> str:
    """The rule that decided ``recommendation``, in words."""
    rate = f"Model B won {model_b_win_rate:.0f}% of windows"
    if recommendation(model_b_win_rate, drift_percent) == USE_B:
        return (
            f"{rate} (>= {SWITCH_WIN_RATE_PCT:.0f}%) and drift {drift_percent:.1f}% is below "
            f"{DRIFT_RETRAIN_PCT:.0f}%"
        )
    if model_b_win_rate >= SWITCH_WIN_RATE_PCT:
        return (
            f"{rate}, but drift {drift_percent:.1f}% is not below {DRIFT_RETRAIN_PCT:.0f}%: "
            "the rule switches to Model B only while drift stays below it"
        )
    return f"{rate} (fewer than {SWITCH_WIN_RATE_PCT:.0f}%): Model A stays"


@dataclass(frozen=True)
class PastRun:
    """What the consecutive-run rules need from an earlier monitoring run of the same models."""

    drift_pct: float
    model_b_win_rate: float


def degrading(drifts: Sequence[float], runs: int = CONSECUTIVE_RUNS) -> bool:
    """Model A degrades over the last ``runs`` runs: each has drift > 0 and more than the one
    before it."""
    if len(drifts) < runs:
        return False
    last = list(drifts[-runs:])
    return all(d > 0 for d in last) and all(b > a for a, b in itertools.pairwise(last))


def retraining(
    current_drift: float, current_win_rate: float, previous: Sequence[PastRun]
) -> Retraining:
    """Retraining advice from this run and earlier runs on the same model set (oldest first)."""
    drifts = [p.drift_pct for p in previous] + [current_drift]
    rates = [p.model_b_win_rate for p in previous] + [current_win_rate]
    reasons = []
    action = "none"
    if current_drift > DRIFT_RETRAIN_PCT:
        action = "retrain_now"
        reasons.append(f"drift {current_drift:.1f}% is above {DRIFT_RETRAIN_PCT:.0f}%: retrain now")
    elif current_drift >= DRIFT_PLAN_PCT:
        action = "plan"
        reasons.append(
            f"drift {current_drift:.1f}% is between {DRIFT_PLAN_PCT:.0f}% and "
            f"{DRIFT_RETRAIN_PCT:.0f}%: plan retraining within 3 days"
        )
    if degrading(drifts):
        action = "retrain_now"
        reasons.append(
            f"Model A has degraded over the last {CONSECUTIVE_RUNS} monitoring runs: retrain"
        )
    switch = len(rates) >= CONSECUTIVE_RUNS and all(
        r >= SWITCH_WIN_RATE_PCT for r in rates[-CONSECUTIVE_RUNS:]
    )
    if switch:
        reasons.append(
            f"Model B has won >= {SWITCH_WIN_RATE_PCT:.0f}% of windows in the last "
            f"{CONSECUTIVE_RUNS} runs: consider switching to Model B"
        )
    return Retraining(action=action, consider_switching_to_b=switch, reasons=reasons)


def psi(reference: npt.ArrayLike, current: npt.ArrayLike, bins: int = PSI_BINS) -> float:
    """Population stability index with bins at the reference deciles (open-ended outer bins)."""
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_share = (
        np.bincount(np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1) / ref.size
    )
    cur_share = (
        np.bincount(np.searchsorted(edges, cur, side="right"), minlength=edges.size + 1) / cur.size
    )
    # An empty bin would make the log infinite; the floor is the usual small-count correction.
    ref_share = np.maximum(ref_share, 1e-4)
    cur_share = np.maximum(cur_share, 1e-4)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def feature_drift(reference: pd.DataFrame, current: pd.DataFrame) -> FeatureDrift:
    """PSI and two-sample Kolmogorov–Smirnov of each feature.

    Drifted if the KS p-value is below 0.05, or PSI >= 0.1 once there are ``PSI_MIN_ROWS`` new
    rows. Daily features are autocorrelated, so a few weeks of new rows often sit in one part
    of the training distribution: a flag says "the inputs look unlike training", not "the model
    is wrong".
    """
    psi_votes = len(current) >= PSI_MIN_ROWS
    items = {}
    skipped = None
    if len(reference) < MIN_REFERENCE_ROWS:
        # E.g. --start after Model A's training period: there is nothing to compare against.
        skipped = (
            f"only {len(reference)} of Model A's training rows are in the data (need "
            f"{MIN_REFERENCE_ROWS}); move --start back to cover Model A's training period"
        )
    for col in [] if skipped else reference.columns:
        ref, cur = reference[col].to_numpy(float), current[col].to_numpy(float)
        p = psi(ref, cur)
        ks = stats.ks_2samp(ref, cur)
        items[col] = FeatureDriftItem(
            psi=p,
            ks_statistic=float(ks.statistic),
            ks_pvalue=float(ks.pvalue),
            drifted=bool(ks.pvalue < KS_PVALUE_THRESHOLD or (psi_votes and p >= PSI_THRESHOLD)),
        )
    return FeatureDrift(
        psi_threshold=PSI_THRESHOLD,
        psi_min_rows=PSI_MIN_ROWS,
        ks_pvalue_threshold=KS_PVALUE_THRESHOLD,
        n_reference=len(reference),
        n_current=len(current),
        n_drifted=sum(i.drifted for i in items.values()),
        features=items,
        skipped=skipped,
    )


def relative_qlike_drift(
    y_new: npt.ArrayLike,
    a_new: npt.ArrayLike,
    naive_new: npt.ArrayLike,
    y_val: npt.ArrayLike,
    a_val: npt.ArrayLike,
    naive_val: npt.ArrayLike,
) -> float:
    """A scale-free drift signal: Model A's QLIKE relative to a naive forecast's on the same
    rows, on the new rows against on the validation rows, in percent (>= 0, like ``drift_pct``).

    QLIKE depends only on the ratio of realized to forecast variance, and dividing by the naive
    forecast's QLIKE on the same days takes out how hard those days were: a turbulent period
    alone does not raise it, a model that lost its skill does.
    """
    new = qlike(y_new, a_new) / qlike(y_new, naive_new)
    val = qlike(y_val, a_val) / qlike(y_val, naive_val)
    return max(0.0, (new / val - 1.0) * 100.0)
