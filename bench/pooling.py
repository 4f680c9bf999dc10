"""Choosing the pooling weight: development period only (data cut at 2012-12-31).

The protocol of the pooling issue (#26), written before its run: it prints numbers and
asserts nothing. The pool is the first ``--pool-size`` stocks of the universe's symbols.txt;
the held-out series are the other stocks and every ETF of the data folder. For each held-out
series, the walk of ``evaluate`` (refit every 63 rows, h rows purged, h = 5) is run for the
HAR core alone, fitted on the series' own rows (``har_core``) and shrunk towards the pool's
panel with each candidate ``kappa`` (``pooling.shrunk_coef``; the panel refitted at each refit
on the pool's rows up to that day). Two settings, both inside 1995..2012:

- cold start: history from 2005-01-01, forecasts 2008-01-02..2010-12-31 (three years of
  history at the first refit);
- full history: history from 1995-01-01 (or the series' start), forecasts 2008..2012.

The rule: for each kappa, the geometric mean over held-out series of the pooled core's RMSE
and QLIKE over the own core's, cold start; admissible if, with full history, SPY's and QQQ's
RMSE and QLIKE ratios are at most 1.005; the admissible kappa with the lowest mean of the two
cold-start log ratios wins (ties: the larger kappa, the less pooling).

    python bench/pooling.py --data-dir ../shared/data --universe ../shared/data/universe

``--level`` (second round, written 2026-12-03 before its run; development period only): the
level of the panel's line. A series with three years of history knows its own long-run level
only from those years; the VIX has a long history. Candidates, kappa kept at the shipped
``POOL_KAPPA``: the anchor b in ``ANCHORS`` (``PanelCore.raw_coef``; 0 shipped before this round): the
series' own means are moved by how far the mean log VIX over its rows lies (delta) from the
mean log VIX over every pool day by the cut: its log-volatility regressors' means by -b delta,
its log-variance target's by -2 b delta, its VIX regressor's set to the long-run mean. Walks:
the two above, plus a second cold start, history from 2000-01-01, forecasts 2003-01-02..
2005-12-31 (calmer years than 2008-2010, so the choice does not rest on one crisis). The
rule: admissible if, with full history, SPY's and QQQ's RMSE and QLIKE ratios to the own core
are at most 1.005; the score is the mean over the two cold starts of the mean of the two log
ratios to the own core; an admissible b > 0 replaces b = 0 only if its score is lower by at
least 0.005 (half a percent), the lowest such score winning; otherwise b = 0 stays.
(Its first run printed the same numbers for every b: Duan's correction, computed on the
series' own residuals, re-centres the core on its own level and undid the move. The move is
now added after the correction, ``pooling.level_shift``; the protocol is otherwise unchanged.)

    python bench/pooling.py --data-dir ../shared/data --universe ../shared/data/universe --level

``--curve`` (run once, after the choice; it chooses nothing): the shipped kappa and anchor on the
evaluation period, forecasts 2013-01-02..2015-12-31 with 3, 4, 8 years of history and the full
history (from 1993), the same held-out series: the benefit as a function of history length.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from volforecast.baselines import HARCore
from volforecast.config import build_settings, read_ticker_file
from volforecast.data import load_market_data
from volforecast.errors import VolforecastError
from volforecast.features import build_dataset, labeled, log_returns
from volforecast.metrics import qlike, rmse
from volforecast.pooling import POOL_KAPPA, PoolData, PooledHARCore
from volforecast.splits import MIN_LABELED_ROWS
from volforecast.walkforward import forecast_block, schedule

KAPPAS = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0)
ETFS = ("SPY", "QQQ", "TLT", "GLD", "EWJ", "IYR", "VTI", "AGG", "IEF", "TIP")
DEV_END = "2012-12-31"
H = 5


def dataset(
    data_dir: Path, symbol: str, start: str, end: str = DEV_END
) -> tuple[pd.DataFrame, pd.Series]:
    settings = build_settings(data_source="csv", data_dir=data_dir, symbol=symbol, start=start,
                              as_of=end, horizon=H)  # fmt: skip
    frame = load_market_data(settings).frame
    return labeled(build_dataset(frame, H)), log_returns(frame["spy_adj_close"])


def walk(data: pd.DataFrame, returns: pd.Series, first: str, pool: PoolData, symbol: str,
         kappas: tuple[float, ...], anchors: tuple[float, ...] = ()
         ) -> dict[str, tuple[float, float]] | None:  # fmt: skip
    pos = int(data.index.searchsorted(pd.Timestamp(first)))
    if pos - H < MIN_LABELED_ROWS or pos >= len(data):
        return None
    blocks = schedule(len(data), pos, 63, H)
    panels = {
        pd.Timestamp(data.index[b.train_end - 1]): pool.panel_at(
            data.index[b.train_end - 1], symbol
        )
        for b in blocks
    }
    # The kappa round ran before the level anchor existed: b = 0, so its table still reproduces.
    models = {
        "own": HARCore(),
        **{f"k{k:g}": PooledHARCore(panels, kappa=k, anchor=0.0) for k in kappas},
    }
    models |= {f"b{b:g}": PooledHARCore(panels, anchor=b) for b in anchors}
    realized = np.concatenate([data["target"].iloc[b.start : b.stop].to_numpy() for b in blocks])
    out = {}
    for name, model in models.items():
        f = np.concatenate([forecast_block(model, data, returns, b) for b in blocks])
        out[name] = (rmse(realized, f), qlike(realized, f))
    return out


ANCHORS = (0.0, 0.5, 1.0)
COLD_STARTS = (
    ("2005-01-01", "2008-01-01", "2010-12-31"),
    ("2000-01-01", "2003-01-01", "2005-12-31"),
)


def level_round(series: list[tuple[Path, str]], pool: PoolData, data_dir: Path) -> int:
    """The second round: the level anchor b (module docstring, ``--level``)."""
    scores: dict[str, list[float]] = {f"b{b:g}": [] for b in ANCHORS}
    print("window | anchor | series | RMSE / own core (geo mean) | QLIKE / own core", flush=True)
    for start, first, last in COLD_STARTS:
        logs: dict[str, list[tuple[float, float]]] = {}
        for where, symbol in series:
            try:
                data, returns = dataset(where, symbol, start)
            except VolforecastError as exc:
                print(f"{symbol}: skipped ({exc})", file=sys.stderr)
                continue
            got = walk(data.loc[:last], returns, first, pool, symbol, (), ANCHORS)
            if got is None:
                continue
            own = got["own"]
            for name, (r, q) in got.items():
                if name != "own":
                    logs.setdefault(name, []).append((math.log(r / own[0]), math.log(q / own[1])))
        for name, values in logs.items():
            arr = np.array(values)
            r, q = np.exp(arr.mean(axis=0))
            scores[name].append(float(arr.mean()))
            print(
                f"{first[:4]}-{last[:4]} | {name[1:]} | {len(arr)} | {r:.4f} | {q:.4f}", flush=True
            )
    full: dict[str, dict[str, tuple[float, float]]] = {}
    for symbol in ("SPY", "QQQ"):
        data, returns = dataset(data_dir, symbol, "1995-01-01")
        got = walk(data, returns, "2008-01-01", pool, symbol, (), ANCHORS)
        assert got is not None
        full[symbol] = {n: (r / got["own"][0], q / got["own"][1])
                        for n, (r, q) in got.items() if n != "own"}  # fmt: skip
    print("anchor | score (mean of the cold starts' mean log ratios) | SPY full RMSE / QLIKE | "
          "QQQ full RMSE / QLIKE | admissible")  # fmt: skip
    base = float(np.mean(scores["b0"]))
    best: tuple[float, float] = (base, 0.0)
    for b in ANCHORS:
        name = f"b{b:g}"
        score = float(np.mean(scores[name]))
        ok = all(max(full[s][name]) <= 1.005 for s in full)
        if ok and b > 0 and score <= base - 0.005 and score < best[0]:
            best = (score, b)
        print(f"{b:g} | {score:.4f} | {full['SPY'][name][0]:.4f} / {full['SPY'][name][1]:.4f} | "
              f"{full['QQQ'][name][0]:.4f} / {full['QQQ'][name][1]:.4f} | {ok}", flush=True)  # fmt: skip
    print(f"chosen anchor: {best[1]:g}")
    return 0


CURVE_END = "2015-12-31"
CURVE_YEARS = (3, 4, 8, None)


def curve(series: list[tuple[Path, str]], pool: PoolData) -> int:
    """Pooled core over own core, by years of history at the first refit (2013-01-02)."""
    print("history | series | RMSE / own core (geo mean) | QLIKE / own core", flush=True)
    for years in CURVE_YEARS:
        start = "1993-01-01" if years is None else f"{2013 - years}-01-01"
        logs = []
        for where, symbol in series:
            try:
                data, returns = dataset(where, symbol, start, CURVE_END)
            except VolforecastError:
                continue
            scores = walk(data, returns, "2013-01-01", pool, symbol, (POOL_KAPPA,))
            if scores is None:
                continue
            (r0, q0), (r1, q1) = scores["own"], scores[f"k{POOL_KAPPA:g}"]
            logs.append((math.log(r1 / r0), math.log(q1 / q0)))
        r, q = np.exp(np.array(logs).mean(axis=0))
        label = "full" if years is None else f"{years} years"
        print(f"{label} | {len(logs)} | {r:.4f} | {q:.4f}", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the ETFs' folder")
    parser.add_argument("--universe", type=Path, required=True, help="the stocks' folder")
    parser.add_argument("--pool-size", type=int, default=120, help="stocks in the pool [120]")
    parser.add_argument("--curve", action="store_true", help="the evaluation-period curve")
    parser.add_argument("--level", action="store_true", help="the level anchor's round")
    args = parser.parse_args()
    stocks = read_ticker_file(args.universe / "symbols.txt", "--universe")
    pool_symbols, held_out = stocks[: args.pool_size], stocks[args.pool_size :]
    end = CURVE_END if args.curve else DEV_END
    pool_sets = {}
    for s in pool_symbols:
        try:
            pool_sets[s] = dataset(args.universe, s, "1993-01-01", end)[0]
        except VolforecastError as exc:
            print(f"pool: left out {s}: {exc}", file=sys.stderr)
    pool = PoolData.from_datasets(pool_sets)
    print(f"pool: {len(pool_sets)} stocks; held out: {len(held_out)} stocks and {len(ETFS)} ETFs",
          flush=True)  # fmt: skip
    series = [(args.universe, s) for s in held_out] + [(args.data_dir, s) for s in ETFS]
    if args.curve:
        return curve(series, pool)
    if args.level:
        return level_round(series, pool, args.data_dir)
    cold: dict[str, list[tuple[float, float]]] = {}
    for where, symbol in series:
        try:
            data, returns = dataset(where, symbol, "2005-01-01")
        except VolforecastError as exc:
            print(f"{symbol}: skipped ({exc})", file=sys.stderr)
            continue
        scores = walk(data.loc[:"2010-12-31"], returns, "2008-01-01", pool, symbol, KAPPAS)
        if scores is None:
            continue
        own = scores["own"]
        for name, (r, q) in scores.items():
            if name != "own":
                cold.setdefault(name, []).append((math.log(r / own[0]), math.log(q / own[1])))
    full: dict[str, dict[str, tuple[float, float]]] = {}
    for symbol in ("SPY", "QQQ"):
        data, returns = dataset(args.data_dir, symbol, "1995-01-01")
        scores = walk(data, returns, "2008-01-01", pool, symbol, KAPPAS)
        assert scores is not None
        full[symbol] = {n: (r / scores["own"][0], q / scores["own"][1])
                        for n, (r, q) in scores.items() if n != "own"}  # fmt: skip
    print("kappa | series | cold RMSE ratio (geo mean) | cold QLIKE ratio | SPY full RMSE / QLIKE "
          "| QQQ full RMSE / QLIKE | admissible")  # fmt: skip
    admissible: list[tuple[float, float]] = []
    for k in KAPPAS:
        name = f"k{k:g}"
        logs = np.array(cold[name])
        r, q = np.exp(logs.mean(axis=0))
        ok = all(max(full[s][name]) <= 1.005 for s in full)
        score = float(logs.mean())
        if ok:
            admissible.append((score, -k))
        print(f"{k:g} | {len(logs)} | {r:.4f} | {q:.4f} | {full['SPY'][name][0]:.4f} / "
              f"{full['SPY'][name][1]:.4f} | {full['QQQ'][name][0]:.4f} / {full['QQQ'][name][1]:.4f} "
              f"| {ok}", flush=True)  # fmt: skip
    # The lowest mean log ratio; among equal ones the larger kappa (sorted on -kappa).
    print(f"chosen kappa: {-min(admissible)[1]:g}" if admissible else "no kappa admissible")
    return 0


if __name__ == "__main__":
    sys.exit(main())
