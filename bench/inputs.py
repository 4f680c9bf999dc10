"""Do new inputs help the ensemble on the development period? An experiment, not a test.

The issue's untested directions — scheduled events inside the forecast window, the VIX term
structure (VIX3M) and vol-of-vol (VVIX) — measured the way the selection protocol allows: on
data cut at 2012-12-31 (the day before ``--eval-start``; every target ends by then), with the
walk-forward ``volforecast select`` uses (expanding window, refit every 63 rows, ``horizon``
rows purged), each horizon's shipped setting (``selection.chosen_for``) as the base, and the same
setting with the input added as the variant. It prints each variant's RMSE and QLIKE over the
base's, the Diebold–Mariano p-value against the base, and the rule's score change (mean over the
symbols of (ln RMSE ratio + ln QLIKE ratio) / 2; the rule needs -0.005 to move).

    python bench/inputs.py --data-dir ../shared/data --fomc-csv fed_meeting_dates.csv

Inputs, and the periods their data allows:

- ``calendar`` (data from 1995, forecasts from 2003-01-02): the share of the forecast window's
  days that are scheduled FOMC announcement days (from ``--fomc-csv``: a ``date`` column and
  the ``fed_meeting_date_indicator`` / ``fed_non_scheduled_meeting_indicator`` columns of the
  Central-Bank-Meeting-Dates table, Weiland & Yeo 2024, compiled from the FOMC's website;
  without it the FOMC column is left out), monthly option expiries (the third Friday, or the
  trading day before it when it is a holiday), first Fridays (a proxy for the payroll release,
  which the BLS moves in some months) and the non-trading calendar days between the window's
  trading days (weekends, holidays). All are known before the window starts. Variants: as tree
  features only, and also as linear regressors of the HAR core.
- ``vix3m`` (the file starts 2009-09-18; forecasts from the 500th labeled row, about 2011-12):
  ln(VIX / VIX3M), as a tree feature and also in the core.
- ``vvix`` (from 2007-01-03: the file's 2006 rows fail the plausibility check; forecasts from
  the 500th labeled row, about 2009-03): ln(VVIX) and ln(VVIX / its 22-day mean), likewise.

Nothing here reads a day after 2012-12-31: the frame is cut before any feature is built.
``--evaluation`` is the one evaluation of a choice made on those numbers: the same comparison
with data to the files' end and forecasts from 2013-01-02 (``--variants`` keeps the chosen ones).
Each variant's HAR core alone (``<variant>/core``, fitted in the same refits) is compared with the
base's core as well.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from volforecast import selection
from volforecast.config import Settings
from volforecast.data import align, price_file, read_price_csv, validate_prices
from volforecast.ensemble import FloatArray, StackedEnsemble
from volforecast.features import FEATURE_COLUMNS, TARGET, build_dataset, labeled
from volforecast.metrics import diebold_mariano, qlike, qlike_loss, rmse, squared_error_loss
from volforecast.splits import MIN_LABELED_ROWS
from volforecast.walkforward import schedule

# The protocol's periods and refit interval, as `volforecast select` has them by default.
_DEFAULT = Settings.model_fields
DEV_START: dt.date = _DEFAULT["dev_start"].default
DEV_EVAL_START: dt.date = _DEFAULT["dev_eval_start"].default
EVAL_START: dt.date = _DEFAULT["eval_start"].default
DEV_END = EVAL_START - dt.timedelta(days=1)
REFIT_EVERY: int = _DEFAULT["refit_every"].default


@dataclass(frozen=True)
class Variant:
    name: str
    extra: tuple[str, ...]  # columns added to the 20 features
    in_core: bool  # the added columns are also linear regressors of the HAR core


@dataclass(frozen=True)
class Experiment:
    name: str
    start: str  # first day of data
    first_forecast: dt.date | None  # None: the 500th labeled row
    columns: Callable[[pd.DataFrame, int], pd.DataFrame]  # (aligned frame, horizon) -> inputs
    variants: tuple[Variant, ...]


def third_friday_expiries(days: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Monthly expiry days among ``days``: the third Friday, or the last trading day before it
    in the same week when the Friday is a holiday (Good Friday)."""
    out = []
    for year, month in sorted({(d.year, d.month) for d in days}):
        first = pd.Timestamp(year=year, month=month, day=1)
        friday = first + pd.Timedelta(days=(4 - first.weekday()) % 7 + 14)
        week = days[(days <= friday) & (days > friday - pd.Timedelta(days=5))]
        if len(week):
            out.append(week[-1])
    return pd.DatetimeIndex(out)


def window_share(flags: pd.Series, horizon: int) -> pd.Series:
    """At t, the mean of ``flags`` over the next ``horizon`` rows (t+1..t+horizon)."""
    return flags.astype(float).rolling(horizon, min_periods=horizon).mean().shift(-horizon)


