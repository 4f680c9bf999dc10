"""How well calibrated are the ensemble's forecast distributions? Development period only.

An experiment for the risk issue (#23), run before any method ships: it prints numbers and
asserts nothing. The walk is ``select``'s (data cut the day before ``--eval-start``, forecasts
from ``--dev-eval-start``, refit every 63 rows with ``horizon`` rows purged, the shipped ensemble
setting per horizon). At each refit, inside the training window only:

- ``VolatilityCalibration`` on the ensemble's own out-of-fold forecasts gives quantiles of the
  h-day realized volatility (levels 0.05, 0.25, 0.5, 0.75, 0.95);
- ``ReturnRisk`` (filtered historical simulation) gives the 95% and 99% VaR and ES of the next
  day's log return, standardized by the same forecasts.

Scored on the block that follows: coverage of the 50% and 90% intervals, mean pinball loss,
Winkler score of the 90% interval, and for the 1-day VaR the exceedances, Kupiec and
Christoffersen p-values and the share of 250-day windows in the Basel green zone.

    python bench/risk.py --data-dir ../shared/data --symbols spy,qqq --horizons 1,5
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import pandas as pd

from volforecast import backtests, selection
from volforecast.calibration import ReturnRisk, VolatilityCalibration
from volforecast.config import Settings, build_settings
from volforecast.data import load_market_data
from volforecast.features import FEATURE_COLUMNS, TARGET, build_dataset, labeled, log_returns
from volforecast.splits import MIN_LABELED_ROWS
from volforecast.walkforward import schedule

LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)


def _default(name: str) -> object:
    return Settings.model_fields[name].default


def walk(symbol: str, horizon: int, data_dir: Path) -> dict[str, float | int]:
    eval_start: dt.date = _default("eval_start")  # type: ignore[assignment]
    settings = build_settings(
        data_source="csv", data_dir=data_dir, symbol=symbol, horizon=horizon,
        start=_default("dev_start"), as_of=eval_start - dt.timedelta(days=1),
    )  # fmt: skip
    frame = load_market_data(settings).frame
    data = labeled(build_dataset(frame, horizon))
    returns = log_returns(frame["spy_adj_close"])
    ahead_1 = returns.shift(-1).reindex(data.index)
    first = int(data.index.searchsorted(pd.Timestamp(_default("dev_eval_start"))))  # type: ignore[arg-type]
    refit: int = _default("refit_every")  # type: ignore[assignment]
    blocks = schedule(len(data), max(first, MIN_LABELED_ROWS + horizon), refit, horizon)
    rows: list[pd.DataFrame] = []
    for block in blocks:
        train = data.iloc[: block.train_end]
        model = selection.make_ensemble(settings)
        model.fit(train.loc[:, list(FEATURE_COLUMNS)], train[TARGET])
        oof = model.oof_forecast_
        vol_cal = VolatilityCalibration.fit(train[TARGET].to_numpy(), oof, LEVELS)
        # The next day's return of every training row is inside the window: its target needs it.
        risk = ReturnRisk.fit(ahead_1.iloc[: block.train_end].to_numpy(), oof, horizon=1)
        rows_b = data.iloc[block.start : block.stop]
        forecast = model.predict(rows_b.loc[:, list(FEATURE_COLUMNS)])
        out = pd.DataFrame({"realized": rows_b[TARGET].to_numpy()}, index=rows_b.index)
        for level, q in vol_cal.quantiles(forecast).items():
            out[f"q{level}"] = q
        for level, v in risk.var(forecast).items():
            out[f"var{level}"] = v
        out["loss_1d"] = -ahead_1.iloc[block.start : block.stop].to_numpy()
        rows.append(out)
    table = pd.concat(rows)
    y = table["realized"].to_numpy()
    result: dict[str, float | int] = {
        "days": len(table),
        "coverage_50": backtests.coverage(y, table["q0.25"], table["q0.75"]),
        "coverage_90": backtests.coverage(y, table["q0.05"], table["q0.95"]),
        "pinball": backtests.pinball(y, {lv: table[f"q{lv}"] for lv in LEVELS}),
        "winkler_90": backtests.winkler(y, table["q0.05"], table["q0.95"], alpha=0.1),
    }
    scored = table.dropna(subset=["loss_1d"])
    for level in (0.95, 0.99):
        hits = (scored["loss_1d"] > scored[f"var{level}"]).to_numpy()
        p = 1.0 - level
        p_ind, p_cc = backtests.christoffersen(hits, p)
        result[f"var{level}_exceed"] = int(hits.sum())
        result[f"var{level}_rate"] = float(hits.mean())
        result[f"var{level}_kupiec_p"] = backtests.kupiec_pof(hits, p)
        result[f"var{level}_christoffersen_p"] = p_ind
        result[f"var{level}_cc_p"] = p_cc
        if level == 0.99:
            green = backtests.basel_green_share(hits)
            result["basel_green_share"] = float("nan") if green is None else green
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="folder with <sym>_daily.csv")
    parser.add_argument("--symbols", default="spy,qqq", help="development series [spy,qqq]")
    parser.add_argument("--horizons", default="1,5", help="horizons [1,5]")
    args = parser.parse_args()
    header = ("symbol", "h", "days", "cov50", "cov90", "pinball", "winkler90", "VaR95 rate",
              "Kupiec p", "VaR99 rate", "Kupiec p", "Christ. p", "CC p", "green")  # fmt: skip
    print(" | ".join(header))
    for symbol in args.symbols.upper().split(","):
        for h in (int(x) for x in args.horizons.split(",")):
            r = walk(symbol, h, args.data_dir)
            print(
                f"{symbol} | {h} | {r['days']} | {r['coverage_50']:.3f} | {r['coverage_90']:.3f} | "
                f"{r['pinball']:.6f} | {r['winkler_90']:.5f} | {r['var0.95_rate']:.4f} | "
                f"{r['var0.95_kupiec_p']:.3f} | {r['var0.99_rate']:.4f} | "
                f"{r['var0.99_kupiec_p']:.3f} | {r['var0.99_christoffersen_p']:.3f} | "
                f"{r['var0.99_cc_p']:.3f} | {r['basel_green_share']:.3f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
