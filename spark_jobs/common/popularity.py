"""Most-popular items per user, skipping the user's own items: the evaluation baseline and the fallback
list for users the model cannot serve.

Popularity of an item = its number of distinct users in the interactions given. The catalogue order is
most popular first, ties by ascending item index, so lists are deterministic.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, IntegerType

from spark_jobs.common.topk import top_k_excluding


class CatalogueMismatch(ValueError):
    """Interaction item indices fall outside the catalogue: inputs from different feature builds."""

    @classmethod
    def of(cls, outside: int, n_items: int, example: int) -> CatalogueMismatch:
        """The error for ``outside`` interacted item indices not in 0..n_items-1, ``example`` one of them."""
        return cls(
            f"{outside} item indices are outside the catalogue 0..{n_items - 1} "
            f"(e.g. {example}): interactions and items/ come from different feature builds"
        )


def item_popularity(interactions: DataFrame, n_items: int) -> np.ndarray:
    """Distinct users per item, float64 shape (n_items,); catalogue items without interactions get 0.

    Collects one row per interacted item (at most the catalogue size) to the driver.
    """
    counts = interactions.groupBy("item_idx").agg(F.countDistinct("user_idx").alias("users")).toPandas()
    return _popularity_vector(
        counts["item_idx"].to_numpy(dtype=np.int64), counts["users"].to_numpy(dtype=np.float64), n_items
    )


def item_popularity_of_pairs(user_idx: np.ndarray, item_idx: np.ndarray, n_items: int) -> np.ndarray:
    """:func:`item_popularity` of interactions already on the driver (two equal-length index arrays)."""
    pairs = np.unique(np.stack([np.asarray(item_idx, np.int64), np.asarray(user_idx, np.int64)]), axis=1)
    items, users = np.unique(pairs[0], return_counts=True)
    return _popularity_vector(items, users.astype(np.float64), n_items)


def _popularity_vector(items: np.ndarray, users: np.ndarray, n_items: int) -> np.ndarray:
    """Scatter per-item user counts into a (n_items,) vector; raises :class:`CatalogueMismatch`."""
    popularity = np.zeros(n_items, dtype=np.float64)
    if len(items):
        bad = items[(items < 0) | (items >= n_items)]
        if len(bad):
            raise CatalogueMismatch.of(len(bad), n_items, int(bad.min()))
        popularity[items] = users
    return popularity


def popularity_ranking(popularity: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Catalogue order: ``(order, ranked_scores)``, both shape (n_items,).

    ``order[p]`` is the item at position p (most popular first, ties by ascending item index) and
    ``ranked_scores[p]`` its popularity.
    """
    order = np.lexsort((np.arange(len(popularity)), -popularity)).astype(np.int32)
    return order, popularity[order]


def popular_top_k(
    order: np.ndarray, ranked_scores: np.ndarray, exclude: Sequence[np.ndarray], k: int
) -> List[np.ndarray]:
    """Top ``k`` of the popularity order per user, skipping that user's items (``exclude``): the rule in
    numpy, against which the jobs' Spark version (:func:`popular_lists`) is tested.

    A user excluding n items finds their top ``k`` within the first ``k + n`` positions of ``order``, so
    :func:`top_k_excluding` only scores that prefix (columns in order position, hence ties still by item
    index). Users are grouped by prefix length rounded up to a power of two, so one heavy user does not
    make a whole batch score the full catalogue. Returns one int32 array per user (shorter than ``k`` only
    when fewer eligible items exist).
    """
    n_items = len(order)
    position = np.empty(n_items, dtype=np.int64)
    position[order] = np.arange(n_items)
    out: List[np.ndarray] = [np.empty(0, dtype=np.int32)] * len(exclude)
    if n_items == 0 or not len(exclude):
        return out
    needed = np.array([k + len(items) for items in exclude], dtype=np.int64)
    buckets = np.minimum(2 ** np.ceil(np.log2(needed)).astype(np.int64), n_items)
    for prefix in np.unique(buckets):
        rows = np.nonzero(buckets == prefix)[0]
        # A read-only view repeated per row: top_k_excluding copies one row at a time.
        scores = np.broadcast_to(ranked_scores[:prefix], (len(rows), int(prefix)))
        excluded = []
        for row in rows:
            positions = position[np.asarray(exclude[row], dtype=np.int64)]
            excluded.append(positions[positions < prefix])
        chosen, _ = top_k_excluding(scores, excluded, k)
        for row, cols in zip(rows, chosen):
            out[row] = order[cols[cols >= 0]]
    return out


# ----------------------------------------------------------------------------- as Spark expressions


def popularity_order(spark: SparkSession, interactions: DataFrame, n_items: int) -> DataFrame:
    """The catalogue order of :func:`popularity_ranking`, computed by Spark: a one-row frame.

    Columns: ``order`` (array<int> of item indices 0..n_items-1, most distinct users first, ties by
    ascending index), ``with_users`` (items with at least one user), ``outside`` (interacted item
    indices not in the catalogue: more than 0 means the inputs do not belong together) and
    ``outside_min`` (the smallest of them, or null).
    """
    users = interactions.groupBy("item_idx").agg(F.countDistinct("user_idx").alias("users"))
    catalogue = spark.range(n_items).select(
        F.col("id").cast("int").alias("item_idx"), F.lit(True).alias("known")
    )
    items = catalogue.join(users, "item_idx", "full_outer")
    known = F.col("known").isNotNull()
    ranked = F.when(known, F.struct((-F.coalesce(F.col("users"), F.lit(0))).alias("rank"), F.col("item_idx")))
    return items.agg(
        F.transform(F.sort_array(F.collect_list(ranked)), lambda entry: entry["item_idx"]).alias("order"),
        F.count(F.when(known & F.col("users").isNotNull(), 1)).alias("with_users"),
        F.count(F.when(~known, 1)).alias("outside"),
        F.min(F.when(~known, F.col("item_idx"))).alias("outside_min"),
    )


def popular_lists(
    users: DataFrame, order: DataFrame, k: int, keys: Sequence[str] = ("user_idx",)
) -> DataFrame:
    """``(*keys, exclude: array<int> or null)`` -> ``(*keys, items: array<int>)`` (keys: the columns
    that name a user, kept as they are).

    Each user's list is the first ``k`` items of :func:`popularity_order`'s ``order`` that are not in
    ``exclude``, as :func:`popular_top_k` gives them: only the first ``k + len(exclude)`` positions can
    hold them, so that is all a row looks at. Shorter than ``k`` only when fewer eligible items exist.
    """
    exclude = F.coalesce(F.col("exclude"), F.array().cast(ArrayType(IntegerType())))
    prefix = F.slice(F.col("order"), 1, F.lit(k) + F.size(exclude))
    items = F.slice(F.array_except(prefix, exclude), 1, k)
    return users.crossJoin(F.broadcast(order.select("order"))).select(*keys, items.alias("items"))
