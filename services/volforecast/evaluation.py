"""Chronological splits with purge, and forecast metrics. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike


@dataclass(frozen=True)
class Split:
    """Positions (into the labeled rows) of a training block and the evaluation block after it.

    ``purged`` rows lie between them: their forward target window reaches into the evaluation
    rows, so they are used for neither.
    """

    train: slice
    evaluate: slice
    purged: int

    @property
    def n_train(self) -> int:
        return int(self.train.stop - self.train.start)

    @property
    def n_evaluate(self) -> int:
        return int(self.evaluate.stop - self.evaluate.start)


def holdout_split(n_rows: int, n_eval: int, purge: int) -> Split:
    """Train on the first rows, evaluate on the last ``n_eval``, purge ``purge`` rows between."""
    if n_eval < 1 or n_rows - n_eval - purge < 1:
        raise ValueError(
            f"{n_rows} rows cannot hold {n_eval} evaluation rows and a {purge}-row purge"
        )
    eval_start = n_rows - n_eval
    return Split(
        train=slice(0, eval_start - purge), evaluate=slice(eval_start, n_rows), purged=purge
    )


def model_a_split(n_rows: int, train_fraction: float, purge: int) -> Split:
    """Model A: the first ``train_fraction`` of rows for training (less the purge), the rest to
    validate."""
    return holdout_split(n_rows, n_rows - int(np.floor(n_rows * train_fraction)), purge)


def model_b_split(n_rows: int, test_rows: int, purge: int) -> Split:
    """Model B: all rows but the last ``test_rows`` for training (less the purge)."""
    return holdout_split(n_rows, test_rows, purge)


def _pair(
    y_true: ArrayLike, y_pred: ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape or t.size == 0:
        raise ValueError(f"need two non-empty arrays of one shape, got {t.shape} and {p.shape}")
    return t, p


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def r2(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Coefficient of determination against the evaluation block's own mean (may be < 0)."""
    t, p = _pair(y_true, y_pred)
    total = float(np.sum((t - t.mean()) ** 2))
    if total == 0.0:
        return float("nan")
    return 1.0 - float(np.sum((t - p) ** 2)) / total


def qlike(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Patton (2011) QLIKE of volatility forecasts, on variances: mean(s/h - ln(s/h) - 1)."""
    t, p = _pair(y_true, y_pred)
    ratio = t**2 / np.maximum(p, 1e-12) ** 2
    return float(np.mean(ratio - np.log(ratio) - 1.0))


@dataclass(frozen=True)
class Scores:
    rmse: float
    mae: float
    r2: float
    n: int


def score(y_true: ArrayLike, y_pred: ArrayLike) -> Scores:
    t, p = _pair(y_true, y_pred)
    return Scores(rmse=rmse(t, p), mae=mae(t, p), r2=r2(t, p), n=int(t.size))
