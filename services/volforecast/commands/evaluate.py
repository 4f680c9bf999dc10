"""``volforecast evaluate``: the walk-forward benchmark of the ensemble against the classical
models, for one symbol or for every symbol and horizon of a universe.

The walk is ``walkforward``'s and its scoring ``scoring``'s; this module loads the data,
runs the walks on the engine and writes ``evaluation.json``, ``evaluation.md``,
``forecasts.csv`` and two PNGs per benchmark (and ``summary.json``/``summary.md`` for many).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from volforecast import __version__, backtests, selection
from volforecast.atomic import check_output, write_outputs
from volforecast.baselines import HARCore, default_baselines
from volforecast.blending import SHIPPED_NAME
from volforecast.calibration import VAR_LEVELS, forward_returns
from volforecast.config import Settings
from volforecast.data import Downloader, load_market_data
from volforecast.distributions import HS_WINDOW, FilteredHS, HistoricalSimulation, one_day
from volforecast.engine import Engine, open_engine
from volforecast.errors import (
    EXIT_SOME_SYMBOLS_FAILED,
    VolforecastError,
    exit_code_of,
)
from volforecast.metrics import LOSSES, qlike_excluded
from volforecast.plots import cumulative_loss_difference, forecasts_vs_realized
from volforecast.pooling import PoolData, PooledHARCore, load_pool
from volforecast.progress import Progress
from volforecast.schemas import (
    DistributionScores,
    EvaluationReport,
    EvaluationSummary,
    EvaluationSummaryRow,
)
from volforecast.scoring import HAR_RV, LOSS_METRIC, RANKED, ratio, score_forecasts
from volforecast.store import ModelsDirectory
from volforecast.summaries import markdown_header, wrote
from volforecast.walkforward import (
    ENSEMBLE,
    ENSEMBLE_POOLED,
    REALIZED,
    EnsembleForecaster,
    Walk,
    build_walk,
    point_forecasts,
    pooled_panels,
    run_walks,
)

log = logging.getLogger(__name__)

EVALUATION_JSON = "evaluation.json"
EVALUATION_MD = "evaluation.md"
FORECASTS_CSV = "forecasts.csv"
FORECASTS_PNG = "forecasts.png"
LOSS_PNG = "cumulative_loss_difference.png"


def markdown_table(report: EvaluationReport) -> str:
    """The metrics table (best value per column in bold) and the DM tests, as markdown."""
    names = list(report.metrics)
    lines = [
        f"# Walk-forward evaluation: {report.symbol}, {report.eval_start}..{report.eval_end}",
        "",
        f"{report.n_forecasts} daily forecasts of the next {report.horizon}-day realized "
        f"volatility; expanding window from {report.train_start}, every model refit every "
        f"{report.refit_every} trading days ({report.refits} refits), {report.purge_rows} rows "
        f"purged before each block. Data: {report.data_source}."
        + (
            f" QLIKE leaves out {report.qlike_excluded_days} day(s) of zero realized volatility."
            if report.qlike_excluded_days
            else ""
        ),
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
        "Diebold–Mariano tests of the ensemble against every baseline (negative: the ensemble's "
        "loss is lower; Newey–West variance; Holm: adjusted for testing every baseline under "
        "that loss):",
        "",
        "| against | loss | DM statistic | p-value | p (Holm) | lags |",
        "|---|---|---|---|---|---|",
    ]
    for t in report.diebold_mariano:
        holm_p = "—" if t.p_value_holm is None else f"{t.p_value_holm:.2g}"
        lines.append(
            f"| {t.against} | {t.loss} | {t.statistic:.2f} | {t.p_value:.2g} | {holm_p} | "
            f"{t.lags} |"
        )
    shown = list(next(iter(report.by_year.values()))) if report.by_year else []
    if shown:
        lines += [
            "",
            "By calendar year (RMSE × 1000 / QLIKE; each year's best of each metric in bold):",
            "",
            *markdown_header(["year", "rows", *shown]),
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
    if report.distribution:
        lines += distribution_table(report.distribution)
    return "\n".join(lines)


def distribution_table(scores: dict[str, DistributionScores]) -> list[str]:
    """The forecast distributions' backtests, as markdown lines."""

    def green(v: float | None) -> str:
        return "—" if v is None else f"{v:.2f}"

    lines = [
        "Forecast distributions: coverage of the central 50% and 90% intervals of the realized "
        "volatility, pinball loss (mean over levels, × 1000), Winkler score of the 90% "
        "interval (× 1000); the 1-day 95% and 99% VaR: exceedance rate, Kupiec and "
        "Christoffersen (conditional coverage) p-values, share of 250-day windows in the "
        "Basel green zone; the 99% ES: McNeil–Frey p-value.",
        "",
        *markdown_header(
            ["model", "cov 50%", "cov 90%", "pinball", "Winkler 90", "VaR95 rate", "Kupiec",
             "CC", "green", "VaR99 rate", "Kupiec", "CC", "green", "ES99 p"]
        ),
    ]  # fmt: skip
    for name, d in scores.items():
        v95, v99 = d.var["0.95"], d.var["0.99"]
        lines.append(
            f"| {name} | {d.coverage.get('0.5', float('nan')):.3f} | "
            f"{d.coverage.get('0.9', float('nan')):.3f} | {d.pinball * 1000:.4f} | "
            f"{d.winkler_90 * 1000:.3f} | "
            f"{v95.exceedances / max(v95.days, 1):.2%} | {v95.kupiec_p:.2f} | "
            f"{v95.conditional_coverage_p:.2f} | {green(v95.green_share)} | "
            f"{v99.exceedances / max(v99.days, 1):.2%} | {v99.kupiec_p:.2f} | "
            f"{v99.conditional_coverage_p:.2f} | {green(v99.green_share)} | "
            f"{d.es['0.99'].mcneil_frey_p:.2f} |"
        )
    methods = "; ".join(f"{name}: {d.method}" for name, d in scores.items())
    return [*lines, "", f"Methods — {methods}.", ""]


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


