"""benchmarks.ml.stratified_split_mask: the recommenders-team protocol's per-user split, exactly."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.ml import stratified_split_mask

pytestmark = pytest.mark.unit


def test_each_user_keeps_floor_of_75_percent_for_training():
    # Users with 4, 10, 20, 1 and 3 rows: floor(0.75 n) = 3, 7, 15, 0, 2 training rows.
    sizes = {"a": 4, "b": 10, "c": 20, "d": 1, "e": 3}
    users = np.array([u for u, n in sizes.items() for _ in range(n)])
    train = stratified_split_mask(users, ratio=0.75, seed=42)
    kept = {u: int(train[users == u].sum()) for u in sizes}
    assert kept == {"a": 3, "b": 7, "c": 15, "d": 0, "e": 2}
    assert int(train.sum()) == 27 and len(train) == 38


def test_same_seed_same_split_other_seed_other_split():
    users = np.repeat(np.arange(50), 8)
    first = stratified_split_mask(users, 0.75, seed=42)
    assert np.array_equal(first, stratified_split_mask(users, 0.75, seed=42))
    assert not np.array_equal(first, stratified_split_mask(users, 0.75, seed=7))


def test_rows_get_the_draws_of_numpy_random_seed_in_row_order():
    # The two rows of user 0 get draws 0 and 2, those of user 1 draws 1 and 3 (row order); each user
    # keeps for training the row with the smaller draw (1 of 2 rows at ratio 0.5).
    users = np.array([0, 1, 0, 1])
    np.random.seed(3)
    draws = np.random.rand(4)
    expected = np.array([draws[0] < draws[2], draws[1] < draws[3], draws[2] < draws[0], draws[3] < draws[1]])
    assert stratified_split_mask(users, ratio=0.5, seed=3).tolist() == expected.tolist()


def test_train_and_test_rows_partition_the_rows():
    users = np.array([3, 1, 3, 3, 1, 2, 3, 1, 2, 2])
    train = stratified_split_mask(users, 0.75, seed=1)
    # user 3: 4 rows -> 3 train; user 1: 3 rows -> 2; user 2: 3 rows -> 2.
    assert sorted(users[train].tolist()) == [1, 1, 2, 2, 3, 3, 3]
    assert sorted(users[~train].tolist()) == [1, 2, 3]


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.5, 1.5])
def test_ratio_must_be_strictly_between_0_and_1(ratio):
    with pytest.raises(ValueError, match="ratio"):
        stratified_split_mask(np.array([1, 2]), ratio)
