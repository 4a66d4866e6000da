"""evaluate: ranking metrics at K of the model's recommendations and of a popularity baseline, same split.

    spark-submit spark_jobs/evaluate.py --features URI --recommendations URI --output URI
        [--production URI] [--k K]

Reads the build_features folder (``train/``, ``holdout/``, ``items/``) and train_cf's evaluation lists
(long format: user_idx, rank, item_idx, ...; the model fitted on ``train/`` only). Evaluated users are
those with at least one holdout row; a user's model list is their recommendation rows ordered by rank,
cut at K (users without any count as zeros). The baseline recommends each evaluated user the K items
with the most distinct training users, ties by item index, excluding the user's own training items.
Metrics are defined in :mod:`spark_jobs.common.ranking` (docs/contracts.md); coverage = distinct items
in the evaluated users' lists / catalogue size (rows of ``items/``).

``--production`` (train_cf's ``production/`` folder) scores production's configuration, refitted by
train_cf on the same ``train/``, on the same users and held-out interactions, and records the per-user
paired difference (candidate minus production). Writes ``<output>/metrics.json``::

    {"k": 10, "users_evaluated": N,
     "model":      {"precision@10", "recall@10", "ndcg@10", "map@10", "coverage"},
     "popularity": {same keys},
     "production": {"status", "version", "ds", "reason", "params",
                    "model": {same keys}, "paired": {"users", "mean_difference": {...},
                    "standard_error": {...}, "users_better", "users_worse"}}}   # model/paired if scored
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a file by spark-submit: make the `spark_jobs` package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from typing import Any, Dict, List, Optional, Sequence, Tuple

from pyspark import StorageLevel
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DecimalType, IntegerType

from spark_jobs.common import fs, schemas
from spark_jobs.common import job_defaults as defaults
from spark_jobs.common.cli import JobError, new_parser, positive_int_arg, run_job
from spark_jobs.common.joblog import get_logger
from spark_jobs.common.popularity import CatalogueMismatch, popular_lists, popularity_order
from spark_jobs.common.production import SCORED_STATUSES
from spark_jobs.common.ranking import MEAN_METRICS, USER_METRICS
from spark_jobs.common.ranking_columns import user_metric_columns
from spark_jobs.common.session import build_spark
from spark_jobs.common.uris import join_uri

JOB = "evaluate"
log = get_logger(JOB)

# One top-K list per user, ``LISTS``: (user_idx int, items array<int>: item indices, best first, may be
# shorter than K). One row per evaluated user, ``PER_USER``: user_idx, items (empty if they got none)
# and its metrics (ranking.USER_METRICS, double).
LIST_TYPE = ArrayType(IntegerType())
# Exact, order-independent sums: double sums depend on partitioning, decimals do not, so reruns give
# bit-identical metrics. Per-user metrics are in [0, 1]; 20 integer digits is ample headroom.
_EXACT = DecimalType(38, 18)

# Columns evaluate needs from each input (types from schemas.*); extra columns are ignored.
_NEEDED = {
    "train": (schemas.INTERACTIONS, ("user_idx", "item_idx")),
    "holdout": (schemas.INTERACTIONS, ("user_idx", "item_idx")),
    "items": (schemas.ITEM_MAP, ("item_idx",)),
    "recommendations": (schemas.RECOMMENDATIONS, ("user_idx", "rank", "item_idx")),
}


# ---------------------------------------------------------------------------------------------- lists


def relevant_sets(holdout: DataFrame) -> DataFrame:
    """Holdout rows -> one row per evaluated user: ``(user_idx, relevant: array<int>)`` (distinct items)."""
    return holdout.groupBy("user_idx").agg(F.collect_set("item_idx").alias("relevant"))


def model_lists(recs: DataFrame, k: int) -> DataFrame:
    """Long-format recommendations -> ``LISTS``: each user's items by (rank, item_idx), the first ``k``."""
    ordered = F.sort_array(F.collect_list(F.struct(F.col("rank"), F.col("item_idx"))))
    items = F.transform(F.slice(ordered, 1, k), lambda entry: entry["item_idx"])
    return recs.groupBy("user_idx").agg(items.alias("items"))


def popularity_lists(users_train: DataFrame, order: DataFrame, k: int) -> DataFrame:
    """``(user_idx, train_items: array<int> or null)`` -> ``LISTS`` of the popularity baseline.

    ``order`` is :func:`spark_jobs.common.popularity.popularity_order`'s one-row frame.
    """
    return popular_lists(users_train.select("user_idx", F.col("train_items").alias("exclude")), order, k)