@dataclass(frozen=True)
class EvaluateOutcome:
    """A benchmark's report and files, or the error that stopped it."""

    symbol: str
    horizon: int
    report: EvaluationReport | None = None
    paths: list[Path] = field(default_factory=list)
    error: BaseException | None = None


def add_pooled_models(walk: Walk, pool: PoolData) -> None:
    """The pooled core and the pooled ensemble join the walk. The core: one panel per refit,
    on the pool's rows up to that refit's last training day (the benchmark's own series left
    out of its panel). The ensemble: as ``train --pool-universe`` fits it, every out-of-fold
    and final core shrunk towards the panel up to its own last training day, the trees on
    top."""
    spec = selection.ensemble_spec(walk.settings)
    # Every refit's final fit is among the ensemble's fits: one set of panels serves both.
    panels = pooled_panels(walk.settings, walk.data, walk.blocks, pool)
    walk.models.append(PooledHARCore(panels, spec.core, spec.core_logs))
    walk.models.append(EnsembleForecaster(walk.settings, name=ENSEMBLE_POOLED, panels=panels))


def prepare(settings: Settings, downloader: Downloader | None, today: dt.date) -> Walk:
    """Load one benchmark's data and schedule its refits: the ensemble and every baseline,
    forecast from ``--eval-start`` to the data's end (no model is fitted)."""
    market = load_market_data(settings, downloader=downloader, today=today)
    spec = selection.ensemble_spec(settings)
    core = HARCore(spec.core, spec.core_logs, spec.bias)
    levels = tuple(settings.quantile_levels)
    models = [
        EnsembleForecaster(settings, distribution=True),
        *default_baselines(settings.horizon, core, levels),
        FilteredHS(settings.horizon, levels),
        HistoricalSimulation(settings.horizon, levels),
    ]
    return build_walk(settings, market, models, settings.eval_start)


