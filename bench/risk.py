"""Choosing how the ensemble's forecast becomes a distribution: development period only.

The protocol of the risk issue (#23), written before any number was seen, run once; it
prints numbers, asserts nothing, and never reads a row after 2012-12-31. The walk is
``select``'s (data cut the day before ``--eval-start``, forecasts from ``--dev-eval-start``,
refit every 63 rows with ``horizon`` rows purged, the shipped ensemble setting per horizon),
on every series of the data folder at h = 1 and 5. At each refit, inside the training window
only, every candidate ``CalibrationMethod`` (``GRID``) is fitted on the ensemble's own
out-of-fold forecasts and scored on the block that follows: coverage of the 50% and 90%
realized-volatility intervals, mean pinball loss, and for the 1-day 95% and 99% VaR the
exceedances, Kupiec's p-value and the share of 250-day windows in the Basel green zone.

The rule (``choose``):

1. Admissible: Kupiec's test not rejected at 5% for the 95% and the 99% VaR on every walk.
2. Among those, the highest mean (over walks) Basel green share; every candidate within 0.01
   of it is as good.
3. Among those, the largest ``tail_margin`` (the least conservative VaR), then the smallest
   mean coverage error |cov90 - 0.9| + |cov50 - 0.5|, then the lowest mean pinball loss
   relative to the first candidate; ties go to the earlier candidate.
   (No candidate admissible: the highest mean green share, then rule 3.)

    python bench/risk.py walk --data-dir ../shared/data --symbols spy,qqq --out /tmp/risk.jsonl
    python bench/risk.py choose /tmp/risk.jsonl

Second round, quantile bins (``--round bins``). Written before its run, after the evaluation
period (2013-2025) had been run once and showed the ensemble's pinball loss above GJR-GARCH-t's
on 5 of 20 walks: that is what prompted the round, and it still chooses on the development
period only; its evaluation is run once afterwards and reported as it comes out.

1. Candidates: the shipped method (window 1,000, scale max(forecast, EWMA), tail margin 0.8)
   with ``quantile_bins`` 1 (as shipped), 2, 3, 4 and 5: the out-of-fold log residuals split
   by the level of the forecast into that many equal groups, each with its own conformal
   quantiles (Mondrian conformal), so the interval can be wider or narrower on turbulent days.
   VaR and ES are not touched by it.
2. Walks: the same twenty (every series of ``../shared/data`` at h = 1 and 5, 2003-2012).
3. Rule (``choose --round bins``): a candidate's score is its mean over walks of pinball loss
   relative to ``quantile_bins=1``'s. Admissible: at least as many walks with the 90%
   coverage in [0.88, 0.92] and the 50% in [0.47, 0.53] as ``quantile_bins=1``. The admissible
   candidate with the lowest score ships if its score is below 0.998 (a 0.2% margin, so noise
   does not change the method); otherwise one bin stays.

    python bench/risk.py walk --round bins --data-dir ../shared/data --symbols spy,qqq --out /tmp/bins.jsonl
    python bench/risk.py choose --round bins /tmp/bins.jsonl

Third round, the EWMA's speed (``--round ewma``). Written before its run, after the evaluation
period had been run once and showed Christoffersen's conditional-coverage test rejecting the
ensemble's 99% VaR at 5% on 9 of 20 walks and 7 of 20 walks with 95% of their 250-day windows
green: exceedances cluster, because the scale that the VaR multiplies, max(forecast, EWMA),
follows a run of shocks too slowly. That prompted the round; it chooses on the development
period only, and its evaluation is run once afterwards and reported as it comes out.

1. Candidates: the shipped method (window 1,000, scale max(forecast, EWMA), one quantile bin)
   with the RiskMetrics decay ``ewma_lambda`` 0.94 (as shipped), 0.90, 0.85 or 0.80 (a faster
   EWMA: yesterday's squared return weighs 6%, 10%, 15%, 20%) × ``tail_margin`` 1, 0.8 (as
   shipped), 0.65: twelve, the shipped decay listed first. The realized-volatility quantiles
   do not depend on either, so coverage and pinball loss are the same for all twelve.
2. Walks: the same twenty (every series of ``../shared/data`` at h = 1 and 5, 2003-2012).
3. Rule (``choose --round ewma``): the first round's rule, unchanged, on these twelve:
   admissible if Kupiec's test is not rejected at 5% for the 95% and 99% VaR on every walk;
   among those, every candidate within 0.01 of the highest mean green share; among those the
   largest tail margin; ties to the earlier candidate (so a faster EWMA ships only if the
   shipped decay at the same margin falls outside the 0.01 band). The table also prints the
   walks whose conditional-coverage test passes at 5% (``cc_ok``), which the rule does not read.

    python bench/risk.py walk --round ewma --data-dir ../shared/data --symbols spy,qqq --out /tmp/ewma.jsonl
    python bench/risk.py choose --round ewma /tmp/ewma.jsonl

Fourth round, blending with GJR-GARCH-t (``--round combine``): a study for a later build,
nothing ships from it. Written before its run, after the faster EWMA's evaluation run showed
the ensemble's pinball loss above a GARCH-t model's on 5 of 20 walks (GLD at h = 1 and 5; IYR,
AGG, IEF at h = 1), by 0.1% to 1.3%. The partner, GJR-GARCH-t, was picked having seen that it
is the baseline that most often comes closest there; the weights are chosen on the development
period only.

1. Candidates: the shipped calibration's quantiles of realized volatility ``q_ens`` averaged
   level by level with GJR-GARCH-t's ``q_gjr`` (both fitted on the same training window at
   each refit; quantile averaging keeps the levels in order): ``w * q_ens + (1 - w) * q_gjr``
   with w = 1 (as shipped), 0.75, 0.5, 0.25 and 0 (GJR-GARCH-t alone). VaR and ES untouched.
   GARCH-t's own quantiles are scored beside them (``garch_t``), not a candidate.
2. Walks: the same twenty (every series of ``../shared/data`` at h = 1 and 5, 2003-2012).
3. Rule (``choose --round combine``): a blend (w = 0.75, 0.5, 0.25) is worth building if its
   pinball loss is below w = 1's on at least 15 of the 20 walks, its mean log pinball ratio to
   w = 1 is at most -0.005, and it has at least as many walks with both coverages in the
   acceptance bands (90%: [0.88, 0.92], 50%: [0.47, 0.53]) as w = 1; among those the lowest
   mean log ratio. The table also prints, per candidate, the walks on which its pinball is
   below both GARCH models' (the acceptance's test against those two baselines).

    python bench/risk.py walk --round combine --data-dir ../shared/data --symbols spy,qqq --out /tmp/combine.jsonl
    python bench/risk.py choose --round combine /tmp/combine.jsonl

``feasibility`` asks what the acceptance targets demand of the best VaR there could be: one whose
exceedances are independent with a constant rate ``q``. For ``q`` from 0.5% to 1.2% it
simulates ``--series`` backtests of ``--days`` days (seeded) and prints the share that pass
Kupiec at 5% (against the nominal 1%), the share with at least 95% of their 250-day windows in
the Basel green zone, and the share that pass both. It reads no data.

    python bench/risk.py feasibility --days 3200 --series 10000
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from volforecast import backtests, selection
from volforecast.baselines import GARCHForecaster
from volforecast.calibration import (
    QUANTILE_LEVELS,
    SHIPPED_METHOD,
    CalibrationMethod,
    ForecastCalibration,
    forward_returns,
)
from volforecast.config import Settings, build_settings
from volforecast.data import load_market_data
from volforecast.features import FEATURE_COLUMNS, TARGET, build_dataset, labeled, log_returns
from volforecast.splits import MIN_LABELED_ROWS
from volforecast.walkforward import Block, schedule

GRID = [
    CalibrationMethod(window=w, scale=s, tail_margin=m)  # type: ignore[arg-type]
    for w, s, m in itertools.product((None, 1000), ("forecast", "max_ewma"), (1.0, 0.8, 0.65, 0.5))
]
BINS_GRID = [dataclasses.replace(SHIPPED_METHOD, quantile_bins=k) for k in (1, 2, 3, 4, 5)]
EWMA_GRID = [
    dataclasses.replace(SHIPPED_METHOD, ewma_lambda=lam, tail_margin=m)
    for lam, m in itertools.product((0.94, 0.90, 0.85, 0.80), (1.0, 0.8, 0.65))
]
GRIDS = {"method": GRID, "bins": BINS_GRID, "ewma": EWMA_GRID}
# combine has no CalibrationMethod grid: its candidates are blend weights.
ROUNDS = [*GRIDS, "combine"]
# The fourth round's weights on the ensemble's quantiles (the rest on GJR-GARCH-t's).
BLEND_WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)
# The bins round's margin: a candidate must beat one bin by more than this to ship.
BINS_MARGIN = 0.998


def _default(name: str) -> Any:
    return Settings.model_fields[name].default


def score(table: pd.DataFrame) -> dict[str, float | int | None]:
    """The protocol's numbers for one candidate's forecasts of one walk."""
    y = table["realized"].to_numpy()
    out: dict[str, float | int | None] = {
        "days": len(table),
        "cov50": backtests.coverage(y, table["q0.25"], table["q0.75"]),
        "cov90": backtests.coverage(y, table["q0.05"], table["q0.95"]),
        "pinball": backtests.pinball(y, {lv: table[f"q{lv:g}"] for lv in QUANTILE_LEVELS}),
    }
    scored = table.dropna(subset=["loss_1d"])
    for level in (0.95, 0.99):
        hits = (scored["loss_1d"] > scored[f"var{level:g}"]).to_numpy()
        out[f"var{level:g}_rate"] = float(hits.mean())
        out[f"var{level:g}_kupiec_p"] = backtests.kupiec_pof(hits, 1.0 - level)
        if level == 0.99:
            out["green"] = backtests.basel_green_share(hits)
            out["cc_p"] = backtests.christoffersen(hits, 0.01)[1]
    return out


@dataclasses.dataclass(frozen=True)
class DevelopmentWalk:
    """One series at one horizon as every round walks it: data cut the day before
    ``--eval-start``, forecasts from ``--dev-eval-start``, refit every ``refit_every`` rows
    with ``horizon`` rows purged."""

    settings: Settings
    data: pd.DataFrame
    returns: pd.Series
    loss_1d: np.ndarray
    blocks: list[Block]


def development_walk(symbol: str, horizon: int, data_dir: Path) -> DevelopmentWalk:
    eval_start: dt.date = _default("eval_start")
    settings = build_settings(
        data_source="csv", data_dir=data_dir, symbol=symbol, horizon=horizon,
        start=_default("dev_start"), as_of=eval_start - dt.timedelta(days=1),
    )  # fmt: skip
    frame = load_market_data(settings).frame
    data = labeled(build_dataset(frame, horizon))
    returns = log_returns(frame["spy_adj_close"])
    loss_1d = -forward_returns(returns, pd.DatetimeIndex(data.index), horizon)[0]
    first = int(data.index.searchsorted(pd.Timestamp(_default("dev_eval_start"))))
    blocks = schedule(
        len(data), max(first, MIN_LABELED_ROWS + horizon), _default("refit_every"), horizon
    )
    return DevelopmentWalk(settings, data, returns, loss_1d, blocks)


def walk(
    symbol: str, horizon: int, data_dir: Path, grid: list[CalibrationMethod]
) -> list[dict[str, Any]]:
    dev = development_walk(symbol, horizon, data_dir)
    settings, data, returns, loss_1d = dev.settings, dev.data, dev.returns, dev.loss_1d
    blocks = dev.blocks
    tables: list[list[pd.DataFrame]] = [[] for _ in grid]
    for k, block in enumerate(blocks, 1):
        print(f"{symbol} h={horizon} refit {k}/{len(blocks)}", file=sys.stderr, flush=True)
        train = data.iloc[: block.train_end]
        model = selection.make_ensemble(settings)
        model.fit(train.loc[:, list(FEATURE_COLUMNS)], train[TARGET])
        rows = data.iloc[block.start : block.stop]
        forecast = model.predict(rows.loc[:, list(FEATURE_COLUMNS)])
        for c, method in enumerate(grid):
            cal = ForecastCalibration.fit(
                train[TARGET].to_numpy(), model.oof_forecast_, returns,
                pd.DatetimeIndex(train.index), horizon, method,
            )  # fmt: skip
            dist = cal.distribution_on(forecast, returns, rows.index)
            out = pd.DataFrame({"realized": rows[TARGET].to_numpy(), **dist}, index=rows.index)
            out["loss_1d"] = loss_1d[block.start : block.stop]
            tables[c].append(out)
    return [
        {"symbol": symbol, "horizon": horizon, "candidate": m.name, **score(pd.concat(t))}
        for m, t in zip(grid, tables, strict=True)
    ]


def walk_combine(symbol: str, horizon: int, data_dir: Path) -> list[dict[str, Any]]:
    """The fourth round's walk: at each refit the shipped calibration's quantiles and
    GJR-GARCH-t's (and GARCH-t's, scored beside them), on the same training window."""
    dev = development_walk(symbol, horizon, data_dir)
    settings, data, returns, loss_1d = dev.settings, dev.data, dev.returns, dev.loss_1d
    blocks = dev.blocks
    levels = [f"q{lv:g}" for lv in QUANTILE_LEVELS]
    blends = [f"blend(w={w:g})" for w in BLEND_WEIGHTS]
    names = [*blends, "garch_t"]
    tables: dict[str, list[pd.DataFrame]] = {n: [] for n in names}
    for k, block in enumerate(blocks, 1):
        print(f"{symbol} h={horizon} refit {k}/{len(blocks)}", file=sys.stderr, flush=True)
        train = data.iloc[: block.train_end]
        rows = data.iloc[block.start : block.stop]
        model = selection.make_ensemble(settings)
        model.fit(train.loc[:, list(FEATURE_COLUMNS)], train[TARGET])
        forecast = model.predict(rows.loc[:, list(FEATURE_COLUMNS)])
        cal = ForecastCalibration.fit(
            train[TARGET].to_numpy(), model.oof_forecast_, returns,
            pd.DatetimeIndex(train.index), horizon, SHIPPED_METHOD,
        )  # fmt: skip
        ens = pd.DataFrame(cal.distribution_on(forecast, returns, rows.index), index=rows.index)
        garch: dict[bool, pd.DataFrame] = {}
        for asymmetric in (True, False):
            g = GARCHForecaster(horizon, asymmetric=asymmetric, distribution=True)
            garch[asymmetric] = g.fit(train, returns).predict(rows, returns)
        realized = rows[TARGET].to_numpy()
        for w, name in zip(BLEND_WEIGHTS, blends, strict=True):
            out = ens.copy()
            out[levels] = w * ens[levels].to_numpy() + (1.0 - w) * garch[True][levels].to_numpy()
            tables[name].append(
                out.assign(realized=realized, loss_1d=loss_1d[block.start : block.stop])
            )
        tables["garch_t"].append(
            ens.assign(**{lv: garch[False][lv].to_numpy() for lv in levels}).assign(
                realized=realized, loss_1d=loss_1d[block.start : block.stop]
            )
        )
    return [
        {"symbol": symbol, "horizon": horizon, "candidate": n, **score(pd.concat(tables[n]))}
        for n in names
    ]


def choose_combine(lines: list[dict[str, Any]]) -> tuple[str, pd.DataFrame]:
    """The fourth round's rule (module docstring): the blend worth building, or w = 1."""
    frame = pd.DataFrame(lines)
    key = ["symbol", "horizon"]
    by = frame.pivot_table(index=key, columns="candidate", values="pinball")
    shipped, gjr = f"blend(w={BLEND_WEIGHTS[0]:g})", f"blend(w={BLEND_WEIGHTS[-1]:g})"
    frame["in_bands"] = frame["cov90"].between(0.88, 0.92) & frame["cov50"].between(0.47, 0.53)
    bands = frame.groupby("candidate")["in_bands"].sum()
    rows = []
    for name in by.columns:
        log_ratio = np.log(by[name] / by[shipped])
        rows.append(
            {
                "candidate": name,
                "walks": int(by[name].notna().sum()),
                "below_shipped": int((by[name] < by[shipped]).sum()),
                "log_ratio": float(log_ratio.mean()),
                "worst_ratio": float(np.exp(log_ratio.max())),
                "in_bands": int(bands[name]),
                "below_garchs": int(((by[name] < by[gjr]) & (by[name] < by["garch_t"])).sum()),
            }
        )
    per = pd.DataFrame(rows).set_index("candidate").loc[list(by.columns)]
    blends = [f"blend(w={w:g})" for w in BLEND_WEIGHTS[1:-1]]
    ok = per.loc[blends]
    ok = ok[
        (ok["below_shipped"] >= 15)
        & (ok["log_ratio"] <= -0.005)
        & (ok["in_bands"] >= per.loc[shipped, "in_bands"])
    ]
    chosen = str(ok["log_ratio"].idxmin()) if len(ok) else shipped
    return chosen, per


