"""Scoring forecasts against what was realized: every model's metrics, ratios to a reference
model, the best baseline, and one Diebold–Mariano family per loss with its Holm adjustment.
Pure functions over a table of forecasts (``walkforward.assemble``'s shape: a ``realized``
column and one column per model)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from volforecast import selection
from volforecast.metrics import (
    LOSSES,
    DMResult,
    diebold_mariano,
    holm,
    mae,
    mse_var,
    mz_r2,
    qlike,
    rmse,
)
from volforecast.schemas import CandidateScore, DMTest, ModelMetrics
from volforecast.walkforward import ENSEMBLE, ENSEMBLE_VARIANTS, REALIZED

HAR_RV = "har_rv"
# Metric name -> lower is better.
RANKED = {"rmse": True, "mae": True, "mse_var": True, "qlike": True, "mz_r2": False}
# The bar a loss is judged by in the headline: the metric whose mean the loss is.
LOSS_METRIC = {"squared_error": "rmse", "qlike": "qlike"}


def ratio(value: float, reference: float) -> float:
    """``value / reference``; NaN when the reference is 0 (nothing to compare against)."""
    return value / reference if reference else float("nan")


@dataclass(frozen=True)
class FamilyTest:
    """One Diebold–Mariano test of a family: the model against ``against`` under ``loss``."""

    against: str
    loss: str
    result: DMResult
    p_value_holm: float


def dm_family(
    forecasts: pd.DataFrame,
    model: str,
    others: Sequence[str],
    horizon: int,
    *,
    skip_identical: bool = False,
) -> list[FamilyTest]:
    """``model`` against each of ``others`` under each loss of ``metrics.LOSSES``: one family
    per loss, Holm-adjusted, so that a claim of beating "the best" competitor is not one of
    several tries reported alone. ``skip_identical`` leaves out competitors whose losses equal
    the model's (no test to make). Ordered by loss, then as ``others``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> realized = np.exp(np.random.default_rng(2).normal(-4.6, 0.3, 250))
    >>> table = pd.DataFrame({"realized": realized, "a": realized * 1.02, "b": realized * 1.5,
    ...                       "c": realized * 0.6})
    >>> [(t.loss, t.against, t.p_value_holm < 0.05) for t in dm_family(table, "a", ["b", "c"], 1)]
    [('squared_error', 'b', True), ('squared_error', 'c', True), ('qlike', 'b', True), ('qlike', 'c', True)]
    """
    realized = forecasts[REALIZED]
    tests = []
    for loss_name, loss in LOSSES.items():
        mine = loss(realized, forecasts[model])
        family = []
        for other in others:
            theirs = loss(realized, forecasts[other])
            if skip_identical and np.allclose(mine, theirs):
                continue
            family.append((other, diebold_mariano(mine, theirs, horizon)))
        adjusted = holm([r.p_value for _, r in family])
        tests += [
            FamilyTest(other, loss_name, r, p)
            for (other, r), p in zip(family, adjusted, strict=True)
        ]
    return tests


def model_metrics(realized: pd.Series, forecast: pd.Series) -> ModelMetrics:
    return ModelMetrics(
        rmse=rmse(realized, forecast),
        mae=mae(realized, forecast),
        mse_var=mse_var(realized, forecast),
        qlike=qlike(realized, forecast),
        mz_r2=mz_r2(realized, forecast),
    )


def by_year(forecasts: pd.DataFrame, models: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """RMSE and QLIKE of ``models`` per calendar year: where in time each one wins."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    years = pd.DatetimeIndex(forecasts.index).year
    for year in sorted(set(years)):
        rows = forecasts.loc[years == year]
        out[str(year)] = {
            m: {"rmse": rmse(rows[REALIZED], rows[m]), "qlike": qlike(rows[REALIZED], rows[m])}
            for m in models
        }
    return out


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, ModelMetrics]
    ratio_to_har_rv: dict[str, dict[str, float]]
    best_baseline: dict[str, str]
    beats: dict[str, bool]
    dm_tests: list[DMTest]
    yearly: dict[str, dict[str, dict[str, float]]]


