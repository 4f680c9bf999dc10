"""What the monitor measures: RMSE drift against the validation baseline, the A/B windows,
feature drift (PSI and Kolmogorov–Smirnov) and the scale-free relative-QLIKE drift. Pure
functions; ``volforecast.policy`` decides from them.

Thresholds are those of the models-directory spec and, for feature drift, Evidently's defaults;
each is a named constant documented in services/monitor/README.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from volforecast import policy
from volforecast.metrics import qlike, qlike_loss, rmse
from volforecast.policy import drift_level
from volforecast.schemas import (
    Comparison,
    Drift,
    FeatureDrift,
    FeatureDriftItem,
    Window,
)

MODEL_A = "Model A"
MODEL_B = "Model B"

TRAILING_WINDOWS = (20, 10, 5)
PSI_THRESHOLD = 0.1
KS_PVALUE_THRESHOLD = 0.05
PSI_BINS = 10
# PSI over 10 bins has a sampling bias of about (bins - 1) / n: on 30 rows it is ~0.3 with no
# drift at all, so it only votes once the new rows are this many.
PSI_MIN_ROWS = 100
# Deciles of fewer training rows than this are too coarse to compare against.
MIN_REFERENCE_ROWS = 100
FloatArray = npt.NDArray[np.float64]


def winner(model_a_rmse: float, model_b_rmse: float) -> str:
    """Model B wins only when strictly better: a tie keeps the conservative default."""
    return MODEL_B if model_b_rmse < model_a_rmse else MODEL_A


def windows(
    y: npt.ArrayLike,
    pred_a: npt.ArrayLike,
    pred_b: npt.ArrayLike,
    sizes: Sequence[int] = TRAILING_WINDOWS,
) -> list[Window]:
    """All new data, then each trailing window shorter than it (longer ones would repeat it)."""
    t = np.asarray(y, dtype=np.float64)
    a = np.asarray(pred_a, dtype=np.float64)
    b = np.asarray(pred_b, dtype=np.float64)
    n = t.size
    out: list[Window] = []
    for size, name in [
        (n, f"All new data ({n} samples)"),
        *((k, f"Last {k} samples") for k in sizes),
    ]:
        if size > n or (size == n and out):
            continue
        ra, rb = rmse(t[-size:], a[-size:]), rmse(t[-size:], b[-size:])
        out.append(
            Window(
                name=name, n_samples=size, model_a_rmse=ra, model_b_rmse=rb, winner=winner(ra, rb)
            )
        )
    return out


def comparison(wins: Sequence[Window]) -> Comparison:
    """Both RMSEs on all new data (the first window) and Model B's share of window wins."""
    first = wins[0]
    b_wins = sum(w.winner == MODEL_B for w in wins)
    return Comparison(
        model_a_rmse=first.model_a_rmse,
        model_b_rmse=first.model_b_rmse,
        winner=first.winner,
        model_b_win_rate=100.0 * b_wins / len(wins),
    )


def drift_pct(model_a_rmse: float, baseline_rmse: float) -> float:
    """How much worse Model A is on new data than on its validation set, in percent (>= 0)."""
    return max(0.0, (model_a_rmse / baseline_rmse - 1.0) * 100.0)


def drift(model_a_rmse: float, baseline_rmse: float) -> Drift:
    pct = drift_pct(model_a_rmse, baseline_rmse)
    return Drift(
        model_a_drift_pct=pct,
        baseline_rmse=baseline_rmse,
        model_a_rmse=model_a_rmse,
        level=drift_level(pct),
    )


def psi(reference: npt.ArrayLike, current: npt.ArrayLike, bins: int = PSI_BINS) -> float:
    """Population stability index with bins at the reference deciles (open-ended outer bins)."""
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_share = (
        np.bincount(np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1) / ref.size
    )
    cur_share = (
        np.bincount(np.searchsorted(edges, cur, side="right"), minlength=edges.size + 1) / cur.size
    )
    # An empty bin would make the log infinite; the floor is the usual small-count correction.
    ref_share = np.maximum(ref_share, 1e-4)
    cur_share = np.maximum(cur_share, 1e-4)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def feature_drift(reference: pd.DataFrame, current: pd.DataFrame) -> FeatureDrift:
    """PSI and two-sample Kolmogorov–Smirnov of each feature.

    Drifted if the KS p-value is below 0.05, or PSI >= 0.1 once there are ``PSI_MIN_ROWS`` new
    rows. Daily features are autocorrelated, so a few weeks of new rows often sit in one part
    of the training distribution: a flag says "the inputs look unlike training", not "the model
    is wrong".
    """
    psi_votes = len(current) >= PSI_MIN_ROWS
    items = {}
    skipped = None
    if len(reference) < MIN_REFERENCE_ROWS:
        # E.g. --start after Model A's training period: there is nothing to compare against.
        skipped = (
            f"only {len(reference)} of Model A's training rows are in the data (need "
            f"{MIN_REFERENCE_ROWS}); move --start back to cover Model A's training period"
        )
    for col in [] if skipped else reference.columns:
        ref, cur = reference[col].to_numpy(float), current[col].to_numpy(float)
        p = psi(ref, cur)
        ks = stats.ks_2samp(ref, cur)
        items[col] = FeatureDriftItem(
            psi=p,
            ks_statistic=float(ks.statistic),
            ks_pvalue=float(ks.pvalue),
            drifted=bool(ks.pvalue < KS_PVALUE_THRESHOLD or (psi_votes and p >= PSI_THRESHOLD)),
        )
    return FeatureDrift(
        psi_threshold=PSI_THRESHOLD,
        psi_min_rows=PSI_MIN_ROWS,
        ks_pvalue_threshold=KS_PVALUE_THRESHOLD,
        n_reference=len(reference),
        n_current=len(current),
        n_drifted=sum(i.drifted for i in items.values()),
        features=items,
        skipped=skipped,
    )


