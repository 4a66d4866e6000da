"""Synthetic matrices, the recommenders-team split and ranking metrics for the train and quality benchmarks.

Lists come from the pipeline's ``rank_in_memory`` and metrics from ``spark_jobs.common.ranking``
(docs/contracts.md), so the benchmarks and the nightly job cannot disagree on what "precision@10" means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix

from spark_jobs.common.ranking import mean_metrics, user_metrics
from spark_jobs.common.recommend import rank_in_memory
from tools.datagen.clickstream import build_world


def stratified_split_mask(users: np.ndarray, ratio: float = 0.75, seed: int = 42) -> np.ndarray:
    """True for training rows of recommenders-team's ``python_stratified_split(filter_by="user")``:
    one ``RandomState(seed)`` uniform per row in row order, each user's rows ranked by their draw, a row
    kept for training when rank / user's rows <= ``ratio`` (``floor(ratio * n)`` of n rows)."""
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must be in (0, 1), got {ratio}")
    users = np.asarray(users)
    n = len(users)
    order = np.lexsort((np.random.RandomState(seed).rand(n), users))  # by user, then by draw
    starts = np.flatnonzero(np.r_[True, users[order][1:] != users[order][:-1]])
    counts = np.diff(np.r_[starts, n])
    train = np.empty(n, dtype=bool)
    train[order] = (np.arange(n) - np.repeat(starts, counts) + 1) / np.repeat(counts, counts) <= ratio
    return train


@dataclass(frozen=True)
class MatrixSpec:
    """A synthetic matrix; ``events`` draws give somewhat fewer non-zeros (repeats)."""

    name: str
    users: int
    items: int
    events: int
    groups: int = 20
    in_group_prob: float = 0.85
    zipf: float = 0.9
    seed: int = 42


def synthetic_matrix(spec: MatrixSpec, chunk: int = 2_000_000) -> csr_matrix:
    """(users x items) float32 event counts drawn from the clickstream generator's world model (log-normal
    activity, taste groups owning slices of a Zipf catalogue): each event is in the user's group with
    probability ``in_group_prob``, else from the global Zipf law."""
    world = build_world(spec.seed, spec.users, spec.items, spec.groups, spec.zipf)
    rng = np.random.default_rng([spec.seed, 7])
    matrix = csr_matrix((spec.users, spec.items), dtype=np.float32)
    for start in range(0, spec.events, chunk):
        n = min(chunk, spec.events - start)
        user = np.searchsorted(world.user_cdf, rng.random(n), side="right")
        item = world.rank_item[np.searchsorted(world.global_cdf, rng.random(n), side="right")]
        in_group, pick, group = rng.random(n) < spec.in_group_prob, rng.random(n), world.user_group[user]
        for g, (members, cdf) in enumerate(zip(world.slice_items, world.slice_cdf)):
            mask = in_group & (group == g)
            item[mask] = members[np.searchsorted(cdf, pick[mask], side="right")]
        cells = (user.astype(np.int32), item.astype(np.int32))
        matrix = matrix + coo_matrix((np.ones(n, dtype=np.float32), cells), matrix.shape).tocsr()
    matrix.sum_duplicates()
    return matrix.astype(np.float32)


def split_matrix(matrix: csr_matrix, train_ratio: float, seed: int) -> Tuple[csr_matrix, csr_matrix]:
    """``(train, test)``: each user's entries split with :func:`stratified_split_mask`."""
    coo = matrix.tocoo()
    mask = stratified_split_mask(coo.row, train_ratio, seed)
    train, test = (coo_matrix((coo.data[m], (coo.row[m], coo.col[m])), matrix.shape) for m in (mask, ~mask))
    return train.tocsr(), test.tocsr()


def users_with_items(matrix: csr_matrix) -> np.ndarray:
    return np.flatnonzero(np.diff(matrix.indptr)).astype(np.int64)


def top_k_lists(user_f: np.ndarray, item_f: np.ndarray, seen: csr_matrix, users: Sequence[int], k: int):
    """(users, k) int32 top-``k`` item indices (-1 padded), ``seen`` items excluded, NaN item rows never
    chosen: the pipeline's ``rank_in_memory``."""
    users = np.asarray(users, dtype=np.int64)
    ranked = rank_in_memory(np.asarray(user_f, np.float32)[users], item_f, seen[users], k)
    lists = np.full((len(users), k), -1, dtype=np.int32)
    lists[ranked["user_idx"].to_numpy(), ranked["rank"].to_numpy() - 1] = ranked["item_idx"].to_numpy()
    return lists


def popularity_factors(train: csr_matrix) -> Tuple[np.ndarray, np.ndarray]:
    """Popularity as a rank-1 factor model: score = the item's distinct training users."""
    popularity = np.bincount(train.indices, minlength=train.shape[1]).astype(np.float32)
    return np.ones((train.shape[0], 1), dtype=np.float32), popularity.reshape(-1, 1)


def metrics_at_k(lists: np.ndarray, relevant: List[np.ndarray], k: int) -> Dict[str, float]:
    """Mean precision, recall, NDCG and MAP at ``k`` over users, and ``ndcg_se`` (its standard error)."""
    per_user = [user_metrics([int(i) for i in row[:k] if i >= 0], r, k) for row, r in zip(lists, relevant)]
    ndcg = np.array([m["ndcg"] for m in per_user], dtype=np.float64)
    se = float(ndcg.std(ddof=1) / np.sqrt(len(ndcg))) if len(ndcg) > 1 else 0.0
    return {**mean_metrics(per_user), "ndcg_se": se}


def evaluate(user_f: np.ndarray, item_f: np.ndarray, train: csr_matrix, test: csr_matrix, k: int = 10,
             users: Optional[Sequence[int]] = None) -> Dict[str, float]:  # fmt: skip
    """Metrics at ``k`` on ``test`` (``users`` with test items, default all), training items excluded and
    candidates the items seen in training; with ``users`` and ``coverage`` (distinct items / items)."""
    users = users_with_items(test) if users is None else np.asarray(users, dtype=np.int64)
    users = users[np.diff(test.indptr)[users] > 0]
    items = np.array(item_f, dtype=np.float32, copy=True)
    items[np.diff(train.tocsc().indptr) == 0] = np.nan  # never recommended
    lists = top_k_lists(user_f, items, train, users, k)
    result = metrics_at_k(lists, [test.indices[test.indptr[u] : test.indptr[u + 1]] for u in users], k)
    coverage = len(np.unique(lists[lists >= 0])) / items.shape[0]
    return {**result, "users": float(len(users)), "coverage": coverage}
