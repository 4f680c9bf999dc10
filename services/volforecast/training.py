"""Training a model set: data -> features -> Model A and Model B -> one published set + history.

``train_models`` fits both models and builds every file of the set in memory; ``run_train``
does it under the models-directory lock and publishes the set. ``volforecast train``, universe
runs and the replay all train through ``run_train``.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from volforecast import __version__, lineage, selection
from volforecast.blending import BlendedCalibration, fit_shipped
from volforecast.config import Settings
from volforecast.data import Downloader, MarketData, check_freshness, load_market_data
from volforecast.ensemble import StackedEnsemble
from volforecast.errors import DataError
from volforecast.faults import check_feed
from volforecast.features import FEATURE_COLUMNS, TARGET, build_dataset, labeled, log_returns
from volforecast.metrics import Scores, score
from volforecast.pooling import PoolData, PoolPriors, cached_pool
from volforecast.progress import Progress
from volforecast.schemas import (
    DateRange,
    DualModelBaseline,
    ModelAInfo,
    ModelBInfo,
    PoolingInfo,
    TrainingRecord,
    ValidationBaseline,
)
from volforecast.splits import MIN_LABELED_ROWS, Split, model_a_split, model_b_split
from volforecast.store import (
    DUAL_FILE,
    MODEL_A_FILE,
    MODEL_B_FILE,
    VALIDATION_FILE,
    ModelsDirectory,
    serialize_model,
    sha256,
)

log = logging.getLogger(__name__)

TRAIN_FRACTION = 0.9
MODEL_B_TEST_ROWS = 30


@dataclass(frozen=True)
class FittedModel:
    ensemble: StackedEnsemble
    split: Split
    train_index: pd.DatetimeIndex
    eval_index: pd.DatetimeIndex
    scores: Scores
    eval_predictions: np.ndarray
    calibration: BlendedCalibration
    pooling: PoolingInfo | None = None


@dataclass(frozen=True)
class TrainingResult:
    run_id: str
    record: TrainingRecord
    validation: ValidationBaseline
    dual: DualModelBaseline
    model_a: FittedModel
    model_b: FittedModel


def new_run_id(now: dt.datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def fit_on_split(
    data: pd.DataFrame,
    returns: pd.Series,
    split: Split,
    settings: Settings,
    progress: Progress,
    priors: PoolPriors | None = None,
) -> FittedModel:
    """Fit one model on ``split``'s training rows (a prefix of ``data``) and score it on its
    evaluation rows; ``priors``: the cores shrunk towards the pool (``--pool-universe``)."""
    X = data.loc[:, list(FEATURE_COLUMNS)]
    y = data[TARGET]
    pooling = None
    if priors is not None:  # before the fit: a pool with no panel for it fails fast
        pooling = priors.info(str(settings.pool_universe), split.n_train)
        progress(
            f"core shrunk towards the panel of {len(pooling.series)} pool series "
            f"({pooling.panel_rows} rows through {pooling.panel_through}), weight "
            f"{pooling.own_weight:.2f} on its own"
        )
    ensemble = selection.make_ensemble(settings)
    ensemble.fit(X.iloc[split.train], y.iloc[split.train], progress=progress, core_priors=priors)
    progress(
        "out-of-fold mix: "
        + ", ".join(f"{k} {w:.2f}" for k, w in ensemble.mix_weights_.items())
        + " (core: the linear core alone)"
    )
    # From the training rows' out-of-fold forecasts: the calibration reads nothing later.
    blend = fit_shipped(
        y.iloc[split.train].to_numpy(), ensemble.oof_forecast_, returns,
        pd.DatetimeIndex(X.index[split.train]), settings,
    )  # fmt: skip
    q = blend.calibration.volatility.log_residual_quantiles
    progress(
        f"calibrated on {blend.calibration.volatility.n} out-of-fold rows: conformal 90% "
        f"interval "
        f"x{np.exp(q[0.05]):.2f}..x{np.exp(q[0.95]):.2f} of the forecast"
    )
    if blend.partner_params is not None:
        p = blend.partner_params
        persistence = p["alpha[1]"] + p["gamma[1]"] / 2 + p["beta[1]"]
        progress(
            f"quantiles averaged with GJR-GARCH-t's (weight {1 - blend.weight:g}; fitted "
            f"on the same window: persistence {persistence:.3f}, Student-t nu {p['nu']:.1f})"
        )
    preds = ensemble.predict(X.iloc[split.evaluate])
    return FittedModel(
        ensemble=ensemble,
        split=split,
        train_index=pd.DatetimeIndex(X.index[split.train]),
        eval_index=pd.DatetimeIndex(X.index[split.evaluate]),
        scores=score(y.iloc[split.evaluate], preds),
        eval_predictions=preds,
        calibration=blend,
        pooling=pooling,
    )


def _day(ts: Any) -> dt.date:
    return pd.Timestamp(ts).date()


def train_models(
    market: MarketData,
    settings: Settings,
    run_id: str,
    now: dt.datetime,
    progress: Progress,
    pool: PoolData | None = None,
) -> tuple[TrainingResult, dict[str, bytes]]:
    """Fit both models and build every file of the set (in memory; nothing is written);
    ``pool``: the ``--pool-universe`` rows their cores are shrunk towards."""
    started = time.monotonic()
    data = labeled(build_dataset(market.frame, settings.horizon))
    n = len(data)
    if n < MIN_LABELED_ROWS:
        raise DataError(
            f"only {n} labeled rows from {market.source} between {settings.start} and "
            f"{settings.as_of or market.last_date}; training needs at least {MIN_LABELED_ROWS} "
            "(about two years). Fix: move --start earlier or --as-of later."
        )
    spec = selection.ensemble_spec(settings)
    progress(
        f"ensemble settings {spec.name}"
        + (
            " (--candidate)"
            if settings.candidate
            else f" (packaged selection, h={settings.horizon})"
        )
    )
    purge = settings.horizon
    split_a = model_a_split(n, TRAIN_FRACTION, purge)
    split_b = model_b_split(n, MODEL_B_TEST_ROWS, purge)
    progress(
        f"Model A (90%): {split_a.n_train} training rows, {split_a.n_evaluate} validation rows"
    )
    returns = log_returns(market.frame["spy_adj_close"])
    # Both splits' training rows are prefixes of ``data``: one set of panels serves both.
    priors = None
    if pool is not None:
        ensemble = selection.make_ensemble(settings)
        ends = [*ensemble.fit_ends(split_a.n_train), *ensemble.fit_ends(split_b.n_train)]
        priors = PoolPriors.for_fits(
            pool, pd.DatetimeIndex(data.index), ends, exclude=settings.symbol
        )
    fit_a = fit_on_split(
        data, returns, split_a, settings, lambda m: progress(f"Model A: {m}"), priors
    )
    progress(f"Model B (all-30): {split_b.n_train} training rows, {split_b.n_evaluate} test rows")
    fit_b = fit_on_split(
        data, returns, split_b, settings, lambda m: progress(f"Model B: {m}"), priors
    )

    stamp = now.isoformat()
    as_of_day = settings.as_of or now.date()
    common = {
        "run_id": run_id,
        "horizon": settings.horizon,
        "target": f"realized volatility of the next {settings.horizon} trading days (daily units)",
        "created_at": stamp,
        "volforecast_version": __version__,
        "symbol": settings.symbol,
        "ensemble_settings": spec.name,
    }
    blobs = {}
    for name, fit, label in ((MODEL_A_FILE, fit_a, "A"), (MODEL_B_FILE, fit_b, "B")):
        blobs[name] = serialize_model(
            fit.ensemble.artifact(
                list(FEATURE_COLUMNS),
                model=label,
                training_date_start=_day(fit.train_index[0]),
                training_date_end=_day(fit.train_index[-1]),
                training_samples=len(fit.train_index),
                mix_weights=dict(fit.ensemble.mix_weights_),
                calibration=fit.calibration.to_dict(),
                **({"pooling": fit.pooling.model_dump(mode="json")} if fit.pooling else {}),
                **common,
            )
        )
    a_info = ModelAInfo(
        training_samples=len(fit_a.train_index),
        training_date_start=_day(fit_a.train_index[0]),
        training_date_end=_day(fit_a.train_index[-1]),
        validation_rmse=fit_a.scores.rmse,
        validation_mae=fit_a.scores.mae,
        validation_r2=fit_a.scores.r2,
        validation_samples=fit_a.scores.n,
        validation_date_start=_day(fit_a.eval_index[0]),
        validation_date_end=_day(fit_a.eval_index[-1]),
        sha256=sha256(blobs[MODEL_A_FILE]),
    )
    b_info = ModelBInfo(
        training_samples=len(fit_b.train_index),
        training_date_start=_day(fit_b.train_index[0]),
        training_date_end=_day(fit_b.train_index[-1]),
        test_samples=fit_b.scores.n,
        test_date_start=_day(fit_b.eval_index[0]),
        test_date_end=_day(fit_b.eval_index[-1]),
        test_rmse=fit_b.scores.rmse,
        test_mae=fit_b.scores.mae,
        test_r2=fit_b.scores.r2,
        note=f"Model B held out last {MODEL_B_TEST_ROWS} samples for testing",
        sha256=sha256(blobs[MODEL_B_FILE]),
    )
    # What every file of the set says about the run that wrote it.
    run: dict[str, Any] = {
        "run_id": run_id,
        "timestamp": stamp,
        "horizon": settings.horizon,
        "symbol": settings.symbol,
    }
    implied_vol = settings.implied_vol_for(settings.symbol)
    source: dict[str, Any] = {
        "data_source": market.source,
        "data_end": market.last_date,
        "implied_vol": implied_vol,
    }
    validation = ValidationBaseline(
        validation_rmse=a_info.validation_rmse,
        validation_mae=a_info.validation_mae,
        validation_r2=a_info.validation_r2,
        train_val_split=TRAIN_FRACTION,
        date_range=DateRange(
            train_start=a_info.training_date_start,
            train_end=a_info.training_date_end,
            val_start=a_info.validation_date_start,
            val_end=a_info.validation_date_end,
        ),
        purge_rows=purge,
        validation_samples=a_info.validation_samples,
        model_sha256=a_info.sha256,
        **run,
    )
    both = {"model_a": a_info, "model_b": b_info}
    dual = DualModelBaseline(
        purge_rows=purge, feature_cols=list(FEATURE_COLUMNS), **both, **run, **source
    )
    record = TrainingRecord(
        training_date=as_of_day,
        as_of=settings.as_of,
        duration_seconds=round(time.monotonic() - started, 3),
        ensemble_settings=spec.name,
        data_digest=lineage.data_digest(market.frame, settings.symbol, implied_vol),
        library_versions=lineage.library_versions(),
        data_stale=market.stale,
        repaired_rows=list(market.repaired),
        history_digest=lineage.history_digest(
            market.frame.loc[pd.Timestamp(a_info.training_date_start) :]
        ),
        pooling=(
            {"model_a": fit_a.pooling, "model_b": fit_b.pooling}
            if fit_a.pooling is not None and fit_b.pooling is not None
            else None
        ),
        **both,
        **run,
        **source,
    )
    blobs[VALIDATION_FILE] = validation.model_dump_json(indent=2).encode()
    blobs[DUAL_FILE] = dual.model_dump_json(indent=2).encode()
    result = TrainingResult(run_id, record, validation, dual, fit_a, fit_b)
    return result, blobs


def check_new_bars(market: MarketData, live_end: dt.date | None, settings: Settings) -> None:
    """Refuse (DataFaultError, exit 13) to fit on a feed whose bars since the live set's data
    end show a fault (``faults``): a set fitted on a frozen or mis-scaled feed would pass the
    monitor's check, which starts after the set's data. No live set: nothing to compare with."""
    if live_end is not None:
        check_feed(
            market.frame, pd.Timestamp(live_end), market.source, settings.accept_data_through
        )


def run_train(
    settings: Settings,
    progress: Progress,
    *,
    downloader: Downloader | None = None,
    now: dt.datetime | None = None,
    market: MarketData | None = None,
) -> TrainingResult:
    """Train Model A and Model B on ``settings.symbol`` and publish them as one set.

    Under the models-directory lock: finish what a killed run left (``recover``), load the
    data (or use ``market``, already cut at ``--as-of``), fit both models, write the set and
    its training-history line together (``ModelsDirectory.commit``). On any failure the
    directory is left as it was.

    Parameters
    ----------
    settings : Settings
        Symbol, horizon, data source, models directory, ``--as-of`` and the rest.
    progress : callable
        Receives one plain line per step (the CLI logs them with the elapsed time).
    downloader, now, market
        Stand-ins for tests and the replay: the download, the clock, the loaded data.

    Returns
    -------
    TrainingResult
        The run id, the training record (the history line), both baselines and both fits.

    Examples
    --------
    >>> from volforecast.config import build_settings
    >>> result = run_train(build_settings(data_source="sample"), print)  # doctest: +SKIP
    >>> result.record.model_a.validation_rmse  # doctest: +SKIP
    """
    now = now or dt.datetime.now(dt.UTC)
    run_id = new_run_id(now)
    models = ModelsDirectory.for_settings(settings)
    with models.lock(settings.lock_timeout, purpose="train", create=True):
        models.recover(settings.archive_keep)
        progress(f"training run {run_id} ({settings.symbol})")
        # ``market``: data already loaded and cut at --as-of (a replay reuses one load).
        if market is None:
            market = load_market_data(settings, downloader=downloader, now=now)
            check_freshness(market, settings, now.date(), "train")
        for note in market.notes:
            progress(note)
        check_new_bars(market, models.live_data_end(), settings)
        pool = None
        if settings.pool_universe is not None:
            pool = cached_pool(settings, downloader, now.date(), progress)
        result, blobs = train_models(market, settings, run_id, now, progress, pool)
        progress(f"writing the model set to {models.root}")
        models.commit(run_id, blobs, result.record, keep=settings.archive_keep)
    return result
