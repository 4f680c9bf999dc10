"""Backtests of forecast distributions: interval coverage, pinball and interval (Winkler) scores,
and the VaR tests a risk desk asks for — Kupiec's proportion of failures, Christoffersen's
independence and conditional coverage, and the Basel traffic light. Pure functions of arrays.

Conventions: an *exceedance* is a day whose loss was larger than its VaR (``loss > var``, both
positive numbers in the same units); ``p`` is the VaR's tail probability (0.01 for a 99% VaR).
The likelihood-ratio tests are asymptotically chi-squared (``scipy.stats.chi2``); a test that
has no information (no day, or a state never visited) returns a p-value of 1.

References: Kupiec (1995), "Techniques for verifying the accuracy of risk measurement models";
Christoffersen (1998), "Evaluating interval forecasts"; Basel Committee (1996), "Supervisory
framework for the use of backtesting"; Gneiting & Raftery (2007) for the scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.stats import chi2

ArrayLike = npt.ArrayLike
Zone = Literal["green", "yellow", "red"]
# Exceedances of a 99% VaR in 250 days: up to 4 green, 5 to 9 yellow, 10 or more red.
BASEL_WINDOW = 250
BASEL_GREEN_MAX = 4
BASEL_YELLOW_MAX = 9


def _bool(x: ArrayLike) -> npt.NDArray[np.bool_]:
    return np.asarray(x, dtype=bool)


def coverage(realized: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> float:
    """Share of days whose realized value lies inside [lower, upper].

    Examples
    --------
    >>> coverage([1.0, 2.0, 3.0, 4.0], [0.5, 2.5, 2.5, 2.5], [1.5, 3.5, 3.5, 3.5])
    0.5
    """
    y, lo, hi = (np.asarray(a, dtype=np.float64) for a in (realized, lower, upper))
    return float(np.mean((y >= lo) & (y <= hi)))


def pinball(realized: ArrayLike, quantiles: Mapping[float, ArrayLike]) -> float:
    """Pinball (quantile) loss averaged over days and over the levels of ``quantiles`` (level
    -> that quantile's forecast per day). Lower is better; proper for each quantile.

    Examples
    --------
    >>> pinball([1.0], {0.5: [2.0]})  # |1 - 2| / 2
    0.5
    """
    y = np.asarray(realized, dtype=np.float64)
    losses = []
    for level, forecast in quantiles.items():
        q = np.asarray(forecast, dtype=np.float64)
        diff = y - q
        losses.append(np.mean(np.maximum(level * diff, (level - 1.0) * diff)))
    return float(np.mean(losses))


def winkler(realized: ArrayLike, lower: ArrayLike, upper: ArrayLike, alpha: float) -> float:
    """Mean interval score of the central (1 - alpha) interval: its width, plus 2/alpha times
    the distance by which the realized value falls outside it. Lower is better.

    Examples
    --------
    >>> winkler([1.0, 5.0], [0.0, 0.0], [2.0, 2.0], alpha=0.1)  # (2 + (2 + 20 * 3)) / 2
    32.0
    """
    y, lo, hi = (np.asarray(a, dtype=np.float64) for a in (realized, lower, upper))
    score = (hi - lo) + (2.0 / alpha) * (np.maximum(lo - y, 0.0) + np.maximum(y - hi, 0.0))
    return float(np.mean(score))


def _xlogy(x: float, y: float) -> float:
    return 0.0 if x == 0 else x * float(np.log(y))


def kupiec_pof(exceedances: ArrayLike, p: float) -> float:
    """Kupiec's proportion-of-failures test: the p-value of "the exceedance rate is ``p``".

    Examples
    --------
    >>> round(kupiec_pof([True] * 5 + [False] * 245, 0.01), 4)  # 5 in 250 at 99%: LR 1.957
    0.1619
    """
    hits = _bool(exceedances)
    n, x = hits.size, int(hits.sum())
    if n == 0:
        return 1.0
    rate = x / n
    lr = -2.0 * (
        _xlogy(n - x, 1.0 - p) + _xlogy(x, p) - _xlogy(n - x, 1.0 - rate) - _xlogy(x, rate)
    )
    return float(chi2.sf(max(lr, 0.0), df=1))


def christoffersen(exceedances: ArrayLike, p: float) -> tuple[float, float]:
    """Christoffersen's tests: (independence p-value, conditional-coverage p-value).

    Independence asks whether an exceedance makes the next one likelier (a first-order Markov
    chain against independence); conditional coverage joins it with Kupiec's rate test
    (chi-squared with 2 degrees of freedom).

    Examples
    --------
    >>> spread = ([True] + [False] * 49) * 5
    >>> clustered = [True] * 5 + [False] * 245
    >>> christoffersen(spread, 0.02)[0] > 0.5, christoffersen(clustered, 0.02)[0] < 0.001
    (True, True)
    """
    hits = _bool(exceedances).astype(int)
    if hits.size < 2:
        return 1.0, 1.0
    prev, nxt = hits[:-1], hits[1:]
    n00 = int(np.sum((prev == 0) & (nxt == 0)))
    n01 = int(np.sum((prev == 0) & (nxt == 1)))
    n10 = int(np.sum((prev == 1) & (nxt == 0)))
    n11 = int(np.sum((prev == 1) & (nxt == 1)))
    pi0 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi1 = n11 / (n10 + n11) if n10 + n11 else 0.0
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    restricted = _xlogy(n00 + n10, 1.0 - pi) + _xlogy(n01 + n11, pi)
    free = _xlogy(n00, 1.0 - pi0) + _xlogy(n01, pi0) + _xlogy(n10, 1.0 - pi1) + _xlogy(n11, pi1)
    lr_ind = max(-2.0 * (restricted - free), 0.0)
    hits_all, n = int(hits.sum()), hits.size
    rate = hits_all / n
    lr_pof = max(
        -2.0
        * (
            _xlogy(n - hits_all, 1.0 - p)
            + _xlogy(hits_all, p)
            - _xlogy(n - hits_all, 1.0 - rate)
            - _xlogy(hits_all, rate)
        ),
        0.0,
    )
    return float(chi2.sf(lr_ind, df=1)), float(chi2.sf(lr_pof + lr_ind, df=2))


def basel_zone(exceedances_in_window: int) -> Zone:
    """The Basel traffic-light zone of a 250-day window's 99% VaR exceedance count."""
    if exceedances_in_window <= BASEL_GREEN_MAX:
        return "green"
    return "yellow" if exceedances_in_window <= BASEL_YELLOW_MAX else "red"


def basel_green_share(exceedances: ArrayLike, window: int = BASEL_WINDOW) -> float | None:
    """Share of the rolling ``window``-day windows (every start day) in the green zone; None
    when the backtest is shorter than one window.

    Examples
    --------
    >>> basel_green_share([False] * 300)
    1.0
    >>> # 51 windows; the 6 that start on days 0-5 hold 5 or more of the 10 exceedances
    >>> round(basel_green_share([True] * 10 + [False] * 290), 4)
    0.8824
    """
    hits = _bool(exceedances).astype(int)
    if hits.size < window:
        return None
    counts = np.convolve(hits, np.ones(window, dtype=int), mode="valid")
    return float(np.mean([basel_zone(int(c)) == "green" for c in counts]))
