"""What the monitor decides from its measurements: the drift level, the recommended model and
the retraining advice. Pure functions.

The rules and thresholds are those of the models-directory spec (Common Questions, Alert
thresholds); each is a named constant documented in services/monitor/README.md. The
measurements they read (RMSE drift, the A/B windows) are ``volforecast.drift``'s.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from volforecast.schemas import Retraining, SpecRule

if TYPE_CHECKING:
    from volforecast.drift import Cusum

# Page's test's false-alarm probability per run (volforecast.drift.CUSUM_ALPHA).
CUSUM_ALPHA = 0.005

USE_A = "USE MODEL A (90%)"
USE_B = "USE MODEL B (ALL-30)"

DRIFT_RETRAIN_PCT = 10.0  # drift above this: retrain now; Model B not recommended at or above it
DRIFT_PLAN_PCT = 5.0  # drift from this up to 10: plan retraining
SWITCH_WIN_RATE_PCT = 75.0  # Model B recommended at or above this win rate (and drift < 10)
CONSECUTIVE_RUNS = 3  # runs for the "degrading" and "consider switching" rules


def drift_level(pct: float) -> str:
    if pct > DRIFT_RETRAIN_PCT:
        return "retrain"
    if pct >= DRIFT_PLAN_PCT:
        return "watch"
    return "ok"


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


def spec_rule(advice: Retraining) -> SpecRule:
    """The spec's rule's verdict (``retraining``), as kept beside ours."""
    return SpecRule(action=advice.action, reasons=list(advice.reasons))


def advice(
    spec: Retraining,
    *,
    set_age_days: int,
    max_set_age_days: int,
    lineage_changed: bool | None,
    cusum: Cusum | None,
) -> Retraining:
    """Our retraining advice: "retrain now" only on the signals the replay proves (the live
    set is older than the schedule allows, it was fitted on other data than the feed shows,
    or Page's test finds Model A losing to the naive forecast); the spec's drift rule is kept
    beside it (``spec_rule``) for what it is (services/monitor/README.md)."""
    reasons = []
    if set_age_days > max_set_age_days:
        reasons.append(
            f"the live set's data ends {set_age_days} trading days before the newest bar (more "
            f"than {max_set_age_days}): scheduled retraining has stopped; retrain now"
        )
    if lineage_changed:
        reasons.append(
            "the feed's history over the set's training period is not what the set was fitted "
            "on (another series, a split or a revision since): retrain now"
        )
    if cusum is not None and cusum.alarm:
        reasons.append(
            f"Page's test: Model A is losing to the naive forecast on the new rows (CUSUM "
            f"{cusum.statistic:.2f} above {cusum.threshold:.2f}, a {CUSUM_ALPHA:.1%} false-alarm "
            "threshold): retrain now"
        )
    action = "retrain_now" if reasons else "none"
    if not reasons:
        reasons.append(
            f"no proven signal fired: set age {set_age_days} of at most {max_set_age_days} "
            "trading days"
            + (
                ""
                if cusum is None
                else f", CUSUM {cusum.statistic:.2f} below {cusum.threshold:.2f}"
            )
            + ("" if lineage_changed is None else ", training history unchanged")
        )
    if spec.consider_switching_to_b:
        reasons += [r for r in spec.reasons if "consider switching" in r]
    return Retraining(
        action=action,
        consider_switching_to_b=spec.consider_switching_to_b,
        reasons=reasons,
        spec_rule=spec_rule(spec),
        set_age_days=set_age_days,
        max_set_age_days=max_set_age_days,
        lineage_changed=lineage_changed,
        cusum=None if cusum is None else cusum.statistic,
        cusum_threshold=None if cusum is None else cusum.threshold,
    )
