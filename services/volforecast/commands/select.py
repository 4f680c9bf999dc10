"""The select command: the selection protocol, run end to end on the development period.

Every candidate of ``volforecast.selection`` and two yardsticks (HAR-RV, which the rule divides
by, and the default HAR core alone) run walk-forward on each development series and horizon:
data from ``--dev-start``, forecasts from ``--dev-eval-start``, and nothing dated on or after
``--eval-start`` — the frame is cut the day before it, so every training target and every
scored target ends before the evaluation period begins. ``selection.choose`` picks per
horizon; ``selection.json`` and ``selection.md`` record the protocol, every score and the
choice. Copying ``selection.json`` into the package (``services/volforecast/``) ships it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from volforecast import __version__, selection
from volforecast.atomic import check_output, write_outputs
from volforecast.baselines import HAR, HARCore
from volforecast.config import Settings
from volforecast.data import Downloader, MarketData, load_market_data
from volforecast.engine import Engine, run_on_engine
from volforecast.errors import ConfigError
from volforecast.progress import Progress
from volforecast.schemas import CandidateScore, SelectionRecord
from volforecast.scoring import candidate_scores
from volforecast.store import ModelsDirectory
from volforecast.summaries import wrote
from volforecast.walkforward import EnsembleForecaster, Walk, build_walk, run_walks

SELECTION_MD = "selection.md"
DEFAULT_HORIZONS = (1, 5, 22)
DEFAULT_SYMBOLS = ("SPY", "QQQ")


def dev_walk(settings: Settings, market: MarketData, candidates: Sequence[str]) -> Walk:
    """One development series at one horizon: the candidates and the yardsticks, refit every
    ``--refit-every`` days from ``--dev-eval-start`` to the day before ``--eval-start``; no
    row after that day is read."""
    frame = market.until(settings.eval_start - dt.timedelta(days=1)).frame
    dev = MarketData(frame.loc[frame.index >= pd.Timestamp(settings.dev_start)], market.source)
    models: list[object] = [
        EnsembleForecaster(settings.model_copy(update={"candidate": c}), name=c) for c in candidates
    ]
    models += [HAR("rv"), HARCore()]
    return build_walk(
        settings,
        dev,
        models,
        settings.dev_eval_start,
        first_flag="--dev-eval-start",
        start_flag="--dev-start",
    )


def run_select(
    settings: Settings,
    progress: Progress,
    *,
    engine: Engine | None = None,
    downloader: Downloader | None = None,
    now: dt.datetime | None = None,
    market: dict[str, MarketData] | None = None,
) -> tuple[SelectionRecord, list[Path]]:
    """The protocol on ``--symbols`` (default SPY, QQQ) at ``--horizons`` (default 1, 5, 22):
    the record and its files (``selection.json``, ``selection.md``)."""
    started = time.monotonic()
    now = now or dt.datetime.now(dt.UTC)
    engine = engine or Engine()
    if settings.dev_eval_start >= settings.eval_start:
        raise ConfigError(
            f"--dev-eval-start {settings.dev_eval_start} is not before --eval-start "
            f"{settings.eval_start}: the development period must end before the evaluation "
            "period starts. Fix: move --dev-eval-start earlier."
        )
    output = settings.output_dir or ModelsDirectory.for_settings(settings).root / "selection"
    check_output(output)
    symbols = list(settings.symbols or DEFAULT_SYMBOLS)
    horizons = list(settings.horizons or DEFAULT_HORIZONS)
    names = [c.name for c in selection.CANDIDATES]
    walks: list[Walk] = []
    source = ""
    for symbol in symbols:
        base = engine.task_settings(
            settings.for_symbol(symbol, start=settings.dev_start, symbols=None, horizons=None)
        )
        data = (market or {}).get(symbol) or load_market_data(
            base, downloader=downloader, today=now.date()
        )
        source = data.source
        for h in horizons:
            walk = dev_walk(base.model_copy(update={"horizon": h}), data, names)
            progress(
                f"development walk-forward {walk.name}: {len(walk.data) - walk.blocks[0].start} "
                f"days {walk.data.index[walk.blocks[0].start].date()}.."
                f"{walk.data.index[-1].date()}, {len(walk.blocks)} refits of {len(walk.models)} "
                "models"
            )
            walks.append(walk)
    scores: list[CandidateScore] = []
    for walk, forecasts in zip(walks, run_walks(walks, engine, progress, "select"), strict=True):
        if isinstance(forecasts, BaseException):
            raise forecasts
        scores += candidate_scores(forecasts, walk.settings.symbol, walk.settings.horizon)
    chosen = selection.choose(scores, selection.CANDIDATES)
    record = SelectionRecord(
        created_at=now.isoformat(),
        volforecast_version=__version__,
        data_source=source,
        symbols=symbols,
        horizons=horizons,
        train_start=min(w.data.index[0].date() for w in walks),
        dev_eval_start=min(w.data.index[w.blocks[0].start].date() for w in walks),
        dev_end=max(w.data.index[-1].date() for w in walks),
        refit_every=settings.refit_every,
        rule=selection.RULE,
        candidates=list(selection.CANDIDATES),
        scores=scores,
        chosen={str(h): name for h, name in chosen.items()},
        duration_seconds=round(time.monotonic() - started, 1),
    )
    files = {
        selection.SELECTION_JSON: record.model_dump_json(indent=2).encode(),
        SELECTION_MD: selection_markdown(record).encode(),
    }
    return record, write_outputs(output, files)


def selection_markdown(record: SelectionRecord) -> str:
    """The record for people: the protocol, then per horizon every model's mean score."""
    lines = [
        f"# Ensemble selection on the development period {record.dev_eval_start}..{record.dev_end}",
        "",
        f"Series: {', '.join(record.symbols)} (data: {record.data_source}); training from "
        f"{record.train_start}, every model refit every {record.refit_every} trading days; "
        "nothing after the development period is read.",
        "",
        f"Rule: {record.rule}.",
        "",
    ]
    for h in record.horizons:
        at_h = [s for s in record.scores if s.horizon == h]
        models = list(dict.fromkeys(s.model for s in at_h))
        lines += [
            f"## h = {h}: chosen `{record.chosen.get(str(h), '—')}`",
            "",
            "| model | "
            + " | ".join(f"{sym} RMSE / HAR | {sym} QLIKE / HAR" for sym in record.symbols)
            + " | mean score | fit cost |",
            "|---|" + "---|---|" * len(record.symbols) + "---|---|",
        ]
        cost = {c.name: f"{c.cost:g}" for c in record.candidates}
        rows = []
        for m in models:
            mine = {s.symbol: s for s in at_h if s.model == m}
            mean = sum(s.log_score for s in mine.values()) / len(mine)
            cells = " | ".join(
                f"{mine[sym].rmse_ratio_har_rv:.3f} | {mine[sym].qlike_ratio_har_rv:.3f}"
                for sym in record.symbols
            )
            rows.append((mean, f"| {m} | {cells} | {mean:+.4f} | {cost.get(m, '—')} |"))
        lines += [row for _, row in sorted(rows)]
        lines.append("")
    lines.append(f"Selection took {record.duration_seconds:.0f}s.")
    return "\n".join(lines) + "\n"


def run(settings: Settings, _args: argparse.Namespace, say: Progress) -> int:
    result, paths = run_on_engine(settings, say, run_select)
    print(selection_markdown(result), wrote(paths), sep="\n")
    return 0
