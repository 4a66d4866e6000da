"""build_features: parsed events over a lookback window -> confidence matrix, id maps and a time-based split.

    spark-submit spark_jobs/build_features.py --events URI --run-date YYYY-MM-DD --output URI
        [--lookback-days 30] [--half-life-days 14] [--weights view=1,click=2,add_to_cart=4,purchase=8]
        [--min-user-items 2] [--min-item-users 2] [--holdout-fraction 0.2] [--min-items-for-holdout 3]

Reads ``<events>/dt=YYYY-MM-DD`` for each day of the window that exists. Each event gets a weight (its
type's weight; a rating weighs its value times ``--rating-weight``) decayed by its age at the end of the
run date (half-life in days; 0 disables decay). One confidence per (user, item) = sum of decayed weights.
Users and items below minimum support are removed until both hold (k-core). Users and items get
contiguous indices (ordered by id). Each user with enough items has their latest interactions held out.

Writes under ``--output`` (overwritten): ``train/``, ``holdout/`` (user_idx, item_idx, confidence,
last_ts), ``users/`` (user_idx, user_id), ``items/`` (item_idx, item_id), ``window/`` (user_id, item_id:
every pair of the window before minimum support), ``manifest.json`` (counts).
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a file by spark-submit: make the `spark_jobs` package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import datetime as dt
import math
from typing import Dict, List, Optional, Sequence, Tuple

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from spark_jobs.common import fs
from spark_jobs.common.cli import (
    JobError,
    date_arg,
    new_parser,
    non_negative_float_arg,
    positive_int_arg,
    ratio_arg,
    run_job,
)
from spark_jobs.common.events import EVENT_TYPES
from spark_jobs.common.joblog import get_logger
from spark_jobs.common.session import build_spark
from spark_jobs.common.uris import dt_partition, join_uri, lookback_days

JOB = "build_features"
log = get_logger(JOB)

# Stronger intent weighs more: view < click < add_to_cart < purchase. Ratings weigh their value.
DEFAULT_WEIGHTS = {"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 8.0}
MAX_SUPPORT_ROUNDS = 20


def parse_weights(text: str) -> Dict[str, float]:
    """``"view=1,click=2"`` -> ``{"view": 1.0, "click": 2.0}``, over DEFAULT_WEIGHTS; weights must be > 0."""
    weights = dict(DEFAULT_WEIGHTS)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in DEFAULT_WEIGHTS:
            raise argparse.ArgumentTypeError(
                f"bad weight {part!r}: expected NAME=NUMBER with NAME in {sorted(DEFAULT_WEIGHTS)}"
            )
        try:
            weight = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad weight {part!r}: {value!r} is not a number") from None
        if not weight > 0 or not math.isfinite(weight):
            raise argparse.ArgumentTypeError(f"bad weight {part!r}: must be a positive number")
        weights[name] = weight
    return weights


def dedupe_events(events: DataFrame) -> DataFrame:
    """One row per event_id across the window (a replayed day may repeat events); earliest copy wins."""
    first = Window.partitionBy("event_id").orderBy("event_ts", "user_id", "item_id", "event_type")
    return events.withColumn("_n", F.row_number().over(first)).where(F.col("_n") == 1).drop("_n")


def weight_events(
    events: DataFrame,
    weights: Dict[str, float],
    rating_weight: float,
    half_life_days: float,
    reference: dt.datetime,
) -> DataFrame:
    """Add ``weight`` = type weight x time decay.

    Decay is ``0.5 ** (age_days / half_life_days)`` with age measured from ``reference`` (UTC) back
    to the event and floored at 0 (events after the reference are not boosted); ``half_life_days == 0``
    means no decay.
    """
    type_weight = F.when(F.col("event_type") == "rating", F.col("value") * F.lit(rating_weight))
    for name, weight in weights.items():
        type_weight = type_weight.when(F.col("event_type") == name, F.lit(weight))
    if half_life_days > 0:
        # The reference as epoch seconds computed in Python: F.lit(datetime) would apply the local zone.
        reference_s = (reference - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)).total_seconds()
        age_days = (F.lit(reference_s) - F.col("event_ts").cast("double")) / 86400.0
        decay = F.pow(F.lit(0.5), F.greatest(age_days, F.lit(0.0)) / F.lit(half_life_days))
    else:
        decay = F.lit(1.0)
    return events.withColumn("weight", type_weight.otherwise(F.lit(0.0)) * decay)


def aggregate_pairs(weighted: DataFrame) -> DataFrame:
    """One row per (user_id, item_id): confidence = sum of weights, last_ts = latest event, n_events."""
    return (
        weighted.groupBy("user_id", "item_id")
        .agg(
            F.sum("weight").alias("confidence"),
            F.max("event_ts").alias("last_ts"),
            F.count(F.lit(1)).alias("n_events"),
        )
        .where(F.col("confidence") > 0)
    )


def apply_min_support(
    pairs: DataFrame, min_user_items: int, min_item_users: int, max_rounds: int = MAX_SUPPORT_ROUNDS
) -> Tuple[DataFrame, int]:
    """Drop items with fewer than ``min_item_users`` users and users with fewer than ``min_user_items``
    items, repeatedly, until both hold for every remaining pair (a k-core). Returns (pairs, rounds).
    """
    current = pairs
    size = current.count()
    for round_number in range(1, max_rounds + 1):
        items = current.groupBy("item_id").count().where(F.col("count") >= min_item_users).select("item_id")
        current = current.join(items, "item_id", "left_semi")
        users = current.groupBy("user_id").count().where(F.col("count") >= min_user_items).select("user_id")
        current = current.join(users, "user_id", "left_semi").localCheckpoint()
        new_size = current.count()
        if new_size == size:
            return current, round_number
        size = new_size
    return current, max_rounds


def index_ids(spark: SparkSession, pairs: DataFrame, column: str, index_column: str) -> DataFrame:
    """Contiguous indices 0..n-1 for the distinct values of ``column``, in ascending id order."""
    ordered = pairs.select(column).distinct().orderBy(column).rdd.map(lambda row: row[0]).zipWithIndex()
    schema = StructType(
        [StructField(index_column, IntegerType(), False), StructField(column, StringType(), False)]
    )
    return spark.createDataFrame(ordered.map(lambda pair: (int(pair[1]), pair[0])), schema)


def split_holdout(indexed: DataFrame, holdout_fraction: float, min_items_for_holdout: int) -> DataFrame:
    """Add boolean ``is_holdout``: each user's latest ``max(1, floor(n * fraction))`` items are held out.

    Only users with at least ``min_items_for_holdout`` items get a holdout, and at least one item always
    stays in training. "Latest" orders by last_ts descending, then item_idx ascending (deterministic).
    """
    per_user = Window.partitionBy("user_idx")
    latest_first = per_user.orderBy(F.col("last_ts").desc(), F.col("item_idx").asc())
    n_items = F.count(F.lit(1)).over(per_user)
    n_holdout = F.when(
        n_items >= min_items_for_holdout,
        F.least(F.greatest(F.floor(n_items * F.lit(holdout_fraction)), F.lit(1)), n_items - 1),
    ).otherwise(F.lit(0))
    return indexed.withColumn("is_holdout", F.row_number().over(latest_first) <= n_holdout)


def existing_partitions(
    spark: SparkSession, events_uri: str, days: List[dt.date]
) -> Tuple[List[str], List[str]]:
    """(existing, missing) ``dt=`` folders of ``events_uri`` for ``days``."""
    existing, missing = [], []
    for day in days:
        uri = dt_partition(events_uri, day)
        (existing if fs.exists(spark, uri) else missing).append(uri)
    return existing, missing


def run(
    spark: SparkSession,
    events_uri: str,
    run_date: dt.date,
    output_uri: str,
    lookback: int = 30,
    half_life_days: float = 14.0,
    weights: Optional[Dict[str, float]] = None,
    rating_weight: float = 1.0,
    min_user_items: int = 2,
    min_item_users: int = 2,
    holdout_fraction: float = 0.2,
    min_items_for_holdout: int = 3,
) -> Dict[str, object]:
    """Build the features for ``run_date`` and write them under ``output_uri``; returns the manifest."""
    weights = weights or dict(DEFAULT_WEIGHTS)
    days = lookback_days(run_date, lookback)
    paths, missing = existing_partitions(spark, events_uri, days)
    if not paths:
        raise JobError(
            f"no parsed events under {events_uri} for {days[0]}..{days[-1]} (lookback {lookback} d)"
        )
    if missing:
        log.warning("%d of %d days missing in the window, e.g. %s", len(missing), len(days), missing[-1])

    raw = spark.read.parquet(*paths)
    events = dedupe_events(raw).persist(StorageLevel.MEMORY_AND_DISK)
    events_read = raw.count()
    by_type = {row["event_type"]: int(row["count"]) for row in events.groupBy("event_type").count().collect()}
    events_kept = sum(by_type.values())
    log.info(
        "read %d events from %d partitions (%d duplicates across days dropped)",
        events_read,
        len(paths),
        events_read - events_kept,
    )

    reference = dt.datetime.combine(run_date + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)
    pairs_all = aggregate_pairs(weight_events(events, weights, rating_weight, half_life_days, reference))
    pairs_all = pairs_all.localCheckpoint()
    pairs_before = pairs_all.count()
    pairs, rounds = apply_min_support(pairs_all, min_user_items, min_item_users)
    events.unpersist()
    n_pairs = pairs.count()
    if n_pairs == 0:
        raise JobError(
            f"no (user, item) pairs left after minimum support (users >= {min_user_items} items, "
            f"items >= {min_item_users} users) out of {pairs_before}: "
            "lower the thresholds or widen the window"
        )

    users = index_ids(spark, pairs, "user_id", "user_idx").localCheckpoint()
    items = index_ids(spark, pairs, "item_id", "item_idx").localCheckpoint()
    indexed = (
        pairs.join(users, "user_id")
        .join(items, "item_id")
        .select(
            F.col("user_idx").cast("int"),
            F.col("item_idx").cast("int"),
            F.col("confidence").cast("double"),
            "last_ts",
        )
    )
    split = split_holdout(indexed, holdout_fraction, min_items_for_holdout).localCheckpoint()
    train = split.where(~F.col("is_holdout")).drop("is_holdout")
    holdout = split.where(F.col("is_holdout")).drop("is_holdout")

    # Every (user, item) of the window, before minimum support: train_cf excludes these from the served
    # lists and gives the users that support dropped a popularity list.
    pairs_all.select("user_id", "item_id").write.mode("overwrite").parquet(join_uri(output_uri, "window"))
    train.write.mode("overwrite").parquet(join_uri(output_uri, "train"))
    holdout.write.mode("overwrite").parquet(join_uri(output_uri, "holdout"))
    users.write.mode("overwrite").parquet(join_uri(output_uri, "users"))
    items.write.mode("overwrite").parquet(join_uri(output_uri, "items"))

    n_train, n_holdout = train.count(), holdout.count()
    n_users, n_items = users.count(), items.count()
    manifest = {
        "run_date": run_date.isoformat(),
        "events_uri": events_uri,
        "window": {"first_day": days[0].isoformat(), "last_day": days[-1].isoformat(), "days": lookback},
        "partitions_read": paths,
        "partitions_missing": missing,
        "events_read": events_read,
        "duplicate_events_dropped": events_read - events_kept,
        "events_by_type": {name: by_type.get(name, 0) for name in EVENT_TYPES},
        "pairs_before_support": pairs_before,
        "pairs": n_pairs,
        "window_users": pairs_all.select("user_id").distinct().count(),
        "support_rounds": rounds,
        "users": n_users,
        "items": n_items,
        "train_nnz": n_train,
        "holdout_nnz": n_holdout,
        "holdout_users": holdout.select("user_idx").distinct().count(),
        "density": n_pairs / float(n_users * n_items),
        "params": {
            "half_life_days": half_life_days,
            "weights": weights,
            "rating_weight": rating_weight,
            "min_user_items": min_user_items,
            "min_item_users": min_item_users,
            "holdout_fraction": holdout_fraction,
            "min_items_for_holdout": min_items_for_holdout,
        },
    }
    fs.write_json(spark, join_uri(output_uri, "manifest.json"), manifest)
    log.info(
        "wrote %d users x %d items: %d train + %d holdout pairs (%d before support, %d rounds) to %s",
        n_users,
        n_items,
        n_train,
        n_holdout,
        pairs_before,
        rounds,
        output_uri,
    )
    return manifest


def parse_args(argv: Optional[Sequence[str]] = None):
    parser = new_parser(JOB, __doc__.split("\n\n")[0])
    parser.add_argument(
        "--events", required=True, help="parsed-events root URI holding dt=YYYY-MM-DD folders"
    )
    parser.add_argument("--run-date", required=True, type=date_arg, help="last day of the window (UTC)")
    parser.add_argument("--output", required=True, help="features output URI (overwritten)")
    parser.add_argument("--lookback-days", type=positive_int_arg, default=30, help="window length in days")
    parser.add_argument(
        "--half-life-days", type=non_negative_float_arg, default=14.0, help="time-decay half-life; 0 = none"
    )
    parser.add_argument(
        "--weights", type=parse_weights, default=dict(DEFAULT_WEIGHTS), help="event-type weights NAME=W,..."
    )
    parser.add_argument(
        "--rating-weight", type=non_negative_float_arg, default=1.0, help="a rating weighs value x this"
    )
    parser.add_argument(
        "--min-user-items", type=positive_int_arg, default=2, help="min distinct items per user"
    )
    parser.add_argument(
        "--min-item-users", type=positive_int_arg, default=2, help="min distinct users per item"
    )
    parser.add_argument(
        "--holdout-fraction", type=ratio_arg, default=0.2, help="share of each user's latest items held out"
    )
    parser.add_argument(
        "--min-items-for-holdout", type=positive_int_arg, default=3, help="users with fewer get no holdout"
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    spark = build_spark(JOB)
    run(
        spark,
        args.events,
        args.run_date,
        args.output,
        lookback=args.lookback_days,
        half_life_days=args.half_life_days,
        weights=args.weights,
        rating_weight=args.rating_weight,
        min_user_items=args.min_user_items,
        min_item_users=args.min_item_users,
        holdout_fraction=args.holdout_fraction,
        min_items_for_holdout=args.min_items_for_holdout,
    )


if __name__ == "__main__":
    run_job(JOB, main)