def relative_qlike_drift(
    y_new: npt.ArrayLike,
    a_new: npt.ArrayLike,
    naive_new: npt.ArrayLike,
    y_val: npt.ArrayLike,
    a_val: npt.ArrayLike,
    naive_val: npt.ArrayLike,
) -> float:
    """A scale-free drift signal: Model A's QLIKE relative to a naive forecast's on the same
    rows, on the new rows against on the validation rows, in percent (>= 0, like ``drift_pct``).

    QLIKE depends only on the ratio of realized to forecast variance, and dividing by the naive
    forecast's QLIKE on the same days takes out how hard those days were: a turbulent period
    alone does not raise it, a model that lost its skill does.
    """
    new = qlike(y_new, a_new) / qlike(y_new, naive_new)
    val = qlike(y_val, a_val) / qlike(y_val, naive_val)
    return max(0.0, (new / val - 1.0) * 100.0)


# Page's CUSUM (services/monitor/README.md, "Which alarm to trust"): the allowance k and the
# per-run false-alarm probability alpha are fixed by design, not fitted to any replay.
CUSUM_K = 0.5
CUSUM_ALPHA = policy.CUSUM_ALPHA
CUSUM_CLIP = 4.0  # one day moves the statistic by at most this many standard deviations
CUSUM_REPLICATES = 10000
CUSUM_SEED = 20261203


@dataclass(frozen=True)
class Cusum:
    """Page's test of the new rows: its statistic, the threshold, and whether it alarmed."""

    statistic: float
    threshold: float
    rows: int

    @property
    def alarm(self) -> bool:
        return self.statistic > self.threshold


def loss_gap(realized: npt.ArrayLike, forecast: npt.ArrayLike, naive: npt.ArrayLike) -> FloatArray:
    """Per row, the model's QLIKE minus the naive forecast's (NaN on zero-volatility days):
    scale-free, and high only when the model does worse than the naive forecast did."""
    return qlike_loss(realized, forecast) - qlike_loss(realized, naive)


def _page(z: FloatArray, k: float) -> FloatArray:
    """The last value of S_t = max(0, S_{t-1} + z_t - k) along the last axis."""
    s = np.zeros(z.shape[:-1])
    for t in range(z.shape[-1]):
        s = np.maximum(0.0, s + z[..., t] - k)
    return s


def cusum(new_gap: npt.ArrayLike, reference_gap: npt.ArrayLike, block: int) -> Cusum | None:
    """Page's CUSUM of the new rows' loss gaps, standardized by the reference rows' (Model A's
    validation rows), with a threshold such that, had nothing changed, a run would alarm with
    probability ``CUSUM_ALPHA``: the same statistic over ``CUSUM_REPLICATES`` moving-block
    bootstrap paths of the reference rows (blocks of ``block`` rows keep the overlap of
    h-day targets; drawn from a few hundred rows they understate the tail a little: on
    i.i.d. data, blocks of 5 gave 0.6% alarms for the designed 0.5%). None when either side
    has too few rows.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> ref = rng.normal(0, 1, 400)
    >>> cusum(rng.normal(0, 1, 30), ref, block=5).alarm
    False
    >>> cusum(rng.normal(2, 1, 30), ref, block=5).alarm
    True
    """
    ref = np.asarray(reference_gap, dtype=np.float64)
    ref = ref[np.isfinite(ref)]
    new = np.asarray(new_gap, dtype=np.float64)
    new = new[np.isfinite(new)]
    if ref.size < max(MIN_REFERENCE_ROWS, 2 * block) or new.size == 0:
        return None
    mu, sd = float(ref.mean()), float(ref.std())
    if sd == 0.0:
        return None
    z_ref = np.clip((ref - mu) / sd, -CUSUM_CLIP, CUSUM_CLIP)
    z_new = np.clip((new - mu) / sd, -CUSUM_CLIP, CUSUM_CLIP)
    n = z_new.size
    rng = np.random.default_rng(CUSUM_SEED)
    starts = rng.integers(0, z_ref.size - block + 1, size=(CUSUM_REPLICATES, -(-n // block)))
    paths = z_ref[(starts[..., None] + np.arange(block)).reshape(CUSUM_REPLICATES, -1)[:, :n]]
    threshold = float(np.quantile(_page(paths, CUSUM_K), 1.0 - CUSUM_ALPHA))
    return Cusum(float(_page(z_new, CUSUM_K)), threshold, n)


def residual_drift(
    realized: npt.ArrayLike,
    forecast: npt.ArrayLike,
    ref_realized: npt.ArrayLike,
    ref_forecast: npt.ArrayLike,
) -> tuple[float, float] | None:
    """Scale-free drift: the two-sample Kolmogorov-Smirnov test of Model A's log residuals
    ln(realized / forecast) on the new rows against its validation rows. A change of regime
    that the model follows leaves them alone; a model that stopped fitting moves them.
    (statistic, p-value), or None with fewer than 5 new or ``MIN_REFERENCE_ROWS`` reference
    residuals."""

    def logs(y: npt.ArrayLike, f: npt.ArrayLike) -> FloatArray:
        a, b = np.asarray(y, dtype=np.float64), np.asarray(f, dtype=np.float64)
        keep = (a > 0) & (b > 0)
        return np.asarray(np.log(a[keep] / b[keep]), dtype=np.float64)

    new, ref = logs(realized, forecast), logs(ref_realized, ref_forecast)
    if new.size < 5 or ref.size < MIN_REFERENCE_ROWS:
        return None
    result = stats.ks_2samp(new, ref)
    return float(result.statistic), float(result.pvalue)