def choose_bins(lines: list[dict[str, Any]]) -> tuple[str, pd.DataFrame]:
    """The bins round's rule (module docstring): lowest mean relative pinball among the
    candidates with at least one bin's count of walks in both coverage bands."""
    frame = pd.DataFrame(lines)
    frame = frame[frame["candidate"].isin([m.name for m in BINS_GRID])]
    walks = frame.groupby(["symbol", "horizon"]).ngroups
    keyed = frame.set_index(["symbol", "horizon"])
    ref = keyed[keyed["candidate"] == BINS_GRID[0].name]["pinball"]
    frame["pinball_rel"] = frame["pinball"].to_numpy() / keyed.index.map(ref.to_dict()).to_numpy()
    frame["in_bands"] = frame["cov90"].between(0.88, 0.92) & frame["cov50"].between(0.47, 0.53)
    per = frame.groupby("candidate", sort=False).agg(
        walks=("symbol", "size"),
        in_bands=("in_bands", "sum"),
        pinball_rel=("pinball_rel", "mean"),
        pinball_rel_max=("pinball_rel", "max"),
        better_walks=("pinball_rel", lambda x: int((x < 1.0).sum())),
        cov90=("cov90", "mean"),
        cov50=("cov50", "mean"),
    )
    per = per.loc[[m.name for m in BINS_GRID if m.name in per.index]]
    one = BINS_GRID[0].name
    pool = per[(per["walks"] == walks) & (per["in_bands"] >= per.loc[one, "in_bands"])]
    best = pool.sort_values("pinball_rel", kind="stable").index[0]
    return (str(best) if per.loc[best, "pinball_rel"] < BINS_MARGIN else one), per


