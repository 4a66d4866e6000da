"""build_features: parsed events over a lookback window -> confidence matrix, id maps and a time-based split.

    spark-submit spark_jobs/build_features.py --events URI --run-date YYYY-MM-DD --output URI
        [--lookback-days N] [--half-life-days D] [--weights view=1,click=2,add_to_cart=4,purchase=8]
        [--rating-weight W] [--min-user-items N] [--min-item-users N] [--holdout-fraction F]
        [--min-items-for-holdout N] [--min-window-share F] [--validation-fraction F]

Reads, for each day of the window, the attempt that ``<events>/dt=YYYY-MM-DD/_PUBLISHED.json`` names
(parse_logs publishes a day only when it passed its reject ratio); fails, naming the days, when fewer
than ``--min-window-share`` of the window's days are published. Each event gets a weight (its
type's weight; a rating weighs its value times ``--rating-weight``) decayed by its age at the end of the
run date (half-life in days; 0 disables decay). One confidence per (user, item) = sum of decayed weights.
Users and items below minimum support are removed until both hold (k-core). Users and items get
contiguous indices (ordered by id). Each user with enough items has their latest interactions held out.

With ``--validation-fraction F > 0`` (the tuning sweep's features), ``train/`` is split once more by the
same rule (:func:`split_holdout`): each user with at least ``--min-items-for-holdout`` training items has
their latest ``max(1, floor(n * F))`` training items in ``validation/holdout/``, the rest (at least one)
in ``validation/fit/``. So a user's validation items are no newer than their nightly holdout items and no
older than their fit items, and the nightly ``holdout/`` is in neither: tuning never sees what the nightly
quality gate scores on. F = 0 (the nightly) writes no ``validation/`` and removes a stale one.

Writes under ``--output`` (overwritten): ``train/``, ``holdout/`` (user_idx, item_idx, confidence,
last_ts), ``users/`` (user_idx, user_id), ``items/`` (item_idx, item_id), ``window/`` (user_id, item_id:
every pair of the window before minimum support), ``validation/fit/`` and ``validation/holdout/`` (same
columns as ``train/``; only when F > 0), ``manifest.json`` (counts; ``validation``: the validation split's
fraction and counts, or null).
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

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from spark_jobs.common import fs
from spark_jobs.common import job_defaults as defaults
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
from spark_jobs.common.published import day_state
from spark_jobs.common.session import build_spark
from spark_jobs.common.uris import dt_partition, join_uri, lookback_days

JOB = "build_features"
log = get_logger(JOB)

# Stronger intent weighs more: view < click < add_to_cart < purchase. Ratings weigh their value.
DEFAULT_WEIGHTS = {"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 8.0}
DEFAULT_RATING_WEIGHT = 1.0  # a rating weighs its value (stars) x this
DEFAULT_MIN_ITEMS_FOR_HOLDOUT = 3  # users with fewer items get no holdout (and no validation split)
MAX_SUPPORT_ROUNDS = 20
# Id maps up to this many rows are broadcast to the join with the pairs (a few MB of ids) instead of
# shuffling the pairs twice.
BROADCAST_IDS = 2_000_000


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


def rank_copies(events: DataFrame) -> DataFrame:
    """Add ``_copy``: 1 for the earliest copy of each event_id across the window (a replayed day may
    repeat events), 2, 3... for the later copies, ordered by (event_ts, user_id, item_id, event_type)."""
    first = Window.partitionBy("event_id").orderBy("event_ts", "user_id", "item_id", "event_type")
    return events.withColumn("_copy", F.row_number().over(first))


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
    pairs: DataFrame,
    min_user_items: int,
    min_item_users: int,
    max_rounds: int = MAX_SUPPORT_ROUNDS,
    size: Optional[int] = None,
) -> Tuple[DataFrame, int, int]:
    """Drop items with fewer than ``min_item_users`` users and users with fewer than ``min_user_items``
    items, repeatedly, until both hold for every remaining pair (a k-core).

    ``size``: the number of rows of ``pairs`` if already known (saves a count). Returns (pairs, rounds,
    rows); one count is run per round.
    """
    current = pairs
    size = pairs.count() if size is None else size
    for round_number in range(1, max_rounds + 1):
        items = current.groupBy("item_id").count().where(F.col("count") >= min_item_users).select("item_id")
        kept = current.join(items, "item_id", "left_semi")
        users = kept.groupBy("user_id").count().where(F.col("count") >= min_user_items).select("user_id")
        # Each round's rows are checkpointed by the count that checks convergence: the next round and the
        # caller start from them, and the plan does not grow by two joins and two aggregations a round
        # (with cache() instead, each later action took seconds to plan on MovieLens-100K).
        kept = kept.join(users, "user_id", "left_semi").localCheckpoint(eager=False)
        new_size = kept.count()
        current = kept
        if new_size == size:
            return current, round_number, new_size
        size = new_size
    return current, max_rounds, size


def index_ids(values: DataFrame, column: str, index_column: str) -> Tuple[DataFrame, int]:
    """Contiguous indices 0..n-1 for the distinct values of ``column``, in ascending id order.

    Returns ``(ids, n)``: ids is (index_column int, column string).
    Native and distributed: the sorted ids are range-partitioned, partition p's rows are numbered by
    ``monotonically_increasing_id`` (p << 33 plus the row's position in p), and p's offset is the number
    of ids in the partitions before it: one small collect of per-partition counts, no single-partition
    window and no Python over rows.
    """
    located = (
        values.select(column)
        .distinct()
        .orderBy(column)
        .select(
            column,
            F.spark_partition_id().alias("_part"),
            F.monotonically_increasing_id().alias("_row"),
        )
        .localCheckpoint(eager=False)  # the counts and the ids must see the same numbering
    )
    counts = located.groupBy("_part").agg(F.count(F.lit(1)).alias("n")).collect()
    offsets, total = [], 0
    for part, n in sorted((row["_part"], row["n"]) for row in counts):
        offsets += [F.lit(part), F.lit(total)]
        total += n
    if not offsets:
        return located.select(F.lit(0).alias(index_column), column), 0
    # The offsets as a literal map, not a joined frame: createDataFrame would import pandas (~1 s) to
    # look at a list of a few tuples.
    offset = F.create_map(*offsets)[F.col("_part")]
    position = F.col("_row") - F.shiftleft(F.col("_part").cast("long"), 33)
    ids = located.select((offset + position).cast("int").alias(index_column), column)
    return ids, total


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


def split_validation(train: DataFrame, validation_fraction: float, min_items_for_holdout: int) -> DataFrame:
    """Add boolean ``is_validation`` to the training rows: :func:`split_holdout`'s rule applied to them.

    Each user with at least ``min_items_for_holdout`` training items has their latest
    ``max(1, floor(n * validation_fraction))`` of them marked, at least one left unmarked. The nightly
    holdout took each user's latest items before, in the same order, so marked items are never newer than
    the user's held-out ones and never older than the unmarked ones.
    """
    split = split_holdout(train, validation_fraction, min_items_for_holdout)
    return split.withColumnRenamed("is_holdout", "is_validation")


def write_validation(
    spark: SparkSession,
    train: DataFrame,
    n_train: int,
    output_uri: str,
    validation_fraction: float,
    min_items_for_holdout: int,
) -> Optional[Dict[str, object]]:
    """Write ``validation/fit/`` and ``validation/holdout/`` under ``output_uri`` from ``train`` (the
    training rows, ``n_train`` of them) and return the manifest's ``validation`` block.

    ``validation_fraction == 0``: nothing is written, a ``validation/`` left by an earlier build of the
    same folder is deleted (the manifest's null must not sit beside stale data), and None is returned.
    Raises :class:`JobError` if fit + holdout do not add up to ``n_train``.
    """
    uri = join_uri(output_uri, "validation")
    if validation_fraction <= 0:
        if fs.exists(spark, uri):
            fs.delete(spark, uri)
            log.info("removed the stale validation split at %s (no --validation-fraction)", uri)
        return None
    # Read by the count below and by both writes: one window over train/, stored once.
    split = split_validation(train, validation_fraction, min_items_for_holdout).localCheckpoint(eager=False)
    sizes = split.agg(
        F.sum((~F.col("is_validation")).cast("long")).alias("fit"),
        F.sum(F.col("is_validation").cast("long")).alias("holdout"),
        F.countDistinct(F.when(F.col("is_validation"), F.col("user_idx"))).alias("holdout_users"),
    ).first()
    n_fit, n_holdout = int(sizes["fit"] or 0), int(sizes["holdout"] or 0)
    if n_fit + n_holdout != n_train:
        raise JobError(f"the validation split holds {n_fit} + {n_holdout} pairs, but train/ has {n_train}")
    split.where(~F.col("is_validation")).drop("is_validation").write.mode("overwrite").parquet(
        join_uri(uri, "fit")
    )
    split.where(F.col("is_validation")).drop("is_validation").write.mode("overwrite").parquet(
        join_uri(uri, "holdout")
    )
    block = {
        "fraction": validation_fraction,
        "fit_nnz": n_fit,
        "holdout_nnz": n_holdout,
        "holdout_users": int(sizes["holdout_users"]),
    }
    log.info(
        "validation split (fraction %s) of %d training pairs: %d fit + %d holdout pairs (%d users) at %s",
        validation_fraction,
        n_train,
        n_fit,
        n_holdout,
        block["holdout_users"],
        uri,
    )
    return block


def published_days(
    spark: SparkSession, events_uri: str, days: List[dt.date]
) -> Tuple[List[str], List[str], List[str]]:
    """``(events, missing, unpublished)`` for the ``dt=`` folders of ``events_uri`` over ``days``.

    ``events``: the published attempt's URI of each published day; ``missing``: day folders that do
    not exist; ``unpublished``: day folders with no published attempt (rejected, or a run that died).
    """
    events, missing, unpublished = [], [], []
    for day in days:
        uri = dt_partition(events_uri, day)
        state = day_state(spark, uri)
        if state["state"] == "published":
            events.append(state["pointer"]["events"])
        else:
            (missing if state["state"] == "missing" else unpublished).append(uri)
    return events, missing, unpublished


def check_window(
    days: List[dt.date],
    events: List[str],
    missing: List[str],
    unpublished: List[str],
    min_share: float,
    events_uri: str,
) -> None:
    """Raise :class:`JobError`, naming the absent days, if published days are under ``min_share``."""
    share = len(events) / len(days)
    if events and share >= min_share:
        return
    absent = (
        f"not published (rejected or incomplete): {_day_names(unpublished)}; missing: {_day_names(missing)}"
    )
    if not events:
        raise JobError(f"no parsed events under {events_uri} for {days[0]}..{days[-1]}: {absent}")
    raise JobError(
        f"only {len(events)} of {len(days)} days ({share:.0%}) of {days[0]}..{days[-1]} are published "
        f"under {events_uri}, below --min-window-share {min_share}: {absent}"
    )


def _day_names(uris: List[str]) -> str:
    """Day folders' ``dt=`` names, consecutive days as one range (``dt=a..dt=b (n days)``), or "none"."""
    names = [uri.rstrip("/").rsplit("/", 1)[-1] for uri in uris]
    runs: List[List[str]] = []
    for name in names:
        day = dt.date.fromisoformat(name[len("dt=") :])
        if runs and dt.date.fromisoformat(runs[-1][-1][len("dt=") :]) + dt.timedelta(days=1) == day:
            runs[-1].append(name)
        else:
            runs.append([name])
    parts = [run[0] if len(run) == 1 else f"{run[0]}..{run[-1]} ({len(run)} days)" for run in runs]
    return ", ".join(parts) or "none"


def run(
    spark: SparkSession,
    events_uri: str,
    run_date: dt.date,
    output_uri: str,
    lookback: int = defaults.LOOKBACK_DAYS,
    half_life_days: float = defaults.HALF_LIFE_DAYS,
    weights: Optional[Dict[str, float]] = None,
    rating_weight: float = DEFAULT_RATING_WEIGHT,
    min_user_items: int = defaults.MIN_USER_ITEMS,
    min_item_users: int = defaults.MIN_ITEM_USERS,
    holdout_fraction: float = defaults.HOLDOUT_FRACTION,
    min_items_for_holdout: int = DEFAULT_MIN_ITEMS_FOR_HOLDOUT,
    min_window_share: float = defaults.MIN_WINDOW_SHARE,
    validation_fraction: float = 0.0,
) -> Dict[str, object]:
    """Build the features for ``run_date`` and write them under ``output_uri``; returns the manifest.

    Reads only published days (:mod:`spark_jobs.common.published`); fails, naming the absent days, when
    fewer than ``min_window_share`` of the window's days are published (or none is).
    ``validation_fraction`` > 0 also writes the validation split of ``train/`` (:func:`split_validation`).
    """
    weights = weights or dict(DEFAULT_WEIGHTS)
    days = lookback_days(run_date, lookback)
    paths, missing, unpublished = published_days(spark, events_uri, days)
    check_window(days, paths, missing, unpublished, min_window_share, events_uri)
    if missing or unpublished:
        log.warning(
            "%d of %d days of the window are not there: %d missing, %d not published (e.g. %s)",
            len(missing) + len(unpublished),
            len(days),
            len(missing),
            len(unpublished),
            (unpublished or missing)[-1],
        )

    # Frames read more than once are local checkpoints, filled by their first action: later actions
    # then plan from the stored rows, not from the whole lineage (measured on MovieLens-100K, actions
    # over cache()d frames cost 0.2-0.45 s each to plan and run, over checkpoints 0.04-0.2 s).
    # A checkpoint is lost with its executor: the step fails and its retry starts over.
    #
    # Every copy of every event, ranked: one action gives events read, duplicates and kept events by
    # type, and the checkpoint feeds the pairs without a second read or a second window.
    ranked = rank_copies(spark.read.parquet(*paths)).localCheckpoint(eager=False)
    by_type, events_read = {}, 0
    for row in (
        ranked.groupBy("event_type")
        .agg(F.count(F.lit(1)).alias("copies"), F.sum((F.col("_copy") == 1).cast("long")).alias("kept"))
        .collect()
    ):
        by_type[row["event_type"]] = int(row["kept"])
        events_read += int(row["copies"])
    events_kept = sum(by_type.values())
    log.info(
        "read %d events from %d partitions (%d duplicates across days dropped)",
        events_read,
        len(paths),
        events_read - events_kept,
    )

    reference = dt.datetime.combine(run_date + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)
    events = ranked.where(F.col("_copy") == 1).drop("_copy")
    pairs_all = aggregate_pairs(weight_events(events, weights, rating_weight, half_life_days, reference))
    pairs_all = pairs_all.localCheckpoint(eager=False)
    totals = pairs_all.agg(
        F.count(F.lit(1)).alias("pairs"), F.countDistinct("user_id").alias("users")
    ).first()
    pairs_before, window_users = int(totals["pairs"]), int(totals["users"])
    pairs, rounds, n_pairs = apply_min_support(pairs_all, min_user_items, min_item_users, size=pairs_before)
    if n_pairs == 0:
        raise JobError(
            f"no (user, item) pairs left after minimum support (users >= {min_user_items} items, "
            f"items >= {min_item_users} users) out of {pairs_before}: "
            "lower the thresholds or widen the window"
        )

    users, n_users = index_ids(pairs, "user_id", "user_idx")
    items, n_items = index_ids(pairs, "item_id", "item_idx")
    indexed = (
        pairs.join(F.broadcast(users) if n_users <= BROADCAST_IDS else users, "user_id")
        .join(F.broadcast(items) if n_items <= BROADCAST_IDS else items, "item_id")
        .select(
            F.col("user_idx").cast("int"),
            F.col("item_idx").cast("int"),
            F.col("confidence").cast("double"),
            "last_ts",
        )
    )
    split = split_holdout(indexed, holdout_fraction, min_items_for_holdout).localCheckpoint(eager=False)
    sizes = split.agg(
        F.sum((~F.col("is_holdout")).cast("long")).alias("train"),
        F.sum(F.col("is_holdout").cast("long")).alias("holdout"),
        F.countDistinct(F.when(F.col("is_holdout"), F.col("user_idx"))).alias("holdout_users"),
    ).first()
    n_train, n_holdout = int(sizes["train"] or 0), int(sizes["holdout"] or 0)
    if n_train + n_holdout != n_pairs:
        raise JobError(f"the split holds {n_train} + {n_holdout} pairs, but the core has {n_pairs}")
    train = split.where(~F.col("is_holdout")).drop("is_holdout")
    holdout = split.where(F.col("is_holdout")).drop("is_holdout")

    # Every (user, item) of the window, before minimum support: train_cf excludes these from the served
    # lists and gives the users that support dropped a popularity list.
    pairs_all.select("user_id", "item_id").write.mode("overwrite").parquet(join_uri(output_uri, "window"))
    train.write.mode("overwrite").parquet(join_uri(output_uri, "train"))
    holdout.write.mode("overwrite").parquet(join_uri(output_uri, "holdout"))
    users.write.mode("overwrite").parquet(join_uri(output_uri, "users"))
    items.write.mode("overwrite").parquet(join_uri(output_uri, "items"))
    validation = write_validation(
        spark, train, n_train, output_uri, validation_fraction, min_items_for_holdout
    )

    manifest = {
        "run_date": run_date.isoformat(),
        "events_uri": events_uri,
        "window": {"first_day": days[0].isoformat(), "last_day": days[-1].isoformat(), "days": lookback},
        "partitions_read": paths,
        "partitions_missing": missing,
        "partitions_unpublished": unpublished,
        "events_read": events_read,
        "duplicate_events_dropped": events_read - events_kept,
        "events_by_type": {name: by_type.get(name, 0) for name in EVENT_TYPES},
        "pairs_before_support": pairs_before,
        "pairs": n_pairs,
        "window_users": window_users,
        "support_rounds": rounds,
        "users": n_users,
        "items": n_items,
        "train_nnz": n_train,
        "holdout_nnz": n_holdout,
        "holdout_users": int(sizes["holdout_users"]),
        "density": n_pairs / float(n_users * n_items),
        "validation": validation,
        "params": {
            "half_life_days": half_life_days,
            "weights": weights,
            "rating_weight": rating_weight,
            "min_user_items": min_user_items,
            "min_item_users": min_item_users,
            "holdout_fraction": holdout_fraction,
            "min_items_for_holdout": min_items_for_holdout,
            "validation_fraction": validation_fraction,
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
    parser.add_argument(
        "--lookback-days", type=positive_int_arg, default=defaults.LOOKBACK_DAYS, help="window length in days"
    )
    parser.add_argument(
        "--half-life-days",
        type=non_negative_float_arg,
        default=defaults.HALF_LIFE_DAYS,
        help="time-decay half-life in days; 0 = none",
    )
    parser.add_argument(
        "--weights", type=parse_weights, default=dict(DEFAULT_WEIGHTS), help="event-type weights NAME=W,..."
    )
    parser.add_argument(
        "--rating-weight",
        type=non_negative_float_arg,
        default=DEFAULT_RATING_WEIGHT,
        help="a rating weighs value x this",
    )
    parser.add_argument(
        "--min-user-items",
        type=positive_int_arg,
        default=defaults.MIN_USER_ITEMS,
        help="min distinct items per user",
    )
    parser.add_argument(
        "--min-item-users",
        type=positive_int_arg,
        default=defaults.MIN_ITEM_USERS,
        help="min distinct users per item",
    )
    parser.add_argument(
        "--holdout-fraction",
        type=ratio_arg,
        default=defaults.HOLDOUT_FRACTION,
        help="share of each user's latest items held out",
    )
    parser.add_argument(
        "--min-items-for-holdout",
        type=positive_int_arg,
        default=DEFAULT_MIN_ITEMS_FOR_HOLDOUT,
        help="users with fewer get no holdout",
    )
    parser.add_argument(
        "--min-window-share",
        type=ratio_arg,
        default=defaults.MIN_WINDOW_SHARE,
        help="fail unless at least this share of the window's days is published (missing and rejected "
        "days count against it)",
    )
    parser.add_argument(
        "--validation-fraction",
        type=ratio_arg,
        default=0.0,
        help="share of each user's latest training items in validation/holdout/ (the tuning sweep's "
        "split; the rest of train/ is validation/fit/); 0 = no validation split",
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
        min_window_share=args.min_window_share,
        validation_fraction=args.validation_fraction,
    )


if __name__ == "__main__":
    run_job(JOB, main)
