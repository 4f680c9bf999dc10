"""Chronological splits with a purge gap: no training target inside the evaluation rows."""

from __future__ import annotations

import pytest

from volforecast.splits import holdout_split, model_a_split, model_b_split


def test_model_a_split_trains_on_first_ninety_percent_less_purge():
    split = model_a_split(1000, 0.9, purge=5)
    assert (split.train.start, split.train.stop) == (0, 895)
    assert (split.evaluate.start, split.evaluate.stop) == (900, 1000)
    assert split.n_train == 895 and split.n_evaluate == 100 and split.purged == 5


def test_model_b_split_tests_on_last_thirty_rows():
    split = model_b_split(1000, 30, purge=5)
    assert (split.train.stop, split.evaluate.start, split.n_evaluate) == (965, 970, 30)


@pytest.mark.parametrize("horizon", [1, 5, 22])
def test_holdout_split_has_no_training_target_inside_evaluation_rows_when_purged(horizon):
    split = holdout_split(500, 50, purge=horizon)
    last_train = split.train.stop - 1
    # Row i's target uses returns of rows i+1..i+horizon: all must precede the first evaluated row.
    assert last_train + horizon < split.evaluate.start


def test_holdout_split_raises_when_rows_are_too_few():
    with pytest.raises(ValueError, match="cannot hold"):
        holdout_split(30, 30, purge=5)