def distribution_scores(walk: Walk, forecasts: pd.DataFrame) -> dict[str, DistributionScores]:
    """Every model's forecast distribution scored (``backtests.score_distribution``)."""
    levels = tuple(walk.settings.quantile_levels)
    index = pd.DatetimeIndex(forecasts.index)
    loss_1d = -forward_returns(walk.returns, index, 1)[0]
    methods = {
        ENSEMBLE: SHIPPED_NAME,
        "garch_t": "GARCH(1,1), Student-t (arch)",
        "gjr_garch_t": "GJR-GARCH(1,1,1), Student-t (arch)",
        "fhs": "filtered historical simulation, RiskMetrics EWMA filter",
        "hs_250": f"historical simulation, last {HS_WINDOW} days",
    }
    out = {}
    for model, method in methods.items():
        columns = one_day(forecasts.columns, model)
        if not columns:
            continue
        dist = {key: forecasts[col].to_numpy() for key, col in columns.items()}
        scores = backtests.score_distribution(
            forecasts[REALIZED].to_numpy(), loss_1d, dist, levels, VAR_LEVELS
        )
        out[model] = DistributionScores(method=method, **scores)
    return out


def _output(settings: Settings) -> Path:
    return settings.output_dir or ModelsDirectory.for_settings(settings).root / "evaluation"


def finish(
    walk: Walk, forecasts: pd.DataFrame, now: dt.datetime, duration: float
) -> tuple[EvaluationReport, list[Path]]:
    """The report of one finished walk-forward, and its files written to its output."""
    settings = walk.settings
    distributions = distribution_scores(walk, forecasts)
    forecasts = point_forecasts(forecasts)
    result = score_forecasts(forecasts, settings.horizon)
    report = EvaluationReport(
        metrics=result.metrics,
        ratio_to_har_rv=result.ratio_to_har_rv,
        best_baseline=result.best_baseline,
        ensemble_beats_every_baseline={k: result.beats[k] for k in ("rmse", "qlike")},
        diebold_mariano=result.dm_tests,
        by_year=result.yearly,
        qlike_excluded_days=qlike_excluded(forecasts[REALIZED]),
        rows_by_year={
            str(y): int(n)
            for y, n in pd.Series(pd.DatetimeIndex(forecasts.index).year).value_counts().items()
        },
        symbol=settings.symbol,
        data_source=walk.source,
        horizon=settings.horizon,
        purge_rows=settings.horizon,
        refit_every=settings.refit_every,
        refits=len(walk.blocks),
        seed=settings.seed,
        train_start=walk.data.index[0].date(),
        eval_start=forecasts.index[0].date(),
        eval_end=forecasts.index[-1].date(),
        n_forecasts=len(forecasts),
        created_at=now.isoformat(),
        volforecast_version=__version__,
        duration_seconds=round(duration, 1),
        distribution=distributions,
    )
    files = {
        EVALUATION_JSON: report.model_dump_json(indent=2).encode(),
        EVALUATION_MD: markdown_table(report).encode(),
        FORECASTS_CSV: forecasts.rename_axis("date").to_csv(float_format="%.8g").encode(),
        **_plots(forecasts, report),
    }
    return report, write_outputs(_output(settings), files)


