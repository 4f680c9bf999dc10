"""Which setting of the ensemble to use, chosen without looking at the evaluation period.

The protocol (``services/train/README.md``, "Selection protocol"): every candidate below is
run walk-forward on a development period that ends the day before ``--eval-start`` (every
training and every scored target inside it), on each development series and horizon; the rule
``choose`` picks, per horizon, the candidate with the lowest mean over the series of
``(ln(RMSE / RMSE_HAR-RV) + ln(QLIKE / QLIKE_HAR-RV)) / 2``. ``volforecast select`` runs it
and writes ``selection.json``; the copy packaged next to this module is the shipped choice,
and ``chosen_for`` reads it.

The candidates were written down before the development run and are not changed after it
(a test compares them with the packaged record, so changing one means re-running select).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from volforecast.baselines import LogHARX
from volforecast.config import Settings
from volforecast.ensemble import HAR_CORE, HAR_CORE_LOGS, StackedEnsemble
from volforecast.errors import ConfigError
from volforecast.runtime import fit_threads
from volforecast.schemas import CandidateScore, CandidateSpec, MetaLearner, SelectionRecord

SELECTION_JSON = "selection.json"
# How much worse (in the rule's log units: 0.005 is 0.5% on the geometric mean of the two loss
# ratios) a cheaper candidate may score and still be preferred: differences that small are
# noise between neighbouring settings, while the fit time they cost is not.
PARSIMONY = 0.005
RULE = (
    "per horizon, score each candidate by the mean over the development series of "
    "(ln(RMSE / RMSE of HAR-RV) + ln(QLIKE / QLIKE of HAR-RV)) / 2; among the candidates "
    f"within {PARSIMONY} of the best score, take the cheapest to fit, and among equally cheap "
    "ones the best score; ties go to the earlier candidate"
)

_CORES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "range_vix_rel": (
        "log rv and Parkinson 1/5/22, VIX, vix_rel_22d",
        HAR_CORE,
        HAR_CORE_LOGS,
    ),
    "range_vix": ("log rv and Parkinson 1/5/22, VIX", HAR_CORE, ()),
    "rv_vix": ("log rv 1/5/22, VIX (log-HAR-VIX's regressors)", LogHARX.columns, ()),
}
# Tree strengths: (description, fit cost relative to "light", XGBoost and LightGBM overrides).
# The costs are fit times of the whole ensemble on SPY 2010-2025 at h = 5, one thread,
# relative to "light" (``bench/bench.py --fit-costs``, 5 rounds, 2026-11-27: 1.80 and 2.63);
# the rule only compares them, so their order is what matters.
_TREES: dict[str, tuple[str, float, dict[str, Any], dict[str, Any]]] = {
    "light": ("150 trees, lr 0.01, depth 2 / 4 leaves (the defaults)", 1.0, {}, {}),
    "medium": (
        "300 trees, lr 0.01, depth 2 / 4 leaves",
        1.8,
        {"n_estimators": 300},
        {"n_estimators": 300},
    ),
    "deep": (
        "300 trees, lr 0.02, depth 3 / 8 leaves, 20 / 100 rows per leaf",
        2.6,
        {"n_estimators": 300, "learning_rate": 0.02, "max_depth": 3, "min_child_weight": 20.0},
        {"n_estimators": 300, "learning_rate": 0.02, "num_leaves": 8, "min_child_samples": 100},
    ),
}


_META_TEXT: dict[MetaLearner, str] = {
    "ridge": "",
    "core_mix": "; meta-learner mixes the core alone with both boosted learners, out of fold",
    "loss_mix": "; the core alone and both boosted learners mixed out of fold to minimise "
    "ln RMSE + ln QLIKE",
}


def _grid_spec(core_name: str, tree_name: str, meta: MetaLearner = "ridge") -> CandidateSpec:
    core_text, core, logs = _CORES[core_name]
    tree_text, cost, xgb_params, lgbm_params = _TREES[tree_name]
    return CandidateSpec(
        name=f"{core_name}+{tree_name}" + ("" if meta == "ridge" else f"+{meta}"),
        description=f"core: {core_text}; trees: {tree_text}; Duan correction" + _META_TEXT[meta],
        cost=cost,
        core=list(core),
        core_logs=list(logs),
        bias="duan",
        xgb_params=xgb_params,
        lgbm_params=lgbm_params,
        meta=meta,
    )


def _candidates() -> tuple[CandidateSpec, ...]:
    out = [_grid_spec(core, trees) for core in _CORES for trees in _TREES]
    # The trees earning their weight against the core alone, out of fold, in every training
    # window (``StackedEnsemble(meta="core_mix")``): on the default core at each tree
    # strength, and on the other range core at the cheapest strength.
    out += [
        _grid_spec(core, trees, meta="core_mix")
        for core, trees in (
            ("range_vix_rel", "light"),
            ("range_vix_rel", "medium"),
            ("range_vix_rel", "deep"),
            ("range_vix", "light"),
        )
    ]
    # Third round: the same three forecasts mixed by the rule's own two losses
    # (``meta="loss_mix"``), at the cheapest and the strongest tree setting.
    out += [_grid_spec("range_vix_rel", trees, meta="loss_mix") for trees in ("light", "deep")]
    # The release before this protocol, for the record: its exp(s²/2) correction.
    out.append(
        CandidateSpec(
            name="range_vix_rel+light+normal_bias",
            description="the previous release: range_vix_rel+light with the exp(s²/2) correction",
            cost=1.0,
            core=list(HAR_CORE),
            core_logs=list(HAR_CORE_LOGS),
            bias="normal",
            xgb_params={},
            lgbm_params={},
        )
    )
    return tuple(out)


CANDIDATES: tuple[CandidateSpec, ...] = _candidates()


def candidate(name: str) -> CandidateSpec:
    """The candidate called ``name`` (``--candidate``)."""
    for spec in CANDIDATES:
        if spec.name == name:
            return spec
    raise ConfigError(
        f"unknown ensemble candidate {name!r}. Fix: use one of "
        f"{', '.join(c.name for c in CANDIDATES)}, or leave --candidate unset."
    )


def ensemble_spec(settings: Settings) -> CandidateSpec:
    """The ensemble's settings: ``--candidate``, or the packaged selection's choice."""
    if settings.candidate:
        return candidate(settings.candidate)
    return chosen_for(settings.horizon)


def ensemble_kwargs(spec: CandidateSpec) -> dict[str, Any]:
    """``StackedEnsemble`` keyword arguments of a candidate."""
    return {
        "core": tuple(spec.core),
        "core_logs": tuple(spec.core_logs),
        "bias": spec.bias,
        "xgb_params": dict(spec.xgb_params),
        "lgbm_params": dict(spec.lgbm_params),
        "meta": spec.meta,
    }


def log_score(rmse_ratio: float, qlike_ratio: float) -> float:
    """The rule's number for one series: the mean of the two losses' log ratios."""
    return (math.log(rmse_ratio) + math.log(qlike_ratio)) / 2.0


def choose(scores: Sequence[CandidateScore], candidates: Sequence[CandidateSpec]) -> dict[int, str]:
    """The rule (``RULE``), per horizon: only candidates scored on every series of that
    horizon compete; their score is the mean ``log_score`` over the series."""
    chosen: dict[int, str] = {}
    for h in sorted({s.horizon for s in scores}):
        at_h = [s for s in scores if s.horizon == h]
        series = {s.symbol for s in at_h}
        mean: dict[str, float] = {}
        for spec in candidates:
            mine = [s.log_score for s in at_h if s.model == spec.name]
            if len(mine) == len(series):
                mean[spec.name] = sum(mine) / len(mine)
        if not mean:
            continue
        best = min(mean.values())
        eligible = [c for c in candidates if c.name in mean and mean[c.name] <= best + PARSIMONY]
        # min() keeps the first of equal keys: the earlier candidate wins a tie.
        chosen[h] = min(eligible, key=lambda c: (c.cost, mean[c.name])).name
    return chosen


@cache
def packaged_record() -> SelectionRecord:
    """The shipped selection (``volforecast/selection.json``), read once per process."""
    path = resources.files("volforecast").joinpath(SELECTION_JSON)
    try:
        return SelectionRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"the packaged selection record {path} cannot be read ({exc}); it says which "
            "ensemble settings each horizon uses. Fix: reinstall volforecast, or name the "
            "settings with --candidate."
        ) from exc


def chosen_for(horizon: int) -> CandidateSpec:
    """The packaged choice for ``horizon``; a horizon the selection did not cover takes the
    choice of the nearest one it did (the shorter on a tie)."""
    chosen = {int(h): name for h, name in packaged_record().chosen.items()}
    nearest = min(chosen, key=lambda h: (abs(h - horizon), h))
    return candidate(chosen[nearest])


def make_ensemble(settings: Settings) -> StackedEnsemble:
    """The ensemble ``train``, ``evaluate`` and ``select`` fit: the setting of
    ``ensemble_spec(settings)`` (``--candidate``, else the packaged choice for the horizon) at
    the horizon, seed and thread count of ``settings``. One place, so they cannot differ.

    Examples
    --------
    >>> from volforecast.config import Settings
    >>> model = make_ensemble(Settings(horizon=5))
    >>> model.horizon
    5
    """
    return StackedEnsemble(
        horizon=settings.horizon,
        seed=settings.seed,
        n_jobs=fit_threads(settings.threads),
        **ensemble_kwargs(ensemble_spec(settings)),
    )