def calendar_columns(fomc: pd.DatetimeIndex | None) -> Callable[[pd.DataFrame, int], pd.DataFrame]:
    def build(frame: pd.DataFrame, horizon: int) -> pd.DataFrame:
        days = pd.DatetimeIndex(frame.index)
        # Whole days whatever the index's resolution (pandas may hold dates in ns or us).
        day_numbers = days.to_numpy().astype("datetime64[D]").astype(np.int64).astype(float)
        flags = {
            "cal_opex": pd.Series(days.isin(third_friday_expiries(days)), index=days),
            "cal_first_friday": pd.Series((days.day_of_week == 4) & (days.day <= 7), index=days),
            # Calendar days since the previous trading day, less one: 2 after a weekend.
            "cal_gap_days": pd.Series(np.r_[np.nan, np.diff(day_numbers) - 1.0], index=days),
        }
        if fomc is not None:
            flags["cal_fomc"] = pd.Series(days.isin(fomc), index=days)
        return pd.DataFrame({k: window_share(v, horizon) for k, v in flags.items()})

    return build


def vix3m_columns(vix3m: pd.DataFrame) -> Callable[[pd.DataFrame, int], pd.DataFrame]:
    def build(frame: pd.DataFrame, horizon: int) -> pd.DataFrame:
        v3 = vix3m["close"].reindex(frame.index).ffill()
        return pd.DataFrame({"vix_vix3m": np.log(frame["vix_close"] / v3)})

    return build


def vvix_columns(vvix: pd.DataFrame) -> Callable[[pd.DataFrame, int], pd.DataFrame]:
    def build(frame: pd.DataFrame, horizon: int) -> pd.DataFrame:
        vv = vvix["close"].reindex(frame.index).ffill()
        return pd.DataFrame(
            {
                "vvix_log": np.log(vv),
                "vvix_rel_22d": np.log(vv / vv.rolling(22, min_periods=22).mean()),
            }
        )

    return build


