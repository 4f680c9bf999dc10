"""The evaluate command: walk-forward benchmark of the ensemble against the classical models.

``evaluate_forecasts`` turns the walk-forward forecasts into the report (metrics, ratios to
HAR-RV, Diebold–Mariano tests) and is pure; ``run_evaluate`` loads the data, runs the
walk-forward and writes ``evaluation.json``, ``evaluation.md``, ``forecasts.csv`` and two PNGs.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from volforecast import __version__
from volforecast.artifacts import write_outputs
from volforecast.baselines import default_baselines
from volforecast.commands.train import MIN_LABELED_ROWS, make_ensemble
from volforecast.config import Settings
from volforecast.data import Downloader, load_market_data
from volforecast.ensemble import FloatArray, Progress, StackedEnsemble
from volforecast.errors import DataError
from volforecast.evaluation import (
    diebold_mariano,
    mae,
    mse_var,
    mz_r2,
    qlike,
    qlike_loss,
    rmse,
    squared_error_loss,
)
from volforecast.features import FEATURE_COLUMNS, TARGET, build_dataset, labeled, log_returns
from volforecast.plots import cumulative_loss_difference, forecasts_vs_realized
from volforecast.schemas import DMTest, EvaluationReport, ModelMetrics
from volforecast.walkforward import REALIZED, schedule, walk_forward

log = logging.getLogger(__name__)

ENSEMBLE = "ensemble"
HAR_RV = "har_rv"
EVALUATION_JSON = "evaluation.json"
EVALUATION_MD = "evaluation.md"
FORECASTS_CSV = "forecasts.csv"
FORECASTS_PNG = "forecasts.png"
LOSS_PNG = "cumulative_loss_difference.png"
# Metric name -> lower is better.
RANKED = {"rmse": True, "mae": True, "mse_var": True, "qlike": True, "mz_r2": False}
LOSSES = {"squared_error": squared_error_loss, "qlike": qlike_loss}
# The bar a loss is judged by in the headline: the metric whose mean the loss is.
LOSS_METRIC = {"squared_error": "rmse", "qlike": "qlike"}


class EnsembleForecaster:
    """The walk-forward face of the ensemble ``train`` builds (same class, same settings)."""

    name = ENSEMBLE

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def fit(self, train: pd.DataFrame, returns: pd.Series) -> EnsembleForecaster:
        self.model_: StackedEnsemble = make_ensemble(self.settings)
        self.model_.fit(train.loc[:, list(FEATURE_COLUMNS)], train[TARGET])
        return self

    def predict(self, rows: pd.DataFrame, returns: pd.Series) -> FloatArray:
        return self.model_.predict(rows.loc[:, list(FEATURE_COLUMNS)])


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


def evaluate_forecasts(forecasts: pd.DataFrame, horizon: int) -> Evaluation:
    """Metrics, ratios to HAR-RV and DM tests of the ``ensemble`` column against the baselines.

    ``forecasts`` has a ``realized`` column, an ``ensemble`` column and one column per baseline
    (``har_rv`` among them).
    """
    realized = forecasts[REALIZED]
    models = [c for c in forecasts.columns if c != REALIZED]
    baselines = [m for m in models if m != ENSEMBLE]
    metrics = {m: model_metrics(realized, forecasts[m]) for m in models}
    har = metrics[HAR_RV].model_dump()
    ratios = {
        m: {k: v / har[k] if har[k] else float("nan") for k, v in metrics[m].model_dump().items()}
        for m in models
    }
    best: dict[str, str] = {}
    beats: dict[str, bool] = {}
    for key, lower_better in RANKED.items():
        values = {b: getattr(metrics[b], key) for b in baselines}
        pick = min if lower_better else max
        best[key] = pick(values, key=lambda b: values[b])
        mine = getattr(metrics[ENSEMBLE], key)
        beats[key] = bool(mine < values[best[key]] if lower_better else mine > values[best[key]])
    tests = []
    for loss_name, loss in LOSSES.items():
        mine = loss(realized, forecasts[ENSEMBLE])
        against = [HAR_RV]
        if best[LOSS_METRIC[loss_name]] != HAR_RV:
            against.append(best[LOSS_METRIC[loss_name]])
        for other in against:
            result = diebold_mariano(mine, loss(realized, forecasts[other]), horizon)
            tests.append(
                DMTest(
                    against=other,
                    loss=loss_name,
                    statistic=result.statistic,
                    p_value=result.p_value,
                    lags=result.lags,
                    mean_loss_difference=result.mean_loss_difference,
                )
            )
    shown = list(dict.fromkeys([ENSEMBLE, HAR_RV, best["rmse"], best["qlike"]]))
    return Evaluation(metrics, ratios, best, beats, tests, by_year(forecasts, shown))


def markdown_table(report: EvaluationReport) -> str:
    """The metrics table (best value per column in bold) and the DM tests, as markdown."""
    names = list(report.metrics)
    lines = [
        f"# Walk-forward evaluation: {report.symbol}, {report.eval_start}..{report.eval_end}",
        "",
        f"{report.n_forecasts} daily forecasts of the next {report.horizon}-day realized "
        f"volatility; expanding window from {report.train_start}, every model refit every "
        f"{report.refit_every} trading days ({report.refits} refits), {report.purge_rows} rows "
        f"purged before each block. Data: {report.data_source}.",
        "",
        "| model | RMSE | MAE | MSE (variance) | QLIKE | MZ R² | RMSE / HAR | QLIKE / HAR |",
        "|---|---|---|---|---|---|---|---|",
    ]
    best_value = {
        key: (min if lower else max)(getattr(report.metrics[n], key) for n in names)
        for key, lower in RANKED.items()
    }

    def cell(name: str, key: str, fmt: str) -> str:
        value = getattr(report.metrics[name], key)
        text = format(value, fmt)
        return f"**{text}**" if value == best_value[key] else text

    for n in names:
        r = report.ratio_to_har_rv[n]
        lines.append(
            f"| {n} | {cell(n, 'rmse', '.6f')} | {cell(n, 'mae', '.6f')} | "
            f"{cell(n, 'mse_var', '.3e')} | {cell(n, 'qlike', '.4f')} | {cell(n, 'mz_r2', '.3f')} | "
            f"{r['rmse']:.3f} | {r['qlike']:.3f} |"
        )
    lines += [
        "",
        "Diebold–Mariano tests of the ensemble (negative: the ensemble's loss is lower; "
        "Newey–West variance):",
        "",
        "| against | loss | DM statistic | p-value | lags |",
        "|---|---|---|---|---|",
    ]
    for t in report.diebold_mariano:
        lines.append(f"| {t.against} | {t.loss} | {t.statistic:.2f} | {t.p_value:.2g} | {t.lags} |")
    shown = list(next(iter(report.by_year.values()))) if report.by_year else []
    if shown:
        lines += [
            "",
            "By calendar year (RMSE × 1000 / QLIKE; each year's best of each metric in bold):",
            "",
            "| year | rows | " + " | ".join(shown) + " |",
            "|---|---|" + "---|" * len(shown),
        ]
        for year, per_model in report.by_year.items():
            low_r = min(v["rmse"] for v in per_model.values())
            low_q = min(v["qlike"] for v in per_model.values())
            cells = []
            for m in shown:
                r_txt = f"{per_model[m]['rmse'] * 1000:.3f}"
                q_txt = f"{per_model[m]['qlike']:.3f}"
                cells.append(
                    f"{f'**{r_txt}**' if per_model[m]['rmse'] == low_r else r_txt} / "
                    f"{f'**{q_txt}**' if per_model[m]['qlike'] == low_q else q_txt}"
                )
            lines.append(f"| {year} | {report.rows_by_year[year]} | " + " | ".join(cells) + " |")
    verdict = ", ".join(
        f"{k}: {'beats' if v else 'does NOT beat'} the best baseline ({report.best_baseline[k]})"
        for k, v in report.ensemble_beats_every_baseline.items()
    )
    lines += ["", f"Ensemble — {verdict}.", ""]
    return "\n".join(lines)


def _plots(forecasts: pd.DataFrame, report: EvaluationReport) -> dict[str, bytes]:
    best_q = report.best_baseline["qlike"]
    shown = list(dict.fromkeys([ENSEMBLE, HAR_RV, best_q]))
    realized = forecasts[REALIZED]
    title = f"{report.symbol}: {report.horizon}-day realized volatility and walk-forward forecasts"
    diffs = {}
    for loss_name, loss in LOSSES.items():
        best = report.best_baseline[LOSS_METRIC[loss_name]]
        diff = loss(realized, forecasts[ENSEMBLE]) - loss(realized, forecasts[best])
        diffs[f"{loss_name}\nensemble - {best}"] = pd.Series(diff, index=forecasts.index)
    return {
        FORECASTS_PNG: forecasts_vs_realized(forecasts.loc[:, shown], realized, title),
        LOSS_PNG: cumulative_loss_difference(
            diffs, "Cumulative loss difference (below zero: the ensemble is ahead)"
        ),
    }


def run_evaluate(
    settings: Settings,
    progress: Progress,
    *,
    downloader: Downloader | None = None,
    now: dt.datetime | None = None,
) -> tuple[EvaluationReport, list[Path]]:
    """Run the walk-forward and write the report files; returns the report and the paths."""
    started = time.monotonic()
    now = now or dt.datetime.now(dt.UTC)
    market = load_market_data(settings, downloader=downloader, today=now.date())
    data = labeled(build_dataset(market.frame, settings.horizon))
    returns = log_returns(market.frame["spy_adj_close"])
    first = int(data.index.searchsorted(pd.Timestamp(settings.eval_start)))
    purge = settings.horizon
    if first - purge < MIN_LABELED_ROWS:
        raise DataError(
            f"only {max(first - purge, 0)} labeled rows before --eval-start {settings.eval_start} "
            f"(data from {data.index[0].date() if len(data) else settings.start}); the first "
            f"refit needs at least {MIN_LABELED_ROWS}. Fix: move --eval-start later or --start "
            "earlier."
        )
    if first >= len(data):
        raise DataError(
            f"no labeled rows on or after --eval-start {settings.eval_start} (data ends "
            f"{data.index[-1].date()}). Fix: move --eval-start earlier."
        )
    blocks = schedule(len(data), first, settings.refit_every, purge)
    models = [EnsembleForecaster(settings), *default_baselines(settings.horizon)]
    progress(
        f"walk-forward {settings.symbol}: {len(data) - first} days "
        f"{data.index[first].date()}..{data.index[-1].date()}, {len(blocks)} refits of "
        f"{len(models)} models"
    )
    forecasts = walk_forward(data, returns, models, blocks, progress)
    result = evaluate_forecasts(forecasts, settings.horizon)
    report = EvaluationReport(
        metrics=result.metrics,
        ratio_to_har_rv=result.ratio_to_har_rv,
        best_baseline=result.best_baseline,
        ensemble_beats_every_baseline={k: result.beats[k] for k in ("rmse", "qlike")},
        diebold_mariano=result.dm_tests,
        by_year=result.yearly,
        rows_by_year={
            str(y): int(n)
            for y, n in pd.Series(pd.DatetimeIndex(forecasts.index).year).value_counts().items()
        },
        symbol=settings.symbol,
        data_source=market.source,
        horizon=settings.horizon,
        purge_rows=purge,
        refit_every=settings.refit_every,
        refits=len(blocks),
        seed=settings.seed,
        train_start=data.index[0].date(),
        eval_start=forecasts.index[0].date(),
        eval_end=forecasts.index[-1].date(),
        n_forecasts=len(forecasts),
        created_at=now.isoformat(),
        volforecast_version=__version__,
        duration_seconds=round(time.monotonic() - started, 1),
    )
    output = settings.output_dir or settings.models_dir / "evaluation"
    progress(f"writing the report to {output}")
    files = {
        EVALUATION_JSON: report.model_dump_json(indent=2).encode(),
        EVALUATION_MD: markdown_table(report).encode(),
        FORECASTS_CSV: forecasts.rename_axis("date").to_csv(float_format="%.8g").encode(),
        **_plots(forecasts, report),
    }
    return report, write_outputs(output, files)
