"""Batch top-K recommendation from factors, the user's own interactions (the ones the caller passes)
excluded, in two places with one scoring function (:func:`score_block`):

- distributed over users (:func:`recommend_top_k`, for Spark ALS): item factors (n_items x f, float32)
  are broadcast and users are scored in blocks of ``block_size`` inside ``mapInPandas``, so memory per
  task is about block_size x n_items x 8 bytes;
- on the driver (:func:`rank_in_memory`), for a fit that ran there and has the factors in memory.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, List, Optional, Tuple

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StructField, StructType

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


def ranked_rows(user_idx: np.ndarray, top_items: np.ndarray, top_scores: np.ndarray) -> pd.DataFrame:
    """:func:`score_block`'s ``(b, k)`` arrays for the ``b`` users ``user_idx`` as ``RANKED`` rows, the
    padding (item -1: the catalogue ran out) left out."""
    k = top_items.shape[1]
    frame = pd.DataFrame(
        {
            "user_idx": np.repeat(user_idx.astype(np.int32), k),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), len(user_idx)),
            "item_idx": top_items.reshape(-1),
            "score": top_scores.reshape(-1),
        }
    )
    return frame[frame["item_idx"] >= 0]


def rank_in_memory(
    user_factors: np.ndarray, items: np.ndarray, seen: Any, k: int, threads: int = 1, block_size: int = 512
) -> pd.DataFrame:
    """:func:`recommend_top_k`'s rows for a model whose factors are on the driver (implicit), without
    Spark: every row of ``user_factors`` (n_users, f) scored against ``items`` (n_items, f) by
    :func:`score_block` in blocks of ``block_size`` users, each user's stored items in ``seen`` (CSR,
    n_users x n_items) excluded, ``threads`` blocks at a time (numpy's matmul and partition release the
    GIL; memory about threads x block_size x n_items x 12 bytes). A driver-side fit has the whole matrix
    in memory already; ranking there spares the factors' round trip through Spark and the Python workers'
    start-up.
    """
    n_users = user_factors.shape[0]

    def rank_block(start: int) -> pd.DataFrame:
        stop = min(start + block_size, n_users)
        seen_lists = [seen.indices[seen.indptr[row] : seen.indptr[row + 1]] for row in range(start, stop)]
        top_items, top_scores = score_block(user_factors[start:stop], items, seen_lists, k)
        return ranked_rows(np.arange(start, stop, dtype=np.int32), top_items, top_scores)

    starts = range(0, n_users, block_size)
    if threads > 1 and len(starts) > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            blocks = list(pool.map(rank_block, starts))  # in block order: the rows come out sorted
    else:
        blocks = [rank_block(start) for start in starts]
    if not blocks:
        empty = {name: np.empty(0, dtype=np.int32) for name in ("user_idx", "rank", "item_idx")}
        return pd.DataFrame({**empty, "score": np.empty(0, dtype=np.float64)})
    return pd.concat(blocks, ignore_index=True)


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
                yield ranked_rows(block["user_idx"].to_numpy(np.int32), top_items, top_scores)

    return users.mapInPandas(score_partitions, schema=RANKED)
