"""Monitoring a model set: score both models on data that arrived after training, measure
drift, recommend a model, append one line to monitoring_history.jsonl.

``volforecast monitor``, universe runs and the replay all monitor through ``run_monitor``.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from volforecast import backtests, drift, lineage, policy
from volforecast.blending import stored_calibration
from volforecast.calibration import forward_returns
from volforecast.config import Settings
from volforecast.data import Downloader, MarketData, check_freshness, load_market_data
from volforecast.ensemble import FloatArray, predict_artifact
from volforecast.errors import NoNewDataError
from volforecast.faults import check_feed
from volforecast.features import TARGET, build_dataset, labeled, log_returns
from volforecast.progress import Progress
from volforecast.schemas import ModelSummary, MonitoringRecord, RiskCheck, TestWindow, VarCheck
from volforecast.store import MONITORING_HISTORY, CurrentModels, ModelsDirectory

log = logging.getLogger(__name__)

# The naive forecast Page's test measures Model A against: the last 5 days' realized volatility.
NAIVE_FEATURE = "spy_rv_5d"


@dataclass(frozen=True)
class MonitorResult:
    record: MonitoringRecord


def _past_runs(history: list[MonitoringRecord], run_id: str) -> list[policy.PastRun]:
    return [
        policy.PastRun(
            drift_pct=r.drift.model_a_drift_pct, model_b_win_rate=r.comparison.model_b_win_rate
        )
        for r in history
        if r.models_run_id == run_id
    ]


def _summary(info: object) -> ModelSummary:
    return ModelSummary.model_validate(info, from_attributes=True)


def risk_check(
    artifact: dict[str, Any], market: MarketData, fresh: pd.DataFrame, forecast: FloatArray
) -> RiskCheck | None:
    """How the model's stated uncertainty held on the new rows: coverage of its central
    intervals, and exceedances of its 1-day VaR (with Kupiec's p) on the rows whose next
    day is known. None for a set trained before calibration."""
    blend = stored_calibration(artifact)
    if blend is None:
        return None
    returns = log_returns(market.frame["spy_adj_close"])
    index = pd.DatetimeIndex(fresh.index)
    dist = blend.distribution_on(forecast, returns, index)
    realized = fresh[TARGET].to_numpy()
    levels = blend.levels
    loss = -forward_returns(returns, index, 1)[0]
    return RiskCheck(
        rows=len(fresh),
        coverage={
            k: backtests.coverage(realized, dist[f"q{lo:g}"], dist[f"q{hi:g}"])
            for k, (lo, hi) in backtests.central_pairs(levels).items()
        },
        var={
            f"{lv:g}": VarCheck(**backtests.var_check(loss, dist[f"var{lv:g}"], lv))
            for lv in blend.var_levels
        },
        method=blend.method_name,
    )


def set_data_end(current: CurrentModels) -> pd.Timestamp:
    """The live set's last bar of data (its test window's end in files that predate it)."""
    return pd.Timestamp(current.dual.data_end or current.dual.model_b.test_date_end)


def feed_checked_through(
    models: ModelsDirectory, current: CurrentModels, settings: Settings
) -> pd.Timestamp:
    """The last bar the feed check has already passed: the live set's data end or the data
    end of the latest monitoring run on it, whichever is later."""
    marks = [set_data_end(current)]
    history = models.read_history(MONITORING_HISTORY, MonitoringRecord)
    ends = [
        r.data_end
        for r in history
        if r.models_run_id == current.run_id
        and r.data_end is not None
        and (settings.as_of is None or r.monitoring_date <= settings.as_of)
    ]
    if ends:
        marks.append(pd.Timestamp(ends[-1]))
    return max(marks)


def proven_signals(
    current: CurrentModels,
    market: MarketData,
    fresh: pd.DataFrame,
    forecast: FloatArray,
    validation: pd.DataFrame,
    validation_forecast: FloatArray,
) -> dict[str, Any]:
    """The signals our advice follows (``policy.advice``): the live set's age in trading
    days, whether the feed's history over its training period changed, and Page's test of
    Model A's loss against the naive forecast's on the new rows (``forecast``: Model A's),
    standardized by the same gap on Model A's validation rows."""
    data_end = set_data_end(current)
    frame = market.frame
    age = int((frame.index > data_end).sum())
    lineage_changed = None
    a_start = pd.Timestamp(current.dual.model_a.training_date_start)
    if current.record.history_digest is not None and len(frame) and frame.index[0] <= a_start:
        seen = lineage.history_digest(frame.loc[a_start:data_end])
        lineage_changed = seen != current.record.history_digest
    reference = drift.loss_gap(validation[TARGET], validation_forecast, validation[NAIVE_FEATURE])
    gap = drift.loss_gap(fresh[TARGET], forecast, fresh[NAIVE_FEATURE])
    page = drift.cusum(gap, reference, block=current.dual.horizon)
    return {"set_age_days": age, "lineage_changed": lineage_changed, "cusum": page}


def run_monitor(
    settings: Settings,
    progress: Progress,
    *,
    downloader: Downloader | None = None,
    now: dt.datetime | None = None,
    market: MarketData | None = None,
) -> MonitorResult:
    """Score the live set of ``settings.symbol`` on the rows that arrived after training and
    append one line to ``monitoring_history.jsonl``.

    Reading and scoring take no lock; the append does (the consecutive-run rules read the
    history under it). Raises ``NoNewDataError`` (exit 5) when no labeled row follows Model B's
    training period yet.

    Returns
    -------
    MonitorResult
        ``.record``: the history line (the spec's fields, and ours: windows, feature drift,
        retraining advice).

    Examples
    --------
    >>> from volforecast.config import build_settings
    >>> run_monitor(build_settings(data_source="sample"), print).record.recommendation  # doctest: +SKIP
    'USE MODEL A (90%)'
    """
    now = now or dt.datetime.now(dt.UTC)
    models = ModelsDirectory.for_settings(settings)
    # Reading and scoring need no lock and no write access; only the append does.
    current = models.load_current()
    dual = current.dual
    deployed = models.live_deployment(dual.run_id)
    progress(
        f"monitoring {settings.symbol} model set {dual.run_id} (Model B trained to "
        f"{dual.model_b.training_date_end}"
        + (f"; live since {deployed.timestamp} by {deployed.action})" if deployed else ")")
    )
    current.check_serves(settings)
    # ``market``: data already loaded and cut at --as-of (a replay reuses one load).
    if market is None:
        market = load_market_data(settings, downloader=downloader, now=now)
        check_freshness(market, settings, now.date(), "monitor")
    check_feed(
        market.frame, feed_checked_through(models, current, settings), market.source,
        settings.accept_data_through,
    )  # fmt: skip
    data = labeled(build_dataset(market.frame, dual.horizon))
    fresh = current.new_rows(data)
    if fresh.empty:
        raise NoNewDataError(
            f"no labeled rows after {dual.model_b.training_date_end} in {market.source} "
            f"(data ends {market.last_date}; a row needs {dual.horizon} later trading days "
            "for its target). Fix: run monitor after more trading days, or check --as-of."
        )
    cols = list(current.model_a["feature_cols"])
    pred_a = predict_artifact(current.model_a, fresh[cols])
    pred_b = predict_artifact(current.model_b, fresh[cols])
    progress(
        f"scoring both models on {len(fresh)} new rows {fresh.index[0].date()}..{fresh.index[-1].date()}"
    )
    risk = risk_check(current.model_a, market, fresh, pred_a)
    if risk is None:
        progress("Model A was trained before calibration: no interval or VaR check (retrain)")
    else:
        progress(
            f"Model A's 90% interval held on {risk.coverage['0.9']:.0%} of the new rows; "
            + ", ".join(
                f"{lv} VaR exceeded {v.exceedances} of {v.days} days (Kupiec p {v.kupiec_p:.2f})"
                for lv, v in risk.var.items()
            )
        )
    wins = drift.windows(fresh[TARGET], pred_a, pred_b)
    comp = drift.comparison(wins)
    rmse_drift = drift.drift(comp.model_a_rmse, current.validation.validation_rmse)
    reference = current.training_rows(data)[cols]
    features = drift.feature_drift(reference, fresh[cols])
    validation = current.validation_rows(data)
    pred_val = predict_artifact(current.model_a, validation[cols])
    resid = drift.residual_drift(fresh[TARGET], pred_a, validation[TARGET], pred_val)
    if resid is not None:
        features = features.model_copy(
            update={"residual_ks_statistic": resid[0], "residual_ks_pvalue": resid[1]}
        )
    if features.skipped:
        log.warning("feature drift not computed: %s", features.skipped)
    signals = proven_signals(current, market, fresh, pred_a, validation, pred_val)
    with models.lock(settings.lock_timeout, purpose="monitor"):
        models.recover(settings.archive_keep)
        # Read under the lock: the consecutive-run rules need every earlier run.
        history = models.read_history(MONITORING_HISTORY, MonitoringRecord)
        spec = policy.retraining(
            rmse_drift.model_a_drift_pct, comp.model_b_win_rate, _past_runs(history, dual.run_id)
        )
        advice = policy.advice(spec, max_set_age_days=settings.max_set_age, **signals)
        record = MonitoringRecord(
            timestamp=now.isoformat(),
            monitoring_date=settings.as_of or now.date(),
            model_a=_summary(dual.model_a),
            model_b=_summary(dual.model_b),
            test_window=TestWindow(
                n_samples=len(fresh),
                date_start=fresh.index[0].date(),
                date_end=fresh.index[-1].date(),
            ),
            drift=rmse_drift,
            comparison=comp,
            recommendation=policy.recommendation(
                comp.model_b_win_rate, rmse_drift.model_a_drift_pct
            ),
            recommendation_reason=policy.recommendation_reason(
                comp.model_b_win_rate, rmse_drift.model_a_drift_pct
            ),
            windows=wins,
            models_run_id=dual.run_id,
            as_of=settings.as_of,
            data_source=market.source,
            retraining=advice,
            feature_drift=features,
            symbol=settings.symbol,
            data_age_days=market.age_days(settings.as_of or now.date()),
            data_stale=market.stale,
            live_since=deployed.timestamp if deployed else None,
            deployed_by=deployed.action if deployed else None,
            risk=risk,
            data_end=market.last_date,
        )
        models.assert_lock_held()
        models.append_history(MONITORING_HISTORY, record)
    return MonitorResult(record=record)