# -------------------------------------------------------------------------------------------- metrics


def score_lists(relevant: DataFrame, lists: DataFrame, k: int) -> DataFrame:
    """Per-user metrics (``PER_USER``) of ``lists`` against ``relevant``, for every evaluated user.

    Left join from the evaluated users: lists of other users are ignored, and an evaluated user without a
    list is scored on an empty one (all zeros). Spark expressions equal to ``ranking.user_metrics``.
    """
    joined = relevant.join(lists.select("user_idx", "items"), "user_idx", "left").select(
        "user_idx", "relevant", F.coalesce(F.col("items"), F.array().cast(LIST_TYPE)).alias("items")
    )
    metrics = user_metric_columns(F.col("items"), F.col("relevant"), k)
    return joined.select("user_idx", "items", *(metrics[name].alias(name) for name in USER_METRICS))


def summarise(per_user: DataFrame, n_items: int, k: int) -> Tuple[Dict[str, float], int, int]:
    """``PER_USER`` rows -> (metrics, users, users with a non-empty list).

    metrics: ``{"precision@k", "recall@k", "ndcg@k", "map@k", "coverage"}``: means over all rows, and
    distinct listed items / ``n_items``.
    """
    # One pass: a row per listed item (one row with a null item for an empty list); each user's
    # metrics count once, on their first row, and coverage counts the distinct items of all rows.
    rows = per_user.select(*USER_METRICS, F.posexplode_outer("items").alias("position", "item_idx"))
    first = F.col("position").isNull() | (F.col("position") == 0)
    totals = rows.agg(
        *(F.sum(F.when(first, F.col(name).cast(_EXACT))).alias(name) for name in USER_METRICS),
        F.sum(first.cast("long")).alias("users"),
        F.sum((F.col("position") == 0).cast("long")).alias("listed"),
        F.countDistinct("item_idx").alias("distinct_items"),
    ).first()
    users = int(totals["users"] or 0)
    if users == 0:
        raise JobError("no evaluated users")
    metrics = {f"{mean}@{k}": float(totals[name]) / users for mean, name in zip(MEAN_METRICS, USER_METRICS)}
    metrics["coverage"] = int(totals["distinct_items"]) / n_items
    return metrics, users, int(totals["listed"] or 0)


def paired_difference(candidate: DataFrame, production: DataFrame, k: int) -> Dict[str, Any]:
    """Per-user paired comparison of two ``PER_USER`` frames over the same evaluated users.

    For each metric, the mean over users of (candidate - production) and its standard error
    (sample standard deviation / sqrt(users)); ``users_better`` / ``users_worse`` count users whose
    NDCG@k is higher / lower under the candidate. Means are exact sums (decimal), as in :func:`summarise`.
    """
    joined = candidate.alias("c").join(production.alias("p"), "user_idx")
    diffs = {name: (F.col(f"c.{name}") - F.col(f"p.{name}")) for name in USER_METRICS}
    row = joined.agg(
        F.count(F.lit(1)).alias("users"),
        *(F.sum(diff.cast(_EXACT)).alias(f"sum_{name}") for name, diff in diffs.items()),
        *(F.stddev_samp(diff).alias(f"sd_{name}") for name, diff in diffs.items()),
        F.sum(F.when(diffs["ndcg"] > 0, 1).otherwise(0)).alias("better"),
        F.sum(F.when(diffs["ndcg"] < 0, 1).otherwise(0)).alias("worse"),
    ).first()
    users = int(row["users"])
    if users == 0:
        raise JobError("no evaluated user is common to the candidate and production")
    names = {name: f"{mean}@{k}" for mean, name in zip(MEAN_METRICS, USER_METRICS)}
    return {
        "users": users,
        "mean_difference": {names[n]: float(row[f"sum_{n}"]) / users for n in USER_METRICS},
        "standard_error": {
            names[n]: (float(row[f"sd_{n}"]) / users**0.5 if row[f"sd_{n}"] is not None else 0.0)
            for n in USER_METRICS
        },
        "users_better": int(row["better"]),
        "users_worse": int(row["worse"]),
    }