def choose(
    lines: list[dict[str, Any]], grid: list[CalibrationMethod] = GRID
) -> tuple[str, pd.DataFrame]:
    """The first round's rule (module docstring) on ``grid``'s candidates; the third round
    applies it unchanged to ``EWMA_GRID``."""
    frame = pd.DataFrame(lines)
    frame = frame[frame["candidate"].isin([m.name for m in grid])].copy()
    walks = frame.groupby(["symbol", "horizon"]).ngroups
    ref = frame[frame["candidate"] == grid[0].name].set_index(["symbol", "horizon"])["pinball"]
    frame["pinball_rel"] = frame["pinball"] / frame.set_index(["symbol", "horizon"]).index.map(
        ref.to_dict()
    )
    frame["cov_err"] = (frame["cov90"] - 0.9).abs() + (frame["cov50"] - 0.5).abs()
    frame["kupiec_ok"] = (frame["var0.95_kupiec_p"] >= 0.05) & (frame["var0.99_kupiec_p"] >= 0.05)
    per = frame.groupby("candidate", sort=False).agg(
        walks=("symbol", "size"),
        admissible=("kupiec_ok", "all"),
        kupiec_ok=("kupiec_ok", "sum"),
        green=("green", "mean"),
        green_min=("green", "min"),
        cov90=("cov90", "mean"),
        cov50=("cov50", "mean"),
        cov_err=("cov_err", "mean"),
        pinball_rel=("pinball_rel", "mean"),
        var99=("var0.99_rate", "mean"),
        var95=("var0.95_rate", "mean"),
        cc_ok=("cc_p", lambda x: int((x >= 0.05).sum())),
    )
    per = per.loc[[m.name for m in grid if m.name in per.index]]
    per["margin"] = [m.tail_margin for m in grid if m.name in per.index]
    complete = per[per["walks"] == walks]
    pool = complete[complete["admissible"]]
    if pool.empty:
        pool = complete
    best = pool[pool["green"] >= pool["green"].max() - 0.01]
    best = best.sort_values(
        ["margin", "cov_err", "pinball_rel"], ascending=[False, True, True], kind="stable"
    )
    return str(best.index[0]), per