def evaluate_all(
    runs: Sequence[Settings],
    progress: Progress,
    *,
    engine: Engine | None = None,
    downloader: Downloader | None = None,
    now: dt.datetime | None = None,
) -> list[EvaluateOutcome]:
    """Every benchmark of ``runs`` (one Settings per symbol and horizon, each with its own
    output): one model on one refit block is one piece of work for ``engine``. A benchmark
    that fails (its data, or any of its pieces) is reported in its outcome; the others
    complete."""
    started = time.monotonic()
    now = now or dt.datetime.now(dt.UTC)
    engine = engine or Engine()
    walks: list[Walk | EvaluateOutcome] = []
    for run in runs:  # every output checked before any model is fitted
        check_output(_output(run))
    pools: dict[int, PoolData] = {}
    for run in runs:
        settings = engine.task_settings(run)
        try:
            walk = prepare(settings, downloader, now.date())
            if settings.pool_universe is not None:
                if settings.horizon not in pools:
                    pools[settings.horizon] = load_pool(settings, downloader, now.date(), progress)
                add_pooled_models(walk, pools[settings.horizon])
        except VolforecastError as exc:
            progress(f"{settings.symbol} h={settings.horizon}: {exc}")
            walks.append(EvaluateOutcome(settings.symbol, settings.horizon, error=exc))
            continue
        progress(
            f"walk-forward {walk.name}: {len(walk.data) - walk.blocks[0].start} days "
            f"{walk.data.index[walk.blocks[0].start].date()}..{walk.data.index[-1].date()}, "
            f"{len(walk.blocks)} refits of {len(walk.models)} models"
        )
        walks.append(walk)
    ready = [w for w in walks if isinstance(w, Walk)]
    done = iter(run_walks(ready, engine, progress, "evaluate"))
    results: list[EvaluateOutcome] = []
    for item in walks:
        if not isinstance(item, Walk):
            results.append(item)
            continue
        walk = item
        settings = walk.settings
        forecasts = next(done)
        if isinstance(forecasts, BaseException):
            progress(f"{walk.name} failed: {forecasts}")
            results.append(EvaluateOutcome(settings.symbol, settings.horizon, error=forecasts))
            continue
        report, paths = finish(walk, forecasts, now, time.monotonic() - started)
        progress(f"{walk.name}: wrote the report to {paths[0].parent}")
        results.append(EvaluateOutcome(settings.symbol, settings.horizon, report, paths))
    return results


def run_evaluate(
    settings: Settings,
    progress: Progress,
    *,
    engine: Engine | None = None,
    downloader: Downloader | None = None,
    now: dt.datetime | None = None,
) -> tuple[EvaluationReport, list[Path]]:
    """One benchmark (``settings.symbol`` at ``settings.horizon``): the report and its files.
    Raises the error that stopped it."""
    [outcome] = evaluate_all([settings], progress, engine=engine, downloader=downloader, now=now)
    if outcome.error is not None:
        raise outcome.error
    assert outcome.report is not None
    return outcome.report, outcome.paths


SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"


def run_evaluate_universe(
    settings: Settings,
    symbols: Sequence[str],
    horizons: Sequence[int],
    progress: Progress,
    *,
    engine: Engine | None = None,
    downloader: Downloader | None = None,
    now: dt.datetime | None = None,
) -> tuple[EvaluationSummary, list[Path]]:
    """Every symbol at every horizon: ``<output>/<SYMBOL>/h<H>/`` holds each benchmark's
    files (as a single evaluate writes them), ``<output>/summary.{json,md}`` the comparison."""
    started = time.monotonic()
    now = now or dt.datetime.now(dt.UTC)
    output = settings.output_dir or ModelsDirectory.for_settings(settings).root / "evaluation"
    runs = [
        settings.for_symbol(s, horizon=h, horizons=None, output_dir=output / s / f"h{h}")
        for s in symbols
        for h in horizons
    ]
    outcomes = evaluate_all(runs, progress, engine=engine, downloader=downloader, now=now)
    summary = summarize(outcomes, output, list(symbols), list(horizons), now)
    summary.duration_seconds = round(time.monotonic() - started, 1)
    paths = write_outputs(
        output,
        {
            SUMMARY_JSON: summary.model_dump_json(indent=2).encode(),
            SUMMARY_MD: summary_markdown(summary).encode(),
        },
    )
    return summary, paths


