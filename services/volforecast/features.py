"""The 20 features and the target: pure functions of the aligned market frame.

Every feature at date t is computed from rows dated t or earlier (trailing windows only), which
``tests/test_features.py`` checks as a property. The target at t is the realized volatility of
the next ``horizon`` days, so it is the only column that looks forward.

Units: returns are log returns; volatilities are daily (not annualized), like the target.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd

TARGET = "target"
FEATURE_COLUMNS: tuple[str, ...] = (
    "spy_ret_1d",
    "spy_ret_5d",
    "spy_ret_22d",
    "spy_rv_1d",
    "spy_rv_5d",
    "spy_rv_22d",
    "spy_rv_66d",
    "spy_downside_rv_22d",
    "spy_parkinson_1d",
    "spy_parkinson_5d",
    "spy_parkinson_22d",
    "spy_garman_klass_5d",
    "spy_overnight_rv_5d",
    "spy_drawdown_66d",
    "vix_level",
    "vix_chg_1d",
    "vix_chg_5d",
    "vix_rel_22d",
    "vix_rv_spread",
    "vix_rv_ratio_5d",
)
# Rows needed before the first complete feature row (longest window plus one return).
WARMUP_ROWS = 67
_PARKINSON = 1.0 / (4.0 * np.log(2.0))
_GK_CLOSE = 2.0 * np.log(2.0) - 1.0
# Daily volatility -> annualized percent (252 trading days), the unit VIX and traders quote.
ANNUALIZED_PCT = 100.0 * float(np.sqrt(252.0))
_DAILY_FROM_VIX = 1.0 / ANNUALIZED_PCT


def _ln(x: pd.Series) -> pd.Series:
    # numpy ufuncs keep the Series (and its index); the stubs only know they return arrays.
    return cast(pd.Series, np.log(x))


def _sqrt(x: pd.Series) -> pd.Series:
    return cast(pd.Series, np.sqrt(x))


def log_returns(adj_close: pd.Series) -> pd.Series:
    """Daily log returns of the adjusted close (NaN on the first row)."""
    return _ln(adj_close).diff()


def _rms(x: pd.Series, window: int) -> pd.Series:
    return _sqrt((x**2).rolling(window, min_periods=window).mean())


def build_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The 20 features for every row of an aligned market frame (see ``data.MarketData``).

    Rows inside the warm-up (incomplete windows) are NaN; ``build_dataset`` drops them.
    """
    adj = frame["spy_adj_close"]
    r = log_returns(adj)
    hl = _ln(frame["spy_high"] / frame["spy_low"])
    co = _ln(frame["spy_close"] / frame["spy_open"])
    overnight = _ln(frame["spy_open"] / frame["spy_close"].shift(1))
    gk_daily = (0.5 * hl**2 - _GK_CLOSE * co**2).clip(lower=0.0)
    vix = frame["vix_close"]
    vix_daily = vix * _DAILY_FROM_VIX
    rv5 = _rms(r, 5)
    rv22 = _rms(r, 22)
    out = pd.DataFrame(
        {
            "spy_ret_1d": r,
            "spy_ret_5d": _ln(adj / adj.shift(5)),
            "spy_ret_22d": _ln(adj / adj.shift(22)),
            "spy_rv_1d": r.abs(),
            "spy_rv_5d": rv5,
            "spy_rv_22d": rv22,
            "spy_rv_66d": _rms(r, 66),
            "spy_downside_rv_22d": _rms(r.clip(upper=0.0), 22),
            "spy_parkinson_1d": _sqrt(_PARKINSON * hl**2),
            "spy_parkinson_5d": _sqrt(_PARKINSON * (hl**2).rolling(5, min_periods=5).mean()),
            "spy_parkinson_22d": _sqrt(_PARKINSON * (hl**2).rolling(22, min_periods=22).mean()),
            "spy_garman_klass_5d": _sqrt(gk_daily.rolling(5, min_periods=5).mean()),
            "spy_overnight_rv_5d": _rms(overnight, 5),
            "spy_drawdown_66d": _ln(adj / adj.rolling(66, min_periods=66).max()),
            "vix_level": vix_daily,
            "vix_chg_1d": _ln(vix / vix.shift(1)),
            "vix_chg_5d": _ln(vix / vix.shift(5)),
            "vix_rel_22d": _ln(vix / vix.rolling(22, min_periods=22).mean()),
            "vix_rv_spread": vix_daily - rv22,
            # Floor: a 5-day window of zero returns (stale data) must not divide by zero.
            "vix_rv_ratio_5d": _ln(vix_daily / rv5.clip(lower=1e-5)),
        },
        index=frame.index,
    )
    return out.loc[:, list(FEATURE_COLUMNS)]


def realized_vol_target(adj_close: pd.Series, horizon: int) -> pd.Series:
    """sqrt(mean of squared log returns over t+1..t+horizon); NaN without a full window."""
    r2 = log_returns(adj_close) ** 2
    forward_mean = r2.rolling(horizon, min_periods=horizon).mean().shift(-horizon)
    return _sqrt(forward_mean).rename(TARGET)


def build_dataset(frame: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Features plus ``target`` for every row with complete features.

    The last ``horizon`` rows have no target (NaN): they are the rows that get forecast.
    """
    features = build_features(frame)
    complete = features.notna().all(axis=1)
    data = features.loc[complete].copy()
    data[TARGET] = realized_vol_target(frame["spy_adj_close"], horizon).loc[complete]
    return data


def labeled(dataset: pd.DataFrame) -> pd.DataFrame:
    """Rows whose forward window is complete (usable for training and scoring)."""
    return dataset.loc[dataset[TARGET].notna()]
