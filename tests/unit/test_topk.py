"""Deterministic top-K with exclusions."""

from __future__ import annotations

import numpy as np
import pytest

from spark_jobs.common.topk import top_k_excluding

pytestmark = pytest.mark.unit


def test_best_first_with_ties_by_lower_index():
    scores = np.array([[1.0, 3.0, 3.0, 2.0, 0.0], [5.0, 5.0, 5.0, 5.0, 5.0]])
    items, values = top_k_excluding(scores, [np.array([1]), np.array([], dtype=np.int64)], 3)
    assert items.tolist() == [[2, 3, 0], [0, 1, 2]]
    assert values.tolist() == [[3.0, 2.0, 1.0], [5.0, 5.0, 5.0]]


def test_rows_that_run_out_are_padded():
    scores = np.array([[1.0, 2.0, 3.0]])
    items, values = top_k_excluding(scores, [np.array([0, 2])], 3)
    assert items.tolist() == [[1, -1, -1]]
    assert values[0, 0] == 2.0 and np.isneginf(values[0, 1:]).all()


def test_nan_is_never_chosen_and_inf_is_best():
    scores = np.array([[np.nan, 1.0, np.inf, 0.5]])
    items, _ = top_k_excluding(scores, [np.array([], dtype=np.int64)], 4)
    assert items.tolist() == [[2, 1, 3, -1]]
    # Never, whatever the row: NaN scattered anywhere (fixed seed), a row of NaN only, exclusions too.
    rng = np.random.default_rng(3)
    many = rng.normal(size=(30, 12))
    many[rng.random(many.shape) < 0.3] = np.nan
    many[0] = np.nan
    exclude = [np.array([row % 12], dtype=np.int64) for row in range(30)]
    chosen, values = top_k_excluding(many, exclude, 12)
    for row, (picked, got) in enumerate(zip(chosen, values)):
        listed = picked[picked >= 0]
        assert not np.isnan(many[row, listed]).any() and not np.isnan(got).any(), row
        eligible = ~np.isnan(many[row])
        eligible[exclude[row]] = False
        assert sorted(listed.tolist()) == np.nonzero(eligible)[0].tolist(), row  # every other item listed
    assert (chosen[0] == -1).all()