def summarize(
    outcomes: Sequence[EvaluateOutcome],
    output: Path,
    symbols: list[str],
    horizons: list[int],
    now: dt.datetime,
) -> EvaluationSummary:
    """One row per benchmark: every model's RMSE and QLIKE over HAR-RV's and over the best
    baseline's, the ensemble's DM tests, or why the benchmark failed."""
    rows = []
    for o in outcomes:
        if o.error is not None or o.report is None:
            code = exit_code_of(o.error) if o.error is not None else 1
            rows.append(
                EvaluationSummaryRow(
                    symbol=o.symbol,
                    horizon=o.horizon,
                    status="failed",
                    exit_code=code,
                    error=str(o.error),
                )
            )
            continue
        r = o.report
        best = {k: getattr(r.metrics[r.best_baseline[k]], k) for k in ("rmse", "qlike")}
        rows.append(
            EvaluationSummaryRow(
                symbol=o.symbol,
                horizon=o.horizon,
                status="ok",
                exit_code=0,
                report=str((o.paths[0].parent / EVALUATION_JSON).relative_to(output)),
                n_forecasts=r.n_forecasts,
                eval_start=r.eval_start,
                eval_end=r.eval_end,
                best_baseline={k: r.best_baseline[k] for k in ("rmse", "qlike")},
                ratio_to_har_rv={
                    m: {k: v[k] for k in ("rmse", "qlike")} for m, v in r.ratio_to_har_rv.items()
                },
                ratio_to_best_baseline={
                    m: {k: ratio(getattr(mm, k), best[k]) for k in best}
                    for m, mm in r.metrics.items()
                },
                ensemble_beats_every_baseline=r.ensemble_beats_every_baseline,
                diebold_mariano=r.diebold_mariano,
                distribution=r.distribution,
            )
        )
    return EvaluationSummary(
        created_at=now.isoformat(),
        symbols=symbols,
        horizons=horizons,
        results=rows,
        duration_seconds=0.0,
        volforecast_version=__version__,
    )


POOLED = "har_core_pooled"


def pooling_gain(
    rows: Sequence[EvaluationSummaryRow], pooled: str = POOLED, own: str = "har_core"
) -> dict[str, float]:
    """Geometric mean over benchmarks of the pooled model's loss over its own-series twin's."""
    return {
        k: float(np.exp(np.mean([
            np.log(r.ratio_to_har_rv[pooled][k] / r.ratio_to_har_rv[own][k]) for r in rows
        ])))
        for k in ("rmse", "qlike")
    }  # fmt: skip


