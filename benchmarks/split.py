"""Per-user stratified random split, the protocol of recommenders-team/recommenders' benchmarks.

Their ``python_stratified_split(data, ratio=0.75, filter_by="user", seed=42)``
(``recommenders/datasets/python_splitters.py``) seeds NumPy's legacy global generator, draws one uniform
per row in row order, sorts rows by (user, draw), ranks each user's rows 1..n and puts a row in the
training set when ``rank / n <= ratio``. So a user with n rows keeps ``floor(ratio * n)`` of them for
training (3 of 4, 7 of 10, 15 of 20 at 0.75) and the rest are test rows. This module does the same with
``numpy.random.RandomState(seed)`` (the generator behind ``np.random.seed``), on arrays.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np


def stratified_split_mask(users: np.ndarray, ratio: float = 0.75, seed: int = 42) -> np.ndarray:
    """Boolean mask, True for training rows, of a per-user stratified random split.

    Args:
        users: user key of each row, shape (n,), any sortable dtype; rows are in their input order
            (which decides which random draw each row gets).
        ratio: share of each user's rows kept for training, in (0, 1).
        seed: seed of ``numpy.random.RandomState``.

    Returns:
        ``train`` mask, shape (n,): row i is a training row iff its rank among its user's rows (by
        random draw) divided by the user's row count is ``<= ratio``.
    """
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must be in (0, 1), got {ratio}")
    users = np.asarray(users)
    n = len(users)
    draws = np.random.RandomState(seed).rand(n)
    order = np.lexsort((draws, users))  # by user, then by draw
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    counts = np.diff(np.r_[starts, n])
    group_start = np.repeat(starts, counts)
    rank = np.arange(n) - group_start + 1  # 1-based rank within the user
    count = np.repeat(counts, counts)
    train = np.empty(n, dtype=bool)
    train[order] = (rank / count) <= ratio
    return train


def split_indices(users: np.ndarray, ratio: float = 0.75, seed: int = 42) -> Tuple[np.ndarray, np.ndarray]:
    """``(train_rows, test_rows)``: row indices (ascending) of :func:`stratified_split_mask`."""
    mask = stratified_split_mask(users, ratio, seed)
    return np.flatnonzero(mask), np.flatnonzero(~mask)
