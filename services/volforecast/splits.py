"""Chronological splits of the labeled rows with a purge gap. Pure functions.

The rows between a training block and the evaluation block after it are purged: their forward
target window reaches into the evaluation rows, so no training target overlaps what is scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Below this many labeled rows the out-of-fold blocks and the holdouts get too small to trust:
# the floor of a training set and of a walk-forward's first refit.
MIN_LABELED_ROWS = 500


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
