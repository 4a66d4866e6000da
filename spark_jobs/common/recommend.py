"""Batch top-K recommendation, distributed over users: from factor DataFrames, and by popularity.

Item factors (n_items x f, float32) are broadcast; users are scored in blocks of ``block_size`` inside
``mapInPandas`` so memory per task is about block_size x n_items x 8 bytes. The user's own interactions
(the ones the caller passes) are excluded.
"""

from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

import numpy as np
import pandas as pd
from pyspark.broadcast import Broadcast
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType

from spark_jobs.common.popularity import popular_top_k
from spark_jobs.common.topk import top_k_excluding

RANKED = StructType(
    [
        StructField("user_idx", IntegerType(), False),
        StructField("rank", IntegerType(), False),
        StructField("item_idx", IntegerType(), False),
        StructField("score", DoubleType(), False),
    ]
)


def item_matrix(item_factors: DataFrame, n_items: int) -> np.ndarray:
    """Dense (n_items, f) float32 matrix; rows of items without factors are NaN (never recommended)."""
    pdf = item_factors.toPandas()
    if pdf.empty:
        raise ValueError("the model has no item factors")
    dim = len(pdf["factors"].iloc[0])
    matrix = np.full((n_items, dim), np.nan, dtype=np.float32)
    matrix[pdf["item_idx"].to_numpy()] = np.stack(pdf["factors"].to_numpy()).astype(np.float32)
    return matrix


def score_block(
    user_factors: np.ndarray, items: np.ndarray, seen: List[np.ndarray], k: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Top-k for a block: ``user_factors`` (b, f), ``items`` (n_items, f), ``seen`` b index arrays."""
    scores = user_factors.astype(np.float32) @ items.T
    scores[:, np.isnan(items[:, 0])] = -np.inf
    return top_k_excluding(scores, seen, k)


def recommend_top_k(
    spark: SparkSession,
    user_factors: DataFrame,
    item_factors: DataFrame,
    train: DataFrame,
    n_items: int,
    k: int,
    block_size: int = 512,
    items_array: Optional[np.ndarray] = None,
) -> DataFrame:
    """(user_idx, rank, item_idx, score) rows, ``k`` per user (fewer if the catalogue runs out).

    ``items_array``: the item factors as a dense (n_items, f) float32 array, if the caller has them
    (a driver-side fit); otherwise they are collected from ``item_factors``.
    """
    matrix = item_matrix(item_factors, n_items) if items_array is None else items_array
    broadcast_items = spark.sparkContext.broadcast(matrix)
    seen = train.groupBy("user_idx").agg(F.collect_list("item_idx").alias("seen"))
    users = user_factors.join(seen, "user_idx", "left")

    def score_partitions(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        items = broadcast_items.value
        for batch in batches:
            for start in range(0, len(batch), block_size):
                block = batch.iloc[start : start + block_size]
                factors = np.stack(block["factors"].to_numpy())
                seen_lists = [np.asarray(s if s is not None else [], dtype=np.int64) for s in block["seen"]]
                top_items, top_scores = score_block(factors, items, seen_lists, k)
                n = len(block)
                frame = pd.DataFrame(
                    {
                        "user_idx": np.repeat(block["user_idx"].to_numpy(np.int32), k),
                        "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), n),
                        "item_idx": top_items.reshape(-1),
                        "score": top_scores.reshape(-1),
                    }
                )
                yield frame[frame["item_idx"] >= 0]

    return users.mapInPandas(score_partitions, schema=RANKED)


POPULAR = StructType(
    [
        StructField("user_id", StringType(), False),
        StructField("user_idx", IntegerType(), True),
        StructField("rank", IntegerType(), False),
        StructField("item_idx", IntegerType(), False),
        StructField("score", DoubleType(), False),
    ]
)


def popularity_top_k(users: DataFrame, ranking: Broadcast, k: int) -> DataFrame:
    """Popularity lists: ``users`` (user_id, user_idx or null, exclude: array<int> or null) ->
    (user_id, user_idx, rank, item_idx, score), ``k`` rows per user (fewer if the catalogue runs out).

    ``ranking`` broadcasts :func:`spark_jobs.common.popularity.popularity_ranking`'s arrays; score is the
    item's popularity.
    """

    def rank_partitions(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        order, ranked_scores = ranking.value
        popularity = np.empty(len(order), dtype=np.float64)
        popularity[order] = ranked_scores
        for batch in batches:
            exclude = [
                np.empty(0, dtype=np.int64) if items is None else np.asarray(items, dtype=np.int64)
                for items in batch["exclude"]
            ]
            lists = popular_top_k(order, ranked_scores, exclude, k)
            lengths = np.array([len(items) for items in lists], dtype=np.int64)
            chosen = np.concatenate(lists) if len(lists) else np.empty(0, dtype=np.int32)
            yield pd.DataFrame(
                {
                    "user_id": np.repeat(batch["user_id"].to_numpy(object), lengths),
                    "user_idx": pd.array(np.repeat(batch["user_idx"].to_numpy(), lengths), dtype="Int32"),
                    "rank": np.concatenate([np.arange(1, n + 1, dtype=np.int32) for n in lengths])
                    if len(lengths)
                    else np.empty(0, dtype=np.int32),
                    "item_idx": chosen.astype(np.int32),
                    "score": popularity[chosen],
                }
            )

    return users.select("user_id", "user_idx", "exclude").mapInPandas(rank_partitions, schema=POPULAR)
