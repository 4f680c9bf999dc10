"""Backtests of forecast distributions: interval coverage, pinball and interval (Winkler) scores,
and the VaR tests a risk desk asks for — Kupiec's proportion of failures, Christoffersen's
independence and conditional coverage, and the Basel traffic light. Pure functions of arrays.

Conventions: an *exceedance* is a day whose loss was larger than its VaR (``loss > var``, both
positive numbers in the same units); ``p`` is the VaR's tail probability (0.01 for a 99% VaR).
The likelihood-ratio tests are asymptotically chi-squared (``scipy.stats.chi2``); a test that
has no information (no day, or a state never visited) returns a p-value of 1.

``score_distribution`` puts them together for one model's walk-forward: what ``evaluate``
writes under ``distribution.<model>``.

References: Kupiec (1995), "Techniques for verifying the accuracy of risk measurement models";
Christoffersen (1998), "Evaluating interval forecasts"; Basel Committee (1996), "Supervisory
framework for the use of backtesting"; Gneiting & Raftery (2007) for the scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.stats import binom, chi2, ttest_1samp

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


def green_max(p: float, window: int = BASEL_WINDOW) -> int:
    """The most exceedances of a VaR with tail probability ``p`` that a ``window``-day window
    may hold and stay green: the Basel rule, green while the count's cumulative binomial
    probability is below 95% (4 for a 99% VaR over 250 days, 17 for a 95% VaR).

    Examples
    --------
    >>> green_max(0.01), green_max(0.05)
    (4, 17)
    """
    k = 0
    while binom.cdf(k + 1, window, p) < 0.95:
        k += 1
    return k


def basel_green_share(
    exceedances: ArrayLike, window: int = BASEL_WINDOW, p: float = 0.01
) -> float | None:
    """Share of the rolling ``window``-day windows (every start day) in the green zone of a
    VaR with tail probability ``p`` (``green_max``); None when the backtest is shorter than
    one window.

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
    return float(np.mean(counts <= green_max(p, window)))


def mcneil_frey(
    loss: ArrayLike, es: ArrayLike, var: ArrayLike, scale: ArrayLike
) -> tuple[float, float]:
    """McNeil and Frey's (2000) expected-shortfall test: on the days the loss exceeded the
    VaR, (loss - ES) / scale averages zero when the ES is right. Returns (that mean, the
    one-sided t-test p-value of "it is above zero", i.e. the ES is too small); (0, 1) with
    fewer than two exceedances.

    Examples
    --------
    >>> mean, p = mcneil_frey([3.0, 3.2, 0.1], es=[2.0, 2.0, 2.0], var=[1.5, 1.5, 1.5],
    ...                       scale=[1.0, 1.0, 1.0])
    >>> round(mean, 2), p < 0.05
    (1.1, True)
    """
    y, e, v, s = (np.asarray(a, dtype=np.float64) for a in (loss, es, var, scale))
    hit = y > v
    excess = (y[hit] - e[hit]) / s[hit]
    if excess.size < 2:
        return 0.0, 1.0
    if np.ptp(excess) == 0.0:  # no spread: the t statistic is undefined
        return float(excess[0]), 0.0 if excess[0] > 0 else 1.0
    p = float(ttest_1samp(excess, 0.0, alternative="greater").pvalue)
    return float(excess.mean()), p


def var_check(loss: ArrayLike, var: ArrayLike, level: float) -> dict[str, Any]:
    """Exceedances of a VaR at ``level`` and Kupiec's p-value, on the days both are known.

    Examples
    --------
    >>> var_check([0.5, 2.0, 0.1, 0.0], [1.0, 1.0, 1.0, np.nan], level=0.99)["exceedances"]
    1
    """
    y, v = np.asarray(loss, dtype=np.float64), np.asarray(var, dtype=np.float64)
    known = np.isfinite(y) & np.isfinite(v)
    hits = y[known] > v[known]
    return {
        "exceedances": int(hits.sum()),
        "days": int(known.sum()),
        "kupiec_p": kupiec_pof(hits, 1.0 - level),
    }


def central_pairs(levels: Sequence[float]) -> dict[str, tuple[float, float]]:
    """The central intervals a set of quantile levels gives: coverage ("0.9") -> (lower,
    upper) levels, for every pair symmetric about the median.

    Examples
    --------
    >>> central_pairs([0.05, 0.25, 0.5, 0.75, 0.95])
    {'0.5': (0.25, 0.75), '0.9': (0.05, 0.95)}
    """
    out = {}
    for lo in sorted(lv for lv in levels if lv < 0.5):
        hi = round(1.0 - lo, 10)
        if any(abs(hi - lv) < 1e-9 for lv in levels):
            out[f"{hi - lo:.10g}"] = (lo, hi)
    return dict(sorted(out.items(), key=lambda kv: float(kv[0])))


def score_distribution(
    realized: ArrayLike,
    loss_1d: ArrayLike,
    dist: Mapping[str, ArrayLike],
    levels: Sequence[float],
    var_levels: Sequence[float],
) -> dict[str, Any]:
    """One model's forecast distribution over a walk-forward, in ``evaluate``'s shape
    (``schemas.DistributionScores`` without ``method``).

    ``dist`` holds the model's columns by day: ``q<level>`` (quantiles of the realized
    volatility), ``var<level>`` and ``es<level>`` (the 1-day VaR and ES, losses > 0) and
    ``scale`` (the 1-day volatility the ES test standardizes by); ``loss_1d`` is the next
    day's loss (minus the log return), NaN where unknown.
    """
    y = np.asarray(realized, dtype=np.float64)
    q = {lv: np.asarray(dist[f"q{lv:g}"], dtype=np.float64) for lv in levels}
    out: dict[str, Any] = {
        "days": int(y.size),
        "coverage": {k: coverage(y, q[lo], q[hi]) for k, (lo, hi) in central_pairs(levels).items()},
        "pinball": pinball(y, q),
    }
    lo90, hi90 = (0.05, 0.95) if {0.05, 0.95} <= set(levels) else (min(levels), max(levels))
    out["winkler_90"] = winkler(y, q[lo90], q[hi90], alpha=0.1)
    loss = np.asarray(loss_1d, dtype=np.float64)
    out["var"], out["es"] = {}, {}
    for level in var_levels:
        var = np.asarray(dist[f"var{level:g}"], dtype=np.float64)
        known = np.isfinite(loss) & np.isfinite(var)
        hits = loss[known] > var[known]
        p = 1.0 - level
        independence, conditional = christoffersen(hits, p)
        out["var"][f"{level:g}"] = {
            **var_check(loss, var, level),
            "christoffersen_p": independence,
            "conditional_coverage_p": conditional,
            "green_share": basel_green_share(hits, p=p),
        }
        es = np.asarray(dist[f"es{level:g}"], dtype=np.float64)[known]
        scale = np.asarray(dist["scale"], dtype=np.float64)[known]
        mean, p_es = mcneil_frey(loss[known], es, var[known], scale)
        out["es"][f"{level:g}"] = {
            "exceedances": int(hits.sum()),
            "mean_excess": mean,
            "mcneil_frey_p": p_es,
        }
    return out
