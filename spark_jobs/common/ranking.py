"""Ranking metrics at K with binary relevance: the one definition used everywhere (docs/contracts.md).

For one user with an ordered recommended list R (length <= K, best first) and a non-empty held-out set T:

- precision@K = |R∩T| / K                 (always K, even when |T| < K or R is shorter than K)
- recall@K    = |R∩T| / |T|
- NDCG@K      = DCG / IDCG, DCG = sum over hit ranks r of 1/log2(r + 1),
                IDCG = sum over r = 1..min(K, |T|) of 1/log2(r + 1)
- AP@K        = (sum over hit ranks r of precision@r) / min(K, |T|), precision@r = hits in top r / r
- MAP@K       = mean of AP@K over users

We define these ourselves on purpose: ``implicit.evaluation.ranking_metrics_at_k`` divides precision by
min(K, |T|), which flatters models on users with few held-out items.

Pure Python (no Spark, no numpy needed): the specification. The evaluate job computes the same numbers
with Spark expressions (:mod:`spark_jobs.common.ranking_columns`, checked against :func:`user_metrics`
bit for bit by property tests), so scoring needs no Python workers.
"""

from __future__ import annotations

import math
from typing import Collection, Dict, Iterable, Mapping, Optional, Sequence, Tuple

# Per-user metric names (user_metrics) and the aggregate names they become (mean_metrics).
USER_METRICS: Tuple[str, ...] = ("precision", "recall", "ndcg", "ap")
MEAN_METRICS: Tuple[str, ...] = ("precision", "recall", "ndcg", "map")


def discount(rank: int) -> float:
    """DCG's gain of a hit at ``rank`` (1-based): ``1 / log2(rank + 1)``."""
    return 1.0 / math.log2(rank + 1)


def ideal_dcg(n_relevant: int, k: int) -> float:
    """DCG of a perfect list: ``min(k, n_relevant)`` hits at ranks 1.. (0.0 when there are none)."""
    return sum(discount(rank) for rank in range(1, min(k, n_relevant) + 1))


def user_metrics(recommended: Sequence[int], relevant: Collection[int], k: int) -> Dict[str, float]:
    """Precision, recall, NDCG and AP at ``k`` for one user.

    Args:
        recommended: item indices, best first; only the first ``k`` count, and fewer than ``k`` is allowed
            (the missing positions are misses). An item repeated in the list counts as a hit once.
        relevant: the user's held-out item indices T (non-empty; duplicates ignored).
        k: cut-off K >= 1.

    Returns:
        ``{"precision", "recall", "ndcg", "ap"}``, each in [0, 1]; averaging ``ap`` over users gives MAP@K.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    targets = {int(item) for item in relevant}  # int(): numpy scalars from Arrow batches hash alike
    if not targets:
        raise ValueError("relevant must be non-empty: users without held-out items are not evaluated")

    hits = 0
    dcg = 0.0
    precision_sum = 0.0
    seen = set()
    for rank, raw_item in enumerate(list(recommended)[:k], start=1):
        item = int(raw_item)
        if item in targets and item not in seen:
            hits += 1
            dcg += discount(rank)
            precision_sum += hits / rank
        seen.add(item)

    n_ideal = min(k, len(targets))
    return {
        "precision": hits / k,
        "recall": hits / len(targets),
        "ndcg": dcg / ideal_dcg(len(targets), k),
        "ap": precision_sum / n_ideal,
    }


def mean_metrics(per_user: Iterable[Mapping[str, float]], n_users: Optional[int] = None) -> Dict[str, float]:
    """Average per-user metrics (from :func:`user_metrics`) into ``{"precision", "recall", "ndcg", "map"}``.

    Args:
        per_user: one mapping per user that got a list.
        n_users: the number of evaluated users, if larger than ``len(per_user)``: the users without any
            recommendations count as zeros (default: exactly the users given).
    """
    sums = dict.fromkeys(USER_METRICS, 0.0)
    count = 0
    for metrics in per_user:
        for name in USER_METRICS:
            sums[name] += float(metrics[name])
        count += 1
    total = count if n_users is None else n_users
    if total < count:
        raise ValueError(f"n_users={n_users} is less than the {count} users given")
    if total == 0:
        raise ValueError("no users to average over")
    return {mean: sums[name] / total for mean, name in zip(MEAN_METRICS, USER_METRICS)}
