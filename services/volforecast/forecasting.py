"""The forecast users consume: from the latest data, with the model the latest monitoring run
on the current set recommends (Model A when there is none) or the one asked for.

``volforecast predict``, universe runs and the replay all forecast through ``run_predict``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Literal

from volforecast.blending import BlendedCalibration, stored_calibration
from volforecast.config import Settings
from volforecast.data import Downloader, MarketData, check_freshness, load_market_data
from volforecast.ensemble import predict_artifact
from volforecast.errors import DataError
from volforecast.features import ANNUALIZED_PCT, WARMUP_ROWS, build_dataset, log_returns
from volforecast.policy import USE_B
from volforecast.progress import Progress
from volforecast.schemas import Forecast, MonitoringRecord
from volforecast.store import (
    MODEL_A_FILE,
    MODEL_B_FILE,
    MONITORING_HISTORY,
    CurrentModels,
    ModelsDirectory,
)

log = logging.getLogger(__name__)

ModelChoice = Literal["a", "b"]


def choose_model(
    current: CurrentModels, history: list[MonitoringRecord], requested: ModelChoice | None
) -> tuple[Literal["A", "B"], str]:
    """The model to use and why: ``requested``, else the latest monitoring run on this model
    set, else Model A (the conservative default)."""
    if requested is not None:
        label: Literal["A", "B"] = "A" if requested == "a" else "B"
        return label, f"--model {requested}"
    mine = [r for r in history if r.models_run_id == current.run_id]
    if not mine:
        return "A", "no monitoring run on this model set yet: Model A (the default)"
    latest = mine[-1]
    label = "B" if latest.recommendation == USE_B else "A"
    return label, f"monitoring run of {latest.monitoring_date} recommends {latest.recommendation}"


def run_predict(
    settings: Settings,
    progress: Progress,
    *,
    requested: ModelChoice | None = None,
    downloader: Downloader | None = None,
    now: dt.datetime | None = None,
    market: MarketData | None = None,
) -> Forecast:
    """The forecast of the next ``horizon`` days' volatility from the latest day with complete
    features, by the model ``choose_model`` picks (``requested``: "a" or "b" forces one).
    Takes no lock and writes nothing: works on a read-only models volume.

    Returns
    -------
    Forecast
        What ``volforecast predict`` prints: daily and annualized, the model, why, the set.

    Examples
    --------
    >>> from volforecast.config import build_settings
    >>> run_predict(build_settings(data_source="sample"), print).forecast_annualized_pct  # doctest: +SKIP
    """
    now = now or dt.datetime.now(dt.UTC)
    models = ModelsDirectory.for_settings(settings)
    # No lock: a committed set is immutable, so predict works on a read-only models volume.
    current = models.load_current()
    current.check_serves(settings, as_of_after_training=True)
    history = models.read_history(MONITORING_HISTORY, MonitoringRecord)
    if settings.as_of is not None:  # a replayed day reads only the runs made by then
        history = [r for r in history if r.monitoring_date <= settings.as_of]
    label, why = choose_model(current, history, requested)
    deployed = models.live_deployment(current.run_id)
    artifact = current.model_a if label == "A" else current.model_b
    info = current.dual.model_a if label == "A" else current.dual.model_b
    horizon = current.dual.horizon
    # ``market``: data already loaded and cut at --as-of (a replay reuses one load).
    if market is None:
        market = load_market_data(settings, downloader=downloader, now=now)
        check_freshness(market, settings, now.date(), "predict")
    features = build_dataset(market.frame, horizon)
    if features.empty:
        raise DataError(
            f"{market.source}: no row has complete features (need {WARMUP_ROWS} trading days of history). "
            "Fix: move --start earlier."
        )
    cols = list(artifact["feature_cols"])
    last = features.iloc[[-1]]
    value = float(predict_artifact(artifact, last[cols])[0])
    features_date = last.index[0].date()
    progress(
        f"Model {label} ({why}) forecasts {horizon}-day volatility from features of {features_date}"
    )
    calibration = stored_calibration(artifact)
    if calibration is None:
        progress("this set was trained before calibration: no interval, VaR or ES (retrain)")
        risk: dict[str, object] = {}
    else:
        returns = log_returns(market.frame["spy_adj_close"])
        risk = risk_fields(calibration.distribution_on([value], returns, last.index), calibration)
    return Forecast(
        as_of=settings.as_of or market.last_date,
        features_date=features_date,
        horizon=horizon,
        forecast_daily=value,
        forecast_annualized_pct=value * ANNUALIZED_PCT,
        model=label,
        model_file=MODEL_A_FILE if label == "A" else MODEL_B_FILE,
        model_choice=why,
        run_id=current.run_id,
        training_date_end=info.training_date_end,
        data_source=market.source,
        symbol=settings.symbol,
        data_age_days=market.age_days(settings.as_of or now.date()),
        data_stale=market.stale,
        live_since=deployed.timestamp if deployed else None,
        deployed_by=deployed.action if deployed else None,
        **risk,
    )


def risk_fields(dist: dict[str, Any], blend: BlendedCalibration) -> dict[str, Any]:
    """A one-row distribution (``BlendedCalibration.distribution_on``) as ``Forecast``'s
    fields: quantiles, the 90% interval, VaR and ES of the horizon and of the next day."""

    def levels(prefix: str, suffix: str, keys: Any) -> dict[str, float]:
        return {f"{lv:g}": float(dist[f"{prefix}{lv:g}{suffix}"][0]) for lv in keys}

    quantiles = levels("q", "", blend.levels)
    var_levels = blend.calibration.risk_h.var_multipliers
    return {
        "quantiles": quantiles,
        "interval_90": [quantiles["0.05"], quantiles["0.95"]],
        "var": levels("var", "_h", var_levels),
        "es": levels("es", "_h", var_levels),
        "var_1d": levels("var", "", blend.var_levels),
        "es_1d": levels("es", "", blend.var_levels),
        "risk_method": blend.method_name,
    }
