"""``volforecast replay``: the train/monitor policy itself on trial, over years of history.

The loop and its scores are ``volforecast.replaying``'s; this module cuts the replay into
periods, runs them on the engine (each in its own scratch models directory, the market data
loaded once), writes every history line in date order into the replay's own models directory
(``<output>/models``), runs the last period there for real (so ``report`` works on it) and
writes ``replay.json``, ``replay.md``, ``days.csv`` and two PNGs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import numpy as np
import pandas as pd

from volforecast import policy
from volforecast.atomic import check_output, write_outputs
from volforecast.config import Settings
from volforecast.data import Downloader, load_market_data
from volforecast.engine import Engine, Piece, run_on_engine
from volforecast.errors import ConfigError, DataError
from volforecast.features import build_dataset, labeled
from volforecast.injection import KINDS, Injection, parse_injections
from volforecast.metrics import qlike_loss
from volforecast.plots import cumulative_loss_difference, signals_over_time
from volforecast.progress import Progress
from volforecast.replaying import (
    ALWAYS_A,
    FOLLOW,
    INJECTION_LEAD,
    INJECTION_WINDOW,
    SCALE_FREE_SIGNAL,
    SCHEDULED,
    SIGNALS,
    SPEC_SIGNAL,
    DayHook,
    periods,
    realized_targets,
    replay_injection,
    replay_period,
    score_replay,
    signal_rates,
)
from volforecast.schemas import Detection, InjectionOutcome, ReplayReport, SignalRate
from volforecast.splits import MIN_LABELED_ROWS
from volforecast.store import (
    MONITORING_HISTORY,
    TRAINING_HISTORY,
    ModelsDirectory,
)
from volforecast.summaries import markdown_header, wrote

REPLAY_JSON = "replay.json"
REPLAY_MD = "replay.md"
DAYS_CSV = "days.csv"
LOSS_PNG = "policy_loss_difference.png"
SIGNALS_PNG = "drift_signals.png"


def run_replay(
    settings: Settings,
    progress: Progress,
    *,
    engine: Engine | None = None,
    downloader: Downloader | None = None,
    now: dt.datetime | None = None,
    on_day: DayHook | None = None,
) -> tuple[ReplayReport, list[Path]]:
    """Replay the loop from ``--replay-start`` to the data's end; write the report to
    ``--output`` (default ``<models-dir>/replay``)."""
    started = time.monotonic()
    now = now or dt.datetime.now(dt.UTC)
    engine = engine or Engine()
    if on_day is not None and engine.client is not None:
        raise ConfigError("a day hook runs in this process only: use an in-process engine")
    output = settings.output_dir or ModelsDirectory.for_settings(settings).root / "replay"
    if (output / "models").exists():
        raise ConfigError(
            f"{output / 'models'} exists: a replay writes a fresh models directory. "
            "Fix: choose a new --output or remove the old replay."
        )
    check_output(output)
    market = load_market_data(settings, downloader=downloader, today=now.date())
    days = [d.date() for d in market.frame.index if d >= pd.Timestamp(settings.replay_start)]
    if len(days) < 2:
        raise DataError(
            f"{market.source}: {len(days)} trading day(s) on or after --replay-start "
            f"{settings.replay_start} (data ends {market.last_date}). Fix: move --replay-start "
            "earlier."
        )
    history = labeled(build_dataset(market.until(days[0]).frame, settings.horizon))
    if len(history) < MIN_LABELED_ROWS:
        raise ConfigError(
            f"--replay-start {settings.replay_start}: only {len(history)} labeled rows of "
            f"history before the first replayed day {days[0]} (data from {market.first_date}); "
            f"its training needs at least {MIN_LABELED_ROWS}. Fix: move --replay-start later "
            "or --start earlier."
        )
    chunks = periods(days, settings.train_every)
    progress(
        f"replay {settings.symbol} {days[0]}..{days[-1]}: {len(days)} trading days, "
        f"{len(chunks)} scheduled trainings (every {settings.train_every} days), "
        f"{engine.workers} worker(s)"
    )
    task_settings = engine.task_settings(settings.model_copy(update={"output_dir": None}))
    shared = engine.share(market)
    pieces = [
        Piece(f"period {c.index + 1}/{len(chunks)} from {c.days[0]}", replay_period,
              (task_settings, shared, c, None, on_day), "replay")
        for c in chunks[:-1]
    ]  # fmt: skip
    outcomes = engine.run(pieces, "replay", progress)
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        raise failed[0].error  # type: ignore[misc]
    # The replay's own models directory: every history line in date order, the last period
    # for real in it.
    home = settings.model_copy(update={"models_dir": output / "models", "output_dir": None})
    models = ModelsDirectory.for_settings(home)
    with models.lock(settings.lock_timeout, purpose="replay", create=True):
        for outcome in outcomes:
            for training in outcome.value.training:
                models.append_history(TRAINING_HISTORY, training)
            for monitoring in outcome.value.monitoring:
                models.append_history(MONITORING_HISTORY, monitoring)
    progress(f"last period from {chunks[-1].days[0]} in {models.root}")
    last = replay_period(home, market, chunks[-1], models.root, on_day)
    results = [o.value for o in outcomes] + [last]
    table = pd.DataFrame([row for r in results for row in r.rows]).set_index("date")
    table.index = pd.DatetimeIndex(table.index)
    table.insert(0, "realized", realized_targets(market, settings.horizon).reindex(table.index))
    report = score_replay(table, settings, market.source, now, time.monotonic() - started)
    report.signals = {k: SignalRate(days=int(v["days"]), per_year=v["per_year"])
                      for k, v in signal_rates(table).items()}  # fmt: skip
    if settings.inject:
        wanted = injections_of(settings.inject, days)
        other = None
        if any(i.kind == "wrong_set" for i in wanted):
            other = load_market_data(settings.for_symbol(settings.inject_other), downloader=downloader,
                                     today=now.date())  # fmt: skip
        report.injections = run_injections(task_settings, engine.share(market), wanted, other,
                                           engine, progress)  # fmt: skip
        report.detection = detection_table(report.injections)
        report.duration_seconds = round(time.monotonic() - started, 1)
    files = {
        REPLAY_JSON: report.model_dump_json(indent=2).encode(),
        REPLAY_MD: replay_markdown(report).encode(),
        DAYS_CSV: table.rename_axis("date").to_csv(float_format="%.8g").encode(),
        **_plots(table),
    }
    progress(f"writing the replay report to {output}")
    return report, write_outputs(output, files)


def injections_of(text: str, days: list[dt.date]) -> list[Injection]:
    """``--inject``: the listed faults, or with ``every:N`` N days per kind spread evenly
    over the replayed days (each with room for its window)."""
    if not text.startswith("every:"):
        return parse_injections(text)
    try:
        n = int(text.split(":", 1)[1])
    except ValueError:
        raise ConfigError(
            f"--inject {text!r}: every:N needs a whole number, e.g. every:20"
        ) from None
    lo, hi = INJECTION_LEAD, len(days) - INJECTION_WINDOW - 1
    if n < 1 or hi - lo < n:
        raise ConfigError(
            f"--inject {text!r}: N must be between 1 and {max(hi - lo, 0)} for "
            f"{len(days)} replayed days. Fix: a smaller N or a longer replay."
        )
    picks = [days[lo + (hi - lo) * (2 * j + 1) // (2 * n)] for j in range(n)]
    return [Injection(kind, day) for kind in KINDS for day in picks]


def run_injections(
    settings: Settings,
    market: object,
    wanted: list[Injection],
    other: object,
    engine: Engine,
    progress: Progress,
) -> list[InjectionOutcome]:
    """Every injection as one piece of work (its own short replay, ``replay_injection``)."""
    pieces = [Piece(f"inject {i.name}", replay_injection, (settings, market, i, other), "inject")
              for i in wanted]  # fmt: skip
    outcomes = engine.run(pieces, "inject", progress)
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        raise failed[0].error  # type: ignore[misc]
    return [
        InjectionOutcome(kind=i.kind, start=i.start, delays=o.value)
        for i, o in zip(wanted, outcomes, strict=True)
    ]


def detection_table(outcomes: list[InjectionOutcome]) -> dict[str, dict[str, Detection]]:
    """Per fault kind and signal: the share of injections detected and the median delay."""
    out: dict[str, dict[str, Detection]] = {}
    for kind in dict.fromkeys(o.kind for o in outcomes):
        mine = [o for o in outcomes if o.kind == kind]
        out[kind] = {}
        for signal in SIGNALS:
            delays = [o.delays.get(signal) for o in mine]
            hit = [d for d in delays if d is not None]
            out[kind][signal] = Detection(
                injections=len(mine),
                detected=len(hit) / len(mine),
                median_delay_days=float(np.median(hit)) if hit else None,
            )
    return out


def _plots(table: pd.DataFrame) -> dict[str, bytes]:
    scored = table.dropna(subset=["realized"])
    diffs = {}
    for other in (ALWAYS_A, SCHEDULED):
        diffs[f"QLIKE\n{FOLLOW} - {other}"] = pd.Series(
            qlike_loss(scored["realized"], scored[FOLLOW])
            - qlike_loss(scored["realized"], scored[other]),
            index=scored.index,
        )
    return {
        LOSS_PNG: cumulative_loss_difference(
            diffs, "Cumulative loss difference of the published forecasts (below zero: "
            "following the monitor is ahead)"
        ),
        SIGNALS_PNG: signals_over_time(
            pd.DatetimeIndex(table.index),
            {"spec: RMSE drift": list(table[SPEC_SIGNAL]),
             "scale-free: relative QLIKE drift": list(table[SCALE_FREE_SIGNAL])},
            (policy.DRIFT_PLAN_PCT, policy.DRIFT_RETRAIN_PCT),
            "Drift signals of the monitoring runs",
            "drift (%)",
        ),
    }  # fmt: skip


def replay_markdown(report: ReplayReport) -> str:
    lines = [
        f"# Replay of the train/monitor policy: {report.symbol}, "
        f"{report.replay_start}..{report.replay_end}",
        "",
        f"{report.days} trading days, {report.scheduled_trainings} scheduled trainings (every "
        f"{report.train_every} days), {report.advised_trainings} trainings on the monitor's "
        f"advice; horizon {report.horizon} days. Data: {report.data_source}. "
        f"{report.duration_seconds:.0f}s.",
        "",
        "| policy | RMSE | QLIKE | days |",
        "|---|---|---|---|",
    ]
    for name, score in report.policies.items():
        lines.append(f"| {name} | {score.rmse:.6f} | {score.qlike:.4f} | {score.n_days} |")
    lines += ["", "Diebold–Mariano, follow_monitor against each policy (negative: "
              "follow_monitor's loss is lower):", "",
              "| against | loss | statistic | p-value |", "|---|---|---|---|"]  # fmt: skip
    for t in report.diebold_mariano:
        lines.append(f"| {t.against} | {t.loss} | {t.statistic:.2f} | {t.p_value:.2g} |")
    lines += [
        "",
        f"Alarms: a day whose signal is at 'watch' (5–10%) or 'retrain' (> 10%); it is true when "
        f"the published Model A forecasts of the next {report.alarm_window_days} trading days "
        "have a mean QLIKE above its median over the replay (base rate about 50%).",
        "",
        "| signal | days watch | days retrain | true alarms (any) | true alarms (retrain) | "
        "bad periods caught | base rate |",
        "|---|---|---|---|---|---|---|",
    ]

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{100 * value:.0f}%"

    for name, a in report.alarms.items():
        lines.append(
            f"| {name} | {a.days_watch} | {a.days_retrain} | {pct(a.true_alarm_rate_any)} | "
            f"{pct(a.true_alarm_rate_retrain)} | {pct(a.bad_periods_caught)} | "
            f"{pct(a.base_rate)} |"
        )
    if report.signals:
        lines += ["", "Days each signal alarmed on this replay (clean data: false alarms), per "
                  "year of 252 trading days:", "", "| signal | days | per year |", "|---|---|---|"]  # fmt: skip
        for name, rate in report.signals.items():
            lines.append(f"| {name} | {rate.days} | {rate.per_year:.2f} |")
    if report.detection:
        signals = list(SIGNALS)
        lines += ["", "Injected faults: share of injections detected / median delay in trading "
                  "days (0: the first monitoring run that sees the fault):", "",
                  *markdown_header(["fault", "injections", *signals])]  # fmt: skip
        for kind, per in report.detection.items():
            cells = [
                f"{per[s].detected:.0%} / {per[s].median_delay_days:g}"
                if per[s].median_delay_days is not None
                else f"{per[s].detected:.0%}"
                for s in signals
            ]
            n = next(iter(per.values())).injections
            lines.append(f"| {kind} | {n} | " + " | ".join(cells) + " |")
    lines += ["", f"Model B recommended on {report.model_b_days} days."]
    if report.model_b_days_rmse:
        lines.append(
            "RMSE on those days: "
            + ", ".join(f"{k} {v:.6f}" for k, v in report.model_b_days_rmse.items())
            + "."
        )
    return "\n".join(lines) + "\n"


def run(settings: Settings, _args: argparse.Namespace, say: Progress) -> int:
    result, paths = run_on_engine(settings, say, run_replay)
    print(replay_markdown(result), wrote(paths), sep="\n")
    return 0