def score_forecasts(forecasts: pd.DataFrame, horizon: int) -> Evaluation:
    """Metrics, ratios to HAR-RV and DM tests of the ``ensemble`` column against the baselines.

    Parameters
    ----------
    forecasts : DataFrame
        A ``realized`` column, an ``ensemble`` column and one column per baseline (``har_rv``
        among them), one row per forecast day.
    horizon : int
        The forecast horizon (the DM tests' Newey–West lags).

    Returns
    -------
    Evaluation
        Every model's metrics and ratios to HAR-RV, the best baseline per metric, whether the
        ensemble beats it, one Holm-adjusted DM family per loss, and RMSE/QLIKE per year.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> days = pd.bdate_range("2020-01-01", periods=300)
    >>> realized = np.exp(rng.normal(-4.6, 0.3, 300))
    >>> table = pd.DataFrame({"realized": realized, "ensemble": realized * 1.05,
    ...                       "har_rv": realized * 1.3}, index=days)
    >>> result = score_forecasts(table, horizon=5)
    >>> result.best_baseline["rmse"], round(result.ratio_to_har_rv["ensemble"]["rmse"], 3)
    ('har_rv', 0.167)
    """
    realized = forecasts[REALIZED]
    models = [c for c in forecasts.columns if c != REALIZED]
    # The ensemble's own variants (ensemble_pooled) are not baselines it must beat.
    baselines = [m for m in models if m != ENSEMBLE and m not in ENSEMBLE_VARIANTS]
    metrics = {m: model_metrics(realized, forecasts[m]) for m in models}
    har = metrics[HAR_RV].model_dump()
    ratios = {m: {k: ratio(v, har[k]) for k, v in metrics[m].model_dump().items()} for m in models}
    best: dict[str, str] = {}
    beats: dict[str, bool] = {}
    for key, lower_better in RANKED.items():
        values = {b: getattr(metrics[b], key) for b in baselines}
        pick = min if lower_better else max
        best[key] = pick(values, key=lambda b: values[b])
        mine = getattr(metrics[ENSEMBLE], key)
        beats[key] = bool(mine < values[best[key]] if lower_better else mine > values[best[key]])
    tests = [
        DMTest(
            against=t.against,
            loss=t.loss,
            statistic=t.result.statistic,
            p_value=t.result.p_value,
            lags=t.result.lags,
            mean_loss_difference=t.result.mean_loss_difference,
            p_value_holm=t.p_value_holm,
        )
        for t in dm_family(forecasts, ENSEMBLE, baselines, horizon)
    ]
    shown = list(dict.fromkeys([ENSEMBLE, HAR_RV, best["rmse"], best["qlike"]]))
    return Evaluation(metrics, ratios, best, beats, tests, by_year(forecasts, shown))


def candidate_scores(forecasts: pd.DataFrame, symbol: str, horizon: int) -> list[CandidateScore]:
    """Every model's development losses, over HAR-RV's."""
    realized = forecasts[REALIZED]
    har = (rmse(realized, forecasts[HAR_RV]), qlike(realized, forecasts[HAR_RV]))
    out = []
    for model in (c for c in forecasts.columns if c != REALIZED):
        r, q = rmse(realized, forecasts[model]), qlike(realized, forecasts[model])
        out.append(
            CandidateScore(
                symbol=symbol,
                horizon=horizon,
                model=model,
                n_forecasts=len(forecasts),
                rmse=r,
                qlike=q,
                rmse_ratio_har_rv=ratio(r, har[0]),
                qlike_ratio_har_rv=ratio(q, har[1]),
                log_score=selection.log_score(ratio(r, har[0]), ratio(q, har[1])),
            )
        )
    return out
