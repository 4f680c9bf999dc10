"""``volforecast report``: trends of the training and monitoring histories as numbers, PNG
plots and one self-contained HTML page.

The numbers are ``summaries.trend_summary``'s (histories in, numbers out); ``run_report``
reads the models directory, recomputes the current Model A's validation forecasts from the
data and writes the files.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import html
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from volforecast.atomic import write_outputs
from volforecast.blending import stored_calibration
from volforecast.calibration import forward_returns
from volforecast.config import Settings
from volforecast.data import Downloader, load_market_data
from volforecast.drift import PSI_THRESHOLD
from volforecast.ensemble import predict_artifact
from volforecast.errors import VolforecastError
from volforecast.features import TARGET, build_dataset, labeled, log_returns
from volforecast.plots import (
    drift_over_time,
    forecasts_vs_realized,
    interval_and_exceedances,
    psi_bars,
    rmse_over_time,
)
from volforecast.policy import DRIFT_PLAN_PCT, DRIFT_RETRAIN_PCT
from volforecast.progress import Progress
from volforecast.schemas import MonitoringRecord, TrendReport
from volforecast.store import (
    MONITORING_HISTORY,
    CurrentModels,
    ModelsDirectory,
)
from volforecast.summaries import deployments_text, trend_summary, trend_text, wrote

log = logging.getLogger(__name__)

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
DRIFT_PNG = "drift.png"
RMSE_PNG = "rmse.png"
VALIDATION_PNG = "validation_forecasts.png"
PSI_PNG = "feature_psi.png"
RISK_PNG = "interval_and_var.png"


def validation_forecasts(
    current: CurrentModels, frame: pd.DataFrame
) -> tuple[pd.Series, pd.Series]:
    """(realized, Model A forecast) over the current Model A's validation dates."""
    rows = current.validation_rows(labeled(build_dataset(frame, current.dual.horizon)))
    cols = list(current.model_a["feature_cols"])
    forecast = pd.Series(predict_artifact(current.model_a, rows[cols]), index=rows.index)
    return rows[TARGET], forecast


def risk_forecasts(current: CurrentModels, frame: pd.DataFrame) -> pd.DataFrame:
    """Model A's forecast distribution on every labeled row from its validation period on
    (none of which it trained on): the realized volatility, the forecast and its 90%
    interval, the next day's loss and 1-day VaR. Empty for a set trained before calibration."""
    calibration = stored_calibration(current.model_a)
    data = labeled(build_dataset(frame, current.dual.horizon))
    rows = data.loc[data.index >= pd.Timestamp(current.dual.model_a.validation_date_start)]
    if calibration is None or rows.empty:
        return pd.DataFrame()
    cols = list(current.model_a["feature_cols"])
    forecast = predict_artifact(current.model_a, rows[cols])
    returns = log_returns(frame["spy_adj_close"])
    index = pd.DatetimeIndex(rows.index)
    dist = calibration.distribution_on(forecast, returns, index)
    return pd.DataFrame(
        {
            "realized": rows[TARGET].to_numpy(),
            "forecast": forecast,
            "lower_90": dist["q0.05"],
            "upper_90": dist["q0.95"],
            "loss_1d": -forward_returns(returns, index, 1)[0],
            "var_95": dist["var0.95"],
            "var_99": dist["var0.99"],
        },
        index=index,
    )


@dataclass(frozen=True)
class ReportResult:
    report: TrendReport
    text: str
    paths: list[Path]


def _records(index: list[str], **columns: list[float]) -> list[dict[str, str | float]]:
    return [
        {"date": d, **{k: float(v[i]) for k, v in columns.items()}} for i, d in enumerate(index)
    ]


def _html(text: str, images: dict[str, bytes], notes: list[str]) -> bytes:
    figures = "".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(data).decode()}"><figcaption>{html.escape(name)}</figcaption></figure>'
        for name, data in images.items()
    )
    note_items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>volforecast report</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "pre{background:#f4f4f4;padding:1em}img{max-width:100%}</style></head><body>"
        f"<h1>volforecast report</h1><pre>{html.escape(text)}</pre>"
        f"{f'<ul>{note_items}</ul>' if notes else ''}{figures}</body></html>"
    )
    return page.encode()


