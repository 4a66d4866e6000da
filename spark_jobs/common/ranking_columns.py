"""The ranking metrics of :mod:`spark_jobs.common.ranking` as Spark column expressions.

Same definitions, same arithmetic in the same order, so every value equals
:func:`spark_jobs.common.ranking.user_metrics` bit for bit (property-tested): the discounts and ideal
DCGs are computed once by the Python functions and enter the plan as literals, and sums run over the
list in rank order. Running natively keeps the evaluate job free of Python workers, whose start-up
(interpreter, pandas, pyarrow) cost more than the scoring itself.
"""

from __future__ import annotations

from typing import Dict

from pyspark.sql import Column
from pyspark.sql import functions as F

from spark_jobs.common.ranking import USER_METRICS, discount, ideal_dcg


def _doubles(values) -> Column:
    return F.array(*(F.lit(float(value)) for value in values))


def _sum(values: Column) -> Column:
    """Left-to-right sum of an ``array<double>``, starting at 0.0 (as Python's ``+=`` loop)."""
    return F.aggregate(values, F.lit(0.0), lambda total, value: total + value)


def _count(flags: Column) -> Column:
    """Sum of an ``array<int>`` of 0/1 flags."""
    return F.aggregate(flags, F.lit(0), lambda total, flag: total + flag)


def user_metric_columns(items: Column, relevant: Column, k: int) -> Dict[str, Column]:
    """``{"precision", "recall", "ndcg", "ap"}`` at ``k`` for one row's list and held-out set.

    Args:
        items: ``array<int>``, best first, not null (an empty list scores zeros); only the first ``k``
            count, and an item repeated in the list counts as a hit once.
        relevant: ``array<int>`` of the user's distinct held-out items, non-empty.
        k: cut-off K >= 1.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    listed = F.slice(items, 1, k)
    # 1 at a position holding a held-out item not already listed above it.
    hits = F.transform(
        listed,
        lambda item, i: F.when(
            F.array_contains(relevant, item) & ~F.array_contains(F.slice(listed, 1, i), item), 1
        ).otherwise(0),
    )
    hits_so_far = F.transform(hits, lambda _, i: _count(F.slice(hits, 1, i + 1)))
    discounts = _doubles(discount(rank) for rank in range(1, k + 1))
    dcg = _sum(
        F.transform(hits, lambda hit, i: F.when(hit == 1, F.element_at(discounts, i + 1)).otherwise(0.0))
    )
    precision_sum = _sum(
        F.transform(hits, lambda hit, i: F.when(hit == 1, hits_so_far[i] / (i + 1)).otherwise(0.0))
    )
    n_hits = _count(hits)
    n_relevant = F.size(relevant)
    n_ideal = F.least(F.lit(k), n_relevant)
    ideal = F.element_at(_doubles(ideal_dcg(n, k) for n in range(1, k + 1)), n_ideal)
    columns = {
        "precision": n_hits / F.lit(k),
        "recall": n_hits / n_relevant,
        "ndcg": dcg / ideal,
        "ap": precision_sum / n_ideal,
    }
    assert tuple(columns) == USER_METRICS
    return columns
