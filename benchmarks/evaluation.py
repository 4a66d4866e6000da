"""Top-K lists from factors (or popularity) and their ranking metrics, with the pipeline's own code.

Scoring and top-K go through :func:`spark_jobs.common.recommend.score_block` (what train_cf runs per
block of users: item rows that are NaN are never recommended, training items are excluded, ties go to
the lower item index) and metrics through :mod:`spark_jobs.common.ranking` (docs/contracts.md). So the
benchmarks and the nightly job cannot disagree on what "precision@10" means.

Matrices are ``scipy.sparse.csr_matrix`` of shape (n_users, n_items); a user's items are the column
indices of their row.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
from scipy.sparse import csr_matrix

from spark_jobs.common.ranking import mean_metrics, user_metrics
from spark_jobs.common.recommend import score_block


def row_items(matrix: csr_matrix, row: int) -> np.ndarray:
    """Column indices (int64) of the stored entries of ``row``."""
    return matrix.indices[matrix.indptr[row] : matrix.indptr[row + 1]].astype(np.int64)


def users_with_items(matrix: csr_matrix) -> np.ndarray:
    """Row indices (int64, ascending) that have at least one stored entry."""
    return np.flatnonzero(np.diff(matrix.indptr)).astype(np.int64)


def mask_items(item_factors: np.ndarray, allowed: Optional[np.ndarray]) -> np.ndarray:
    """A float32 copy of ``item_factors`` whose rows outside ``allowed`` (bool, shape (n_items,)) are NaN,
    which :func:`score_block` treats as "never recommend" (e.g. items absent from training)."""
    items = np.array(item_factors, dtype=np.float32, copy=True)
    if allowed is not None:
        items[~allowed] = np.nan
    return items


def top_k_lists(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    seen: csr_matrix,
    users: Sequence[int],
    k: int,
    block_size: int = 512,
) -> np.ndarray:
    """Top-``k`` item indices for ``users``, shape (len(users), k), -1 padded; ``seen`` items excluded.

    ``user_factors`` (n_users, f) and ``item_factors`` (n_items, f) are dense; NaN item rows are skipped.
    """
    users = np.asarray(users, dtype=np.int64)
    out = np.full((len(users), k), -1, dtype=np.int32)
    for start in range(0, len(users), block_size):
        block = users[start : start + block_size]
        exclude = [row_items(seen, int(u)) for u in block]
        items, _ = score_block(user_factors[block], item_factors, exclude, k)
        out[start : start + len(block)] = items
    return out


def popularity_factors(train: csr_matrix) -> tuple:
    """Popularity as a rank-1 factor model: user vectors of ones (n_users, 1) and item vectors holding
    each item's number of distinct training users (n_items, 1), so score = popularity, as the evaluate
    job's baseline ranks items (ties by lower item index)."""
    n_users, n_items = train.shape
    popularity = np.bincount(train.indices, minlength=n_items).astype(np.float32)
    return np.ones((n_users, 1), dtype=np.float32), popularity.reshape(-1, 1)


def metrics_at_k(lists: np.ndarray, relevant: List[np.ndarray], k: int) -> Dict[str, float]:
    """Mean precision, recall, NDCG and MAP at ``k`` (docs/contracts.md) over users, plus ``ndcg_se``: the
    standard error of the NDCG mean (sample standard deviation over users / sqrt(users); 0 for 1 user).

    Args:
        lists: (n_users, >= k) item indices, best first, -1 for "no item" (a miss).
        relevant: each user's held-out items (non-empty), aligned with ``lists``.
    """
    per_user = [
        user_metrics([int(i) for i in row[:k] if i >= 0], rel, k) for row, rel in zip(lists, relevant)
    ]
    result = dict(mean_metrics(per_user))
    ndcg = np.array([m["ndcg"] for m in per_user], dtype=np.float64)
    result["ndcg_se"] = float(ndcg.std(ddof=1) / np.sqrt(len(ndcg))) if len(ndcg) > 1 else 0.0
    return result


def evaluate_factors(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    train: csr_matrix,
    test: csr_matrix,
    k: int = 10,
    users: Optional[Sequence[int]] = None,
    allowed_items: Optional[np.ndarray] = None,
) -> Dict[str, float]:
    """Metrics at ``k`` of a factor model on ``test``, training items excluded.

    Evaluated users: ``users`` if given, else every user with at least one test item. Candidate items:
    ``allowed_items`` (bool mask) if given, else every item. Returns precision/recall/ndcg/map plus
    ``users`` (how many were evaluated) and ``coverage`` (distinct recommended items / n_items).
    """
    eval_users = users_with_items(test) if users is None else np.asarray(users, dtype=np.int64)
    eval_users = eval_users[np.diff(test.indptr)[eval_users] > 0]
    items = mask_items(item_factors, allowed_items)
    lists = top_k_lists(np.asarray(user_factors, dtype=np.float32), items, train, eval_users, k)
    relevant = [row_items(test, int(u)) for u in eval_users]
    result: Dict[str, float] = dict(metrics_at_k(lists, relevant, k))
    result["users"] = float(len(eval_users))
    result["coverage"] = float(len(np.unique(lists[lists >= 0])) / item_factors.shape[0])
    return result