def feasibility(days: int, series: int) -> int:
    """The targets' pass rates for an ideal VaR with independent exceedances at rate q."""
    rng = np.random.default_rng(20261203)
    print(
        f"{days}-day backtests of a 99% VaR, {series} simulated per rate; exceedances independent"
    )
    print(f"{'rate q':>8}{'Kupiec ok':>11}{'green>=95%':>12}{'both':>8}{'mean green':>12}")
    for q in (0.005, 0.006, 0.007, 0.0075, 0.008, 0.009, 0.010, 0.012):
        kupiec = green = both = 0
        shares = []
        for _ in range(series):
            hits = rng.random(days) < q
            k = backtests.kupiec_pof(hits, 0.01) >= 0.05
            share = backtests.basel_green_share(hits) or 0.0
            g = share >= 0.95
            kupiec, green, both = kupiec + k, green + g, both + (k and g)
            shares.append(share)
        print(
            f"{q:>8.4f}{kupiec / series:>11.3f}{green / series:>12.3f}{both / series:>8.3f}"
            f"{np.mean(shares):>12.3f}",
            flush=True,
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    w = sub.add_parser("walk", help="score every candidate on development walks (JSON lines)")
    w.add_argument("--data-dir", type=Path, required=True, help="folder with <sym>_daily.csv")
    w.add_argument("--symbols", default="spy,qqq", help="development series [spy,qqq]")
    w.add_argument("--horizons", default="1,5", help="horizons [1,5]")
    w.add_argument("--out", type=Path, required=True, help="append the results to this file")
    c = sub.add_parser("choose", help="apply the rule to the walks' results")
    c.add_argument("results", type=Path, nargs="+")
    for p in (w, c):
        p.add_argument(
            "--round",
            choices=sorted(ROUNDS),
            default="method",
            help="method: the first round; bins: the quantile bins; ewma: the EWMA's speed; "
            "combine: blending with GJR-GARCH-t [method]",
        )
    f = sub.add_parser("feasibility", help="the targets against an ideal independent VaR")
    f.add_argument("--days", type=int, default=3200, help="backtest length [3200]")
    f.add_argument("--series", type=int, default=10000, help="simulated backtests [10000]")
    args = parser.parse_args()
    if args.step == "feasibility":
        return feasibility(args.days, args.series)
    if args.step == "walk":
        for symbol in args.symbols.upper().split(","):
            for h in (int(x) for x in args.horizons.split(",")):
                results = (
                    walk_combine(symbol, h, args.data_dir)
                    if args.round == "combine"
                    else walk(symbol, h, args.data_dir, GRIDS[args.round])
                )
                with args.out.open("a") as f:
                    for r in results:
                        f.write(json.dumps(r) + "\n")
        return 0
    lines = [json.loads(x) for p in args.results for x in p.read_text().splitlines() if x]
    if args.round == "combine":
        chosen, per = choose_combine(lines)
    elif args.round == "bins":
        chosen, per = choose_bins(lines)
    else:
        chosen, per = choose(lines, GRIDS[args.round])
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(per.round(4).to_string())
    print(f"\nchosen: {chosen}")
    walks = sorted({f"{x['symbol']} h={x['horizon']}" for x in lines})
    print(f"walks read ({len(walks)}): {', '.join(walks)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