def evaluate(
    spark: SparkSession,
    train: DataFrame,
    holdout: DataFrame,
    recs: DataFrame,
    n_items: int,
    k: int,
    production_recs: Optional[DataFrame] = None,
) -> Dict[str, Any]:
    """Model and popularity-baseline metrics at ``k`` on one split, shaped as ``metrics.json``.

    Args:
        train, holdout: interactions with at least ``user_idx``, ``item_idx`` (int).
        recs: recommendations with at least ``user_idx``, ``rank``, ``item_idx``.
        n_items: catalogue size; item indices are 0..n_items-1.
        k: cut-off K.
        production_recs: production's lists for the same split (its configuration refitted on ``train``),
            or None. When given, the result has ``production_model`` (its metrics) and ``paired``
            (:func:`paired_difference`, candidate minus production, over the same users).
    """
    if k < 1:
        raise JobError(f"k must be >= 1, got {k}")
    if n_items < 1:
        raise JobError("the item catalogue is empty")

    relevant = relevant_sets(holdout).persist(StorageLevel.MEMORY_AND_DISK)
    cached: List[DataFrame] = [relevant]
    try:
        n_users = relevant.count()
        if n_users == 0:
            raise JobError("the holdout is empty: no user to evaluate")
        log.info(
            "evaluating %d users with held-out items at k=%d over %d catalogue items", n_users, k, n_items
        )

        model = score_lists(relevant, model_lists(recs, k), k).persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(model)
        model_metrics, _, listed = summarise(model, n_items, k)
        log.info(
            "model: %d/%d evaluated users have recommendations; %s", listed, n_users, _fmt(model_metrics)
        )

        result: Dict[str, Any] = {}
        if production_recs is not None:
            production = score_lists(relevant, model_lists(production_recs, k), k)
            production = production.persist(StorageLevel.MEMORY_AND_DISK)
            cached.append(production)
            result["production_model"], _, listed = summarise(production, n_items, k)
            result["paired"] = paired_difference(model, production, k)
            log.info(
                "production: %d/%d users listed; %s; paired ndcg@%d difference %+.4f (se %.4f)",
                listed,
                n_users,
                _fmt(result["production_model"]),
                k,
                result["paired"]["mean_difference"][f"ndcg@{k}"],
                result["paired"]["standard_error"][f"ndcg@{k}"],
            )

        order = popularity_order(spark, train, n_items).localCheckpoint(eager=False)
        checks = order.select("with_users", "outside", "outside_min").first()
        if checks["outside"]:
            mismatch = CatalogueMismatch.of(checks["outside"], n_items, checks["outside_min"])
            raise JobError(f"training {mismatch}")
        log.info("popularity: %d of %d items have training users", checks["with_users"], n_items)
        users = relevant.select("user_idx")
        train_items = (
            train.join(users, "user_idx", "left_semi")
            .groupBy("user_idx")
            .agg(F.collect_set("item_idx").alias("train_items"))
        )
        users_train = users.join(train_items, "user_idx", "left")  # no training rows: nothing to exclude
        baseline = score_lists(relevant, popularity_lists(users_train, order, k), k)
        baseline = baseline.persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(baseline)
        baseline_metrics, _, listed = summarise(baseline, n_items, k)
        log.info("popularity: %d/%d users got a list; %s", listed, n_users, _fmt(baseline_metrics))
    finally:
        for frame in cached:
            frame.unpersist()

    return {
        "k": k,
        "model": model_metrics,
        "popularity": baseline_metrics,
        "users_evaluated": n_users,
        **result,
    }


def _fmt(metrics: Dict[str, float]) -> str:
    return ", ".join(f"{name}={value:.4f}" for name, value in metrics.items())


# ------------------------------------------------------------------------------------------------ I/O


def read_input(spark: SparkSession, uri: str, name: str) -> DataFrame:
    """Read one input's Parquet and keep the columns evaluate needs, cast to the contract types.

    Raises :class:`JobError` if it is missing, unreadable as Parquet, or lacks a needed column.
    """
    schema, columns = _NEEDED[name]
    if not fs.exists(spark, uri):
        raise JobError(f"{name} not found at {uri}")
    try:
        frame = spark.read.parquet(uri)
    except AnalysisException as exc:  # e.g. a folder with no Parquet files: no schema to infer
        raise JobError(f"cannot read {name} at {uri} as Parquet: {str(exc).splitlines()[0]}") from None
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise JobError(
            f"{name} at {uri} lacks column(s) {', '.join(missing)}; has {', '.join(frame.columns)}"
        )
    return frame.select(*(F.col(column).cast(schema[column].dataType).alias(column) for column in columns))


def count_rows(frames: Dict[str, DataFrame]) -> Dict[str, int]:
    """Rows of each frame, counted in one Spark job (a union of their names) instead of one per frame."""
    labelled = [frame.select(F.lit(name).alias("input")) for name, frame in frames.items()]
    union = labelled[0]
    for frame in labelled[1:]:
        union = union.unionByName(frame)
    counted = {row["input"]: int(row["count"]) for row in union.groupBy("input").count().collect()}
    return {name: counted.get(name, 0) for name in frames}