def summary_markdown(summary: EvaluationSummary) -> str:
    """The summary for people: the ensemble against the baselines, then every model's ratios."""
    lines = [
        f"# Walk-forward evaluation: {', '.join(summary.symbols)} at horizon(s) "
        f"{', '.join(map(str, summary.horizons))}",
        "",
        "Ratios below 1: the model's loss is lower. DM p-values: the ensemble against the best "
        "baseline of that loss (two-sided, Newey–West), Holm-adjusted for testing every baseline.",
        "",
        "| symbol | h | ensemble RMSE / best | QLIKE / best | best RMSE baseline | best QLIKE "
        "baseline | DM p (RMSE) | DM p (QLIKE) | RMSE / HAR-RV | QLIKE / HAR-RV |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary.results:
        if row.status == "failed":
            lines.append(f"| {row.symbol} | {row.horizon} | failed (exit {row.exit_code}): "
                         f"{row.error} |||||||||")  # fmt: skip
            continue
        mine = row.ratio_to_best_baseline[ENSEMBLE]
        har = row.ratio_to_har_rv[ENSEMBLE]
        # The header promises Holm-adjusted p-values (raw only for reports that predate them).
        p = {
            (t.loss, t.against): t.p_value if t.p_value_holm is None else t.p_value_holm
            for t in row.diebold_mariano
        }
        p_rmse = p.get(("squared_error", row.best_baseline["rmse"]), float("nan"))
        p_qlike = p.get(("qlike", row.best_baseline["qlike"]), float("nan"))
        lines.append(
            f"| {row.symbol} | {row.horizon} | {mine['rmse']:.3f} | {mine['qlike']:.3f} | "
            f"{row.best_baseline['rmse']} | {row.best_baseline['qlike']} | {p_rmse:.2g} | "
            f"{p_qlike:.2g} | {har['rmse']:.3f} | {har['qlike']:.3f} |"
        )
    ok = [r for r in summary.results if r.status == "ok"]
    if ok:
        models = list(ok[0].ratio_to_har_rv)
        lines += ["", "Every model, RMSE / QLIKE over HAR-RV's:", ""]
        lines += markdown_header(["symbol", "h", *models])
        for row in ok:
            cells = [
                f"{row.ratio_to_har_rv[m]['rmse']:.3f} / {row.ratio_to_har_rv[m]['qlike']:.3f}"
                for m in models
            ]
            lines.append(f"| {row.symbol} | {row.horizon} | " + " | ".join(cells) + " |")
    for pooled_name, own, what in (
        (POOLED, "har_core", "the series' own core"),
        (ENSEMBLE_POOLED, ENSEMBLE, "the ensemble on its own core"),
    ):
        pooled = [r for r in ok if {pooled_name, own} <= set(r.ratio_to_har_rv)]
        if pooled:
            gains = pooling_gain(pooled, pooled_name, own)
            lines += ["", f"Partial pooling: {pooled_name} over {own} ({what}), geometric mean "
                      f"over {len(pooled)} benchmarks: RMSE {gains['rmse']:.4f}, QLIKE "
                      f"{gains['qlike']:.4f}."]  # fmt: skip
    with_dist = [r for r in ok if r.distribution]
    if with_dist:
        names = list(with_dist[0].distribution)
        lines += [
            "",
            "Forecast distributions: coverage of the 90% interval / 1-day 99% VaR exceedance "
            "rate / share of 250-day windows in the Basel green zone / pinball loss over the "
            "ensemble's:",
            "",
            *markdown_header(["symbol", "h", *names]),
        ]
        for row in with_dist:
            reference = row.distribution[names[0]].pinball
            cells = []
            for m in names:
                d = row.distribution.get(m)
                if d is None:
                    cells.append("—")
                    continue
                v = d.var.get("0.99")
                rate = f"{v.exceedances / max(v.days, 1):.2%}" if v else "—"
                green = f"{v.green_share:.2f}" if v and v.green_share is not None else "—"
                cells.append(
                    f"{d.coverage.get('0.9', float('nan')):.3f} / {rate} / {green} / "
                    f"{ratio(d.pinball, reference):.3f}"
                )
            lines.append(f"| {row.symbol} | {row.horizon} | " + " | ".join(cells) + " |")
    lines += ["", f"{len(ok)} of {len(summary.results)} benchmarks completed in "
              f"{summary.duration_seconds:.0f}s.", ""]  # fmt: skip
    return "\n".join(lines)


def run(settings: Settings, _args: argparse.Namespace, say: Progress) -> int:
    symbols = settings.universe()
    with open_engine(settings, say) as engine:
        if symbols is None and settings.horizons is None:
            report, paths = run_evaluate(settings, say, engine=engine)
            print(markdown_table(report))
            print(wrote(paths))
            return 0
        summary, paths = run_evaluate_universe(
            settings,
            symbols or [settings.symbol],
            settings.horizons or [settings.horizon],
            say,
            engine=engine,
        )
    print(summary_markdown(summary))
    print(wrote(paths))
    failed = [r for r in summary.results if r.status == "failed"]
    if failed:
        log.error(
            "%d of %d benchmarks failed (%s); exiting %d",
            len(failed),
            len(summary.results),
            ", ".join(f"{r.symbol} h={r.horizon}: exit {r.exit_code}" for r in failed),
            EXIT_SOME_SYMBOLS_FAILED,
        )
        return EXIT_SOME_SYMBOLS_FAILED
    return 0