def read_vvix_from(path: Path, first_day: str) -> pd.DataFrame:
    """The VVIX file from ``first_day`` on, validated like any price file: its 2006 rows jump
    by a factor above 3 (2006-03-15), which the plausibility check rejects."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    raw = raw.loc[pd.to_datetime(raw["date"]) >= pd.Timestamp(first_day)].reset_index(drop=True)
    return validate_prices(raw, str(path), require_ohlc=False)


def walk_forecasts(
    frame: pd.DataFrame,
    horizon: int,
    experiment: Experiment,
    variants: Sequence[Variant],
    first_forecast: dt.date | None,
    say: Callable[[str], None],
) -> pd.DataFrame:
    """Realized target, every variant's walk-forward forecasts and (``<variant>/core``) the
    forecasts of its HAR core alone, fitted in the same refits."""
    inputs = experiment.columns(frame, horizon)
    data = labeled(build_dataset(frame, horizon)).join(inputs, how="left")
    extra = sorted({c for v in variants for c in v.extra})
    data = data.dropna(subset=extra)
    first = (
        int(data.index.searchsorted(pd.Timestamp(first_forecast)))
        if first_forecast
        else MIN_LABELED_ROWS
    )
    blocks = schedule(len(data), max(first, MIN_LABELED_ROWS), REFIT_EVERY, horizon)
    spec = selection.chosen_for(horizon)
    out = pd.DataFrame(
        {"realized": data[TARGET].iloc[blocks[0].start :]}, index=data.index[blocks[0].start :]
    )
    for variant in variants:
        cols = [*FEATURE_COLUMNS, *variant.extra]
        kwargs = selection.ensemble_kwargs(spec)
        if variant.in_core:
            kwargs["core_logs"] = (*kwargs["core_logs"], *variant.extra)
        preds: list[FloatArray] = []
        cores: list[FloatArray] = []
        t0 = time.monotonic()
        for block in blocks:
            model = StackedEnsemble(horizon=horizon, seed=42, n_jobs=1, feature_cols=cols, **kwargs)
            model.fit(data[cols].iloc[: block.train_end], data[TARGET].iloc[: block.train_end])
            rows = data[cols].iloc[block.start : block.stop]
            preds.append(model.predict(rows))
            cores.append(model.xgb_model_.predict_core(rows))
        out[variant.name] = np.concatenate(preds)
        out[f"{variant.name}/core"] = np.concatenate(cores)
        say(f"  {variant.name}: {len(blocks)} refits in {time.monotonic() - t0:.0f}s")
    return out


def report(
    forecasts: pd.DataFrame, horizon: int, variants: Sequence[Variant]
) -> list[dict[str, Any]]:
    """Each variant against the base, and each variant's core alone against the base's core."""
    y = forecasts["realized"]
    rows = []
    pairs = [(v.name, variants[0].name) for v in variants[1:]]
    pairs += [(f"{v.name}/core", f"{variants[0].name}/core") for v in variants[1:]]
    for name, base_name in pairs:
        f, base = forecasts[name], forecasts[base_name]
        r_ratio = rmse(y, f) / rmse(y, base)
        q_ratio = qlike(y, f) / qlike(y, base)
        rows.append(
            {
                "variant": name,
                "rmse_ratio": r_ratio,
                "qlike_ratio": q_ratio,
                "dm_p_se": diebold_mariano(
                    squared_error_loss(y, f), squared_error_loss(y, base), horizon
                ).p_value,
                "dm_p_qlike": diebold_mariano(
                    qlike_loss(y, f), qlike_loss(y, base), horizon
                ).p_value,
                "score": selection.log_score(r_ratio, q_ratio),
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, required=True, help="the price CSVs (e.g. ../shared/data)"
    )
    parser.add_argument(
        "--fomc-csv",
        type=Path,
        default=None,
        help="FOMC dates table (fed_meeting_dates.csv); without it the calendar has no FOMC column",
    )
    parser.add_argument("--symbols", default="spy,qqq", help="underlyings (default: spy,qqq)")
    parser.add_argument("--horizons", default="1,5,22", help="horizons (default: 1,5,22)")
    parser.add_argument(
        "--experiments", default="calendar,vix3m,vvix", help="calendar, vix3m and/or vvix"
    )
    parser.add_argument(
        "--variants",
        default="",
        help="only these variants (the base always runs), e.g. vix3m_core",
    )
    parser.add_argument(
        "--evaluation",
        action="store_true",
        help=f"the one evaluation after a development choice: data to the files' end, "
        f"forecasts from {EVAL_START} (default: the development period, data to {DEV_END})",
    )
    args = parser.parse_args(argv)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    fomc = None
    if args.fomc_csv is not None:
        table = pd.read_csv(args.fomc_csv, parse_dates=["date"])
        scheduled = (table["fed_meeting_date_indicator"] == 1) & (
            table["fed_non_scheduled_meeting_indicator"] == 0
        )
        fomc = pd.DatetimeIndex(table.loc[scheduled, "date"].unique())
    vix = read_price_csv(args.data_dir / "vix_daily.csv", require_ohlc=False)
    experiments = {
        "calendar": Experiment(
            "calendar",
            str(DEV_START),
            DEV_EVAL_START,
            calendar_columns(fomc),
            (
                Variant("base", (), False),
                Variant(
                    "calendar_trees",
                    ("cal_opex", "cal_first_friday", "cal_gap_days")
                    + (("cal_fomc",) if fomc is not None else ()),
                    False,
                ),
                Variant(
                    "calendar_core",
                    ("cal_opex", "cal_first_friday", "cal_gap_days")
                    + (("cal_fomc",) if fomc is not None else ()),
                    True,
                ),
            ),
        ),
        "vix3m": Experiment(
            "vix3m",
            "2009-09-18",
            None,
            vix3m_columns(read_price_csv(args.data_dir / "vix3m_daily.csv", require_ohlc=False)),
            (
                Variant("base", (), False),
                Variant("vix3m_trees", ("vix_vix3m",), False),
                Variant("vix3m_core", ("vix_vix3m",), True),
            ),
        ),
        "vvix": Experiment(
            "vvix",
            "2007-01-03",
            None,
            vvix_columns(read_vvix_from(args.data_dir / "vvix_daily.csv", "2007-01-03")),
            (
                Variant("base", (), False),
                Variant("vvix_trees", ("vvix_log", "vvix_rel_22d"), False),
                Variant("vvix_core", ("vvix_log", "vvix_rel_22d"), True),
            ),
        ),
    }
    wanted = {v.strip() for v in args.variants.split(",") if v.strip()}
    symbols = [s.strip().lower() for s in args.symbols.split(",") if s.strip()]
    horizons = [int(h) for h in args.horizons.split(",")]
    names = [e.strip() for e in args.experiments.split(",") if e.strip()]
    unknown = [n for n in names if n not in experiments]
    if unknown:
        parser.error(f"unknown experiment(s) {unknown}; choose from {sorted(experiments)}")
    print(
        "experiment | h | symbol | variant | forecasts | RMSE / base (DM p) | QLIKE / base (DM p) | score"
    )
    for name in names:
        experiment = experiments[name]
        variants = [
            v for k, v in enumerate(experiment.variants) if k == 0 or not wanted or v.name in wanted
        ]
        for horizon in horizons:
            scores: dict[str, list[float]] = {}
            for symbol in symbols:
                prices = read_price_csv(args.data_dir / price_file(symbol))
                end = None if args.evaluation else pd.Timestamp(DEV_END)
                frame = align(prices, vix).loc[experiment.start : end]
                say(
                    f"{name} h={horizon} {symbol}: {frame.index[0].date()}..{frame.index[-1].date()}"
                )
                first = EVAL_START if args.evaluation else experiment.first_forecast
                forecasts = walk_forecasts(frame, horizon, experiment, variants, first, say)
                for row in report(forecasts, horizon, variants):
                    scores.setdefault(row["variant"], []).append(row["score"])
                    print(
                        f"{name} | {horizon} | {symbol.upper()} | {row['variant']} | {len(forecasts)}"
                        f" ({forecasts.index[0].date()}..{forecasts.index[-1].date()})"
                        f" | {row['rmse_ratio']:.4f} ({row['dm_p_se']:.2g})"
                        f" | {row['qlike_ratio']:.4f} ({row['dm_p_qlike']:.2g}) | {row['score']:+.4f}",
                        flush=True,
                    )
            for variant, s in scores.items():
                print(
                    f"{name} | {horizon} | mean | {variant} | | | | {np.mean(s):+.4f}", flush=True
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