def read_production(spark: SparkSession, production_uri: str) -> Tuple[Dict[str, Any], Optional[str]]:
    """train_cf's ``production.json`` under ``production_uri`` and the lists to score (None: none to score).

    Raises :class:`JobError` when the description is missing or names lists that do not exist.
    """
    doc_uri = join_uri(production_uri, "production.json")
    if not fs.exists(spark, doc_uri):
        raise JobError(f"no production description at {doc_uri}: train_cf writes it on every run")
    doc = fs.read_json(spark, doc_uri)
    if doc.get("status") not in SCORED_STATUSES:
        return doc, None
    lists = doc.get("recommendations")
    if not lists or not fs.exists(spark, lists):
        raise JobError(f"production status {doc.get('status')!r} names lists at {lists!r}, which are missing")
    return doc, lists


def run(
    spark: SparkSession,
    features_uri: str,
    recs_uri: str,
    output_uri: str,
    k: int = defaults.EVALUATION_K,
    production_uri: Optional[str] = None,
) -> Dict[str, Any]:
    """Evaluate ``recs_uri`` against the split under ``features_uri``; write ``<output_uri>/metrics.json``.

    With ``production_uri`` (train_cf's ``production/`` folder), production's configuration refitted on the
    same training split is scored beside the candidate and ``metrics.json`` gets a ``production`` block:
    train_cf's description (status, version, ds, reason) plus, when scored, ``model`` (its metrics) and
    ``paired`` (candidate minus production per user). Returns the metrics record that was written.
    """
    uris = {
        "train": join_uri(features_uri, "train"),
        "holdout": join_uri(features_uri, "holdout"),
        "items": join_uri(features_uri, "items"),
        "recommendations": recs_uri,
    }
    missing = [f"{name} ({uri})" for name, uri in uris.items() if not fs.exists(spark, uri)]
    if missing:
        raise JobError(f"missing input(s): {'; '.join(missing)}")
    frames = {name: read_input(spark, uri, name) for name, uri in uris.items()}
    production_doc, production_lists = (None, None)
    if production_uri:
        production_doc, production_lists = read_production(spark, production_uri)
    production_recs = (
        read_input(spark, production_lists, "recommendations") if production_lists is not None else None
    )
    counts = count_rows(frames)
    for name, uri in uris.items():
        log.info("read %d %s rows from %s", counts[name], name, uri)
    if counts["holdout"] == 0:
        raise JobError(f"the holdout at {uris['holdout']} is empty: nothing to evaluate")
    if counts["items"] == 0:
        raise JobError(f"the item catalogue at {uris['items']} is empty")
    if counts["recommendations"] == 0:
        raise JobError(f"no recommendations at {recs_uri}: the training step produced nothing")

    metrics = evaluate(
        spark,
        frames["train"],
        frames["holdout"],
        frames["recommendations"],
        counts["items"],
        k,
        production_recs,
    )
    if production_doc is not None:
        block = {key: production_doc.get(key) for key in ("status", "version", "ds", "reason", "params")}
        if "production_model" in metrics:
            block["model"] = metrics.pop("production_model")
            block["paired"] = metrics.pop("paired")
        metrics["production"] = block
    metrics_uri = join_uri(output_uri, "metrics.json")
    fs.write_json(spark, metrics_uri, metrics)
    log.info("wrote metrics of %d users to %s", metrics["users_evaluated"], metrics_uri)
    return metrics


def parse_args(argv: Optional[Sequence[str]] = None):
    parser = new_parser(JOB, __doc__.split("\n\n")[0])
    parser.add_argument(
        "--features", required=True, help="build_features output URI (train/, holdout/, items/ inside)"
    )
    parser.add_argument("--recommendations", required=True, help="train_cf recommendations Parquet URI")
    parser.add_argument("--output", required=True, help="output folder URI; metrics.json is written inside")
    parser.add_argument(
        "--production",
        default=None,
        help="train_cf's production/ folder: score production's configuration beside the candidate",
    )
    parser.add_argument(
        "--k", type=positive_int_arg, default=defaults.EVALUATION_K, help="cut-off K of the metrics"
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    spark = build_spark(JOB)
    run(spark, args.features, args.recommendations, args.output, args.k, args.production)


if __name__ == "__main__":
    run_job(JOB, main)
