"""The monitor's decisions (volforecast.policy): drift levels, the recommended model and the
retraining advice, at and around every threshold."""

from __future__ import annotations

import pytest

from volforecast import policy
from volforecast.drift import Cusum
from volforecast.policy import recommendation_reason
from volforecast.schemas import Retraining


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


@pytest.mark.parametrize(
    ("pct", "level"),
    [(0.0, "ok"), (4.99, "ok"), (5.0, "watch"), (10.0, "watch"), (10.01, "retrain")],
)
def test_drift_level_at_and_around_thresholds(pct, level):
    assert policy.drift_level(pct) == level


@pytest.mark.parametrize(
    ("win_rate", "drift_pct", "expected"),
    [
        (100.0, 0.0, policy.USE_B),
        (75.0, 9.99, policy.USE_B),
        (74.99, 0.0, policy.USE_A),
        (75.0, 10.0, policy.USE_A),
        (100.0, 10.01, policy.USE_A),
        (0.0, 0.0, policy.USE_A),
    ],
)
def test_recommendation_at_and_around_thresholds(win_rate, drift_pct, expected):
    assert policy.recommendation(win_rate, drift_pct) == expected


def _past(*pairs: tuple[float, float]) -> list[policy.PastRun]:
    return [policy.PastRun(drift_pct=d, model_b_win_rate=w) for d, w in pairs]


@pytest.mark.parametrize(
    ("drift_pct", "win_rate", "previous", "action", "switch"),
    [
        (0.0, 0.0, [], "none", False),
        (4.99, 0.0, [], "none", False),
        (5.0, 0.0, [], "plan", False),
        (10.0, 0.0, [], "plan", False),
        (10.01, 0.0, [], "retrain_now", False),
        # degrading: three runs with drift > 0, each worse than the one before
        (3.0, 0.0, _past((1.0, 0), (2.0, 0)), "retrain_now", False),
        (3.0, 0.0, _past((2.0, 0)), "none", False),  # only two runs
        (3.0, 0.0, _past((1.0, 0), (3.0, 0)), "none", False),  # not strictly worse
        (3.0, 0.0, _past((0.0, 0), (2.0, 0)), "none", False),  # one run without drift
        (2.0, 0.0, _past((1.0, 0), (3.0, 0)), "none", False),  # improved last run
        (
            4.0,
            0.0,
            _past((9.0, 0), (1.0, 0), (2.0, 0)),
            "retrain_now",
            False,
        ),  # only the last 3 count
        # Model B >= 75% in 3 consecutive runs -> consider switching
        (0.0, 75.0, _past((0.0, 75.0), (0.0, 100.0)), "none", True),
        (0.0, 75.0, _past((0.0, 74.9), (0.0, 100.0)), "none", False),
        (0.0, 100.0, _past((0.0, 100.0)), "none", False),
        (0.0, 74.9, _past((0.0, 100.0), (0.0, 100.0)), "none", False),
    ],
)
def test_retraining_rules_at_and_around_thresholds(drift_pct, win_rate, previous, action, switch):
    advice = policy.retraining(drift_pct, win_rate, previous)
    assert advice.action == action
    assert advice.consider_switching_to_b is switch
    assert bool(advice.reasons) == (action != "none" or switch)


def _spec(action: str = "retrain_now") -> Retraining:
    return Retraining(action=action, consider_switching_to_b=False, reasons=["drift 29.2% ..."])


def test_advice_is_none_and_keeps_the_spec_rule_beside_it_when_no_proven_signal_fires():
    out = policy.advice(_spec(), set_age_days=0, max_set_age_days=10, lineage_changed=False,
                        cusum=Cusum(0.0, 0.4, 30))  # fmt: skip
    assert out.action == "none"
    assert out.spec_rule is not None and out.spec_rule.action == "retrain_now"
    assert "no proven signal fired" in out.reasons[0]


@pytest.mark.parametrize(
    ("age", "lineage", "page", "fired"),
    [
        (11, False, Cusum(0.0, 0.4, 30), "scheduled retraining has stopped"),
        (10, True, Cusum(0.0, 0.4, 30), "not what the set was fitted on"),
        (10, None, Cusum(0.5, 0.4, 30), "Page's test"),
    ],
)
def test_advice_is_retrain_now_when_one_proven_signal_fires(age, lineage, page, fired):
    out = policy.advice(_spec("none"), set_age_days=age, max_set_age_days=10,
                        lineage_changed=lineage, cusum=page)  # fmt: skip
    assert out.action == "retrain_now"
    assert [r for r in out.reasons if fired in r]


def test_advice_is_none_when_the_set_is_exactly_its_maximum_age():
    out = policy.advice(_spec("none"), set_age_days=10, max_set_age_days=10,
                        lineage_changed=None, cusum=None)  # fmt: skip
    assert out.action == "none" and out.set_age_days == 10