def run_report(
    settings: Settings,
    progress: Progress,
    *,
    downloader: Downloader | None = None,
    now: dt.datetime | None = None,
) -> ReportResult:
    now = now or dt.datetime.now(dt.UTC)
    models = ModelsDirectory.for_settings(settings)
    # No lock: committed sets are immutable and histories append-only, so report works on a
    # read-only models volume (with --output elsewhere).
    current = models.load_current()
    training = models.training_history(current.record)
    monitoring = models.read_history(MONITORING_HISTORY, MonitoringRecord)
    summary = trend_summary(training, monitoring, current.run_id)
    progress(f"{len(training)} training runs, {len(monitoring)} monitoring runs")
    images: dict[str, bytes] = {}
    notes: list[str] = []
    mon_dates = [str(r.monitoring_date) for r in monitoring]
    drift = [r.drift.model_a_drift_pct for r in monitoring]
    rmse_a = [r.comparison.model_a_rmse for r in monitoring]
    rmse_b = [r.comparison.model_b_rmse for r in monitoring]
    psi: dict[str, float] = {}
    if monitoring:
        when = pd.DatetimeIndex(pd.to_datetime(mon_dates))
        images[DRIFT_PNG] = drift_over_time(when, drift, (DRIFT_PLAN_PCT, DRIFT_RETRAIN_PCT))
        images[RMSE_PNG] = rmse_over_time(when, {"Model A": rmse_a, "Model B": rmse_b})
        # PSI is NaN when a run had too few new rows to bin (drift.PSI_MIN_ROWS).
        items = monitoring[-1].feature_drift.features.items()
        psi = {k: v.psi for k, v in items if np.isfinite(v.psi)}
        if psi:
            images[PSI_PNG] = psi_bars(
                psi,
                (PSI_THRESHOLD,),
                f"Feature drift (PSI), monitoring run of {monitoring[-1].monitoring_date}",
            )
        else:
            notes.append(
                "Feature PSI not plotted: the latest monitoring run had too few new rows for it."
            )
    else:
        notes.append("No monitoring history yet: drift, RMSE and PSI plots need a monitor run.")
    val_records: list[dict[str, str | float]] = []
    risk_records: list[dict[str, str | float]] = []
    try:
        market = load_market_data(settings, downloader=downloader, today=now.date())
        realized, forecast = validation_forecasts(current, market.frame)
        if len(realized):
            images[VALIDATION_PNG] = forecasts_vs_realized(
                forecast.to_frame("Model A"),
                realized,
                f"Current Model A (run {current.run_id}) on its validation period",
            )
            val_records = _records(
                [str(d.date()) for d in realized.index],
                realized=list(realized),
                forecast=list(forecast),
            )
        else:
            notes.append("The data holds none of Model A's validation dates; no validation plot.")
        risk = risk_forecasts(current, market.frame)
        if risk.empty:
            notes.append("No interval or VaR plot: the set was trained before calibration.")
        else:
            images[RISK_PNG] = interval_and_exceedances(
                risk,
                f"Current Model A (run {current.run_id}): 90% interval and 1-day VaR since validation",
            )
            # The last row's next day is not known yet: its loss is left out, not NaN.
            risk_records = [
                {
                    "date": str(d.date()),
                    **{str(k): float(v) for k, v in row.items() if np.isfinite(v)},
                }
                for d, row in zip(
                    pd.DatetimeIndex(risk.index), risk.to_dict("records"), strict=True
                )
            ]
    except VolforecastError as exc:
        log.warning("validation plot skipped: %s", exc)
        notes.append(f"Validation forecasts not plotted: {exc}")
    deployments = models.deployments()
    report = TrendReport(
        summary=summary,
        training=_records(
            [r.timestamp for r in training],
            validation_rmse=[r.model_a.validation_rmse for r in training],
            test_rmse=[r.model_b.test_rmse for r in training],
        ),
        monitoring=_records(mon_dates, drift_pct=drift, model_a_rmse=rmse_a, model_b_rmse=rmse_b),
        latest_psi=psi,
        validation_forecasts=val_records,
        risk_forecasts=risk_records,
        plots=list(images),
        created_at=now.isoformat(),
        deployments=[d.model_dump(mode="json") for d in deployments],
    )
    text = trend_text(summary) + deployments_text(deployments)
    output = settings.output_dir or models.root / "reports"
    progress(f"writing {len(images)} plots and {REPORT_HTML} to {output}")
    files = {
        REPORT_JSON: report.model_dump_json(indent=2).encode(),
        **images,
        REPORT_HTML: _html(text, images, notes),
    }
    return ReportResult(report=report, text=text, paths=write_outputs(output, files))


def run(settings: Settings, _args: argparse.Namespace, say: Progress) -> int:
    result = run_report(settings, say)
    print(result.text)
    print(wrote(result.paths))
    return 0
