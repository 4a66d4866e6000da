"""load_serving: one registered version's served lists into the serving table (DynamoDB).

    spark-submit spark_jobs/load_serving.py --recommendations URI --features URI --version V --table T
        [--region R] [--endpoint-url URL] [--ttl-days D] [--max-items N] [--threads N]
        [--partitions N] [--max-attempts N] [--ensure-table] [--summary URI]

Reads the version's served lists (docs/contracts.md §4: ``user_id, rank, item_id, score, source``, one
row per user and rank) and the run's features (``train/`` + ``holdout/`` + ``items/``), from which the
version's popularity list is ranked as train_cf ranks it: distinct users per item over train + holdout,
ties by item index. Groups the rows per user, checks that every user has one source and ranks 1..n, then
each partition writes its users with :func:`serving.load.load_lists` (``--threads`` BatchWriteItem
requests in flight per task, so the table sees at most running tasks x threads requests at once) and
returns its counts. Only if the items written add up to the users read is the version marked loaded
(:func:`serving.load.finish_load`, with the popularity list), which is what lets the pointer name it.

Refuses (exit 2) to write into the live version, before loading and again when marking it loaded. Every
item expires ``--ttl-days`` after the load started (DynamoDB TTL). A task that fails and is retried by
Spark rewrites the same items (puts are idempotent); only successful attempts' counts are summed.
``--summary URI`` writes the counts as JSON; ``--outcome URI`` the job's outcome record, as every job.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a file by spark-submit: make the `spark_jobs` package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import itertools
import time
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterator, Optional, Sequence

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from serving.load import LoadCounts, ReconciliationError, finish_load
from serving.pointer import LiveVersionError, assert_not_live
from serving.table import RankedList, check_version, ensure_table
from spark_jobs.common import fs
from spark_jobs.common import job_defaults as defaults
from spark_jobs.common.cli import JobError, new_parser, positive_int_arg, run_job
from spark_jobs.common.joblog import get_logger
from spark_jobs.common.session import build_spark
from spark_jobs.common.uris import join_uri

JOB = "load_serving"
log = get_logger(JOB)
DEFAULT_TTL_DAYS = 14  # the DAG passes its own (serving_ttl_days)
LIST_COLUMNS = ("user_id", "rank", "item_id", "score", "source")


def grouped_lists(recommendations: DataFrame) -> DataFrame:
    """One row per user: ``user_id, sources`` (distinct sources of their rows) and ``ranked`` (array of
    (rank, item_id, score) structs, ascending rank)."""
    return recommendations.groupBy("user_id").agg(
        F.collect_set("source").alias("sources"),
        F.sort_array(F.collect_list(F.struct("rank", "item_id", "score"))).alias("ranked"),
    )


def check_lists(grouped: DataFrame) -> Dict[str, Any]:
    """One pass over :func:`grouped_lists`: users, model/popularity users, and the users whose rows
    mix sources or whose ranks are not 1..n (count and up to 3 examples each)."""
    ranks = F.transform("ranked", lambda entry: entry["rank"])
    mixed = F.size("sources") != 1
    bad = ranks != F.sequence(F.lit(1), F.size("ranked"))
    row = grouped.agg(
        F.count(F.lit(1)).alias("users"),
        F.count(F.when(~mixed & (F.col("sources")[0] == "model"), 1)).alias("model_users"),
        F.count(F.when(~mixed & (F.col("sources")[0] == "popularity"), 1)).alias("popularity_users"),
        F.count(F.when(mixed, 1)).alias("mixed_sources"),
        F.slice(F.collect_list(F.when(mixed, F.col("user_id"))), 1, 3).alias("mixed_examples"),
        F.count(F.when(bad, 1)).alias("bad_ranks"),
        F.slice(F.collect_list(F.when(bad, F.col("user_id"))), 1, 3).alias("bad_examples"),
    ).first()
    return row.asDict()


def popularity_list(spark: SparkSession, features_uri: str, k: int) -> RankedList:
    """The catalogue's top ``k`` by distinct users in train + holdout (ties by item index), scored by
    that count: the list train_cf gives users outside the model, without anyone's own items removed."""
    pairs = [
        spark.read.parquet(join_uri(features_uri, name)).select("user_idx", "item_idx")
        for name in ("train", "holdout")
    ]
    items = spark.read.parquet(join_uri(features_uri, "items")).select("item_idx", "item_id")
    top = (
        pairs[0]
        .unionByName(pairs[1])
        .groupBy("item_idx")
        .agg(F.countDistinct("user_idx").alias("users"))
        .join(items, "item_idx")
        .orderBy(F.desc("users"), "item_idx")
        .limit(k)
        .collect()
    )
    return RankedList.of([r["item_id"] for r in top], [r["users"] for r in top], "popularity")


def partition_loader(
    table: str,
    version: str,
    *,
    client_kwargs: Dict[str, Any],
    config_kwargs: Dict[str, Any],
    expires_at: int,
    max_items: int,
    threads: int,
    max_attempts: int,
) -> Callable[[Iterator[Any]], Iterator[Dict[str, int]]]:
    """The mapPartitions function: rows of :func:`grouped_lists` in, one counts dict out."""

    def load(rows: Iterator[Any]) -> Iterator[Dict[str, int]]:
        rows = iter(rows)
        first = next(rows, None)
        if first is None:  # an empty partition (a shuffle has many): no client, no pointer read
            yield LoadCounts().as_dict()
            return
        # On the executor: its own client (clients are not picklable), the same library as the driver.
        import boto3
        from botocore.config import Config

        from serving.load import load_lists, user_list

        client = boto3.client("dynamodb", config=Config(**config_kwargs), **client_kwargs)
        lists = (
            user_list(
                row["user_id"],
                [entry["rank"] for entry in row["ranked"]],
                [entry["item_id"] for entry in row["ranked"]],
                [entry["score"] for entry in row["ranked"]],
                row["sources"][0],
            )
            for row in itertools.chain([first], rows)
        )
        counts = load_lists(
            client,
            table,
            version,
            lists,
            expires_at=expires_at,
            max_items=max_items,
            threads=threads,
            max_attempts=max_attempts,
        )
        yield counts.as_dict()

    return load


def task_failure(exc: BaseException) -> Optional[str]:
    """The exception line of the first Python traceback inside a Spark error (a failed task's own
    error, e.g. ``serving.load.LoadError: gave up ...``), or None if there is none."""
    lines = str(exc).splitlines()
    for index, line in enumerate(lines):
        if line.endswith("Traceback (most recent call last):"):
            # Frames are indented; the first line that is not is "<type>: <message>".
            for follow in lines[index + 1 :]:
                if follow and not follow[0].isspace():
                    return follow.strip()
    return None


def run(
    spark: SparkSession,
    recommendations_uri: str,
    features_uri: str,
    version: str,
    table: str,
    *,
    client_kwargs: Dict[str, Any],
    expires_at: int,
    max_items: int = defaults.SERVE_K,
    threads: int = defaults.SERVING_LOAD_THREADS,
    partitions: Optional[int] = None,
    max_attempts: int = 10,
    ensure: bool = False,
    summary_uri: Optional[str] = None,
) -> Dict[str, Any]:
    """Load ``version``'s lists into ``table`` and mark it loaded; returns the summary (see the module
    docstring). ``client_kwargs`` go to ``boto3.client("dynamodb", ...)`` on the driver and on every
    executor (region_name, endpoint_url). JobError for a refused or failed load."""
    started = time.perf_counter()
    try:
        check_version(version)
    except ValueError as exc:
        raise JobError(str(exc)) from None
    import boto3
    from botocore.config import Config

    config_kwargs = {"retries": {"mode": "standard", "max_attempts": 5}, "max_pool_connections": threads + 2}
    client = boto3.client("dynamodb", config=Config(**config_kwargs), **client_kwargs)
    if ensure:
        log.info("table: %s", ensure_table(client, table))
    try:
        assert_not_live(client, table, version)
    except LiveVersionError as exc:
        raise JobError(str(exc)) from None

    recommendations = spark.read.parquet(recommendations_uri)
    missing = [c for c in LIST_COLUMNS if c not in recommendations.columns]
    if missing:
        raise JobError(f"{recommendations_uri} lacks column(s) {missing}: not served lists (contracts §4)")
    grouped = grouped_lists(recommendations.select(*LIST_COLUMNS))
    if partitions:
        grouped = grouped.repartition(partitions)
    grouped = grouped.persist(StorageLevel.MEMORY_AND_DISK)  # checked, then loaded: computed once
    try:
        check = check_lists(grouped)
        users = int(check["users"])
        if users == 0:
            raise JobError(f"no lists at {recommendations_uri}: nothing to load")
        if check["mixed_sources"] or check["bad_ranks"]:
            raise JobError(
                f"{recommendations_uri}: {check['mixed_sources']} users mix sources (e.g. "
                f"{check['mixed_examples']}), {check['bad_ranks']} users have ranks other than 1..n "
                f"(e.g. {check['bad_examples']})"
            )
        popular = popularity_list(spark, features_uri, max_items)
        if not popular.item_ids:
            raise JobError(f"no interactions under {features_uri}: no popularity list for unknown users")
        log.info(
            "loading %d users (%d model, %d popularity) of %s into %s, %d partitions x %d threads",
            users,
            check["model_users"],
            check["popularity_users"],
            version,
            table,
            grouped.rdd.getNumPartitions(),
            threads,
        )
        loader = partition_loader(
            table,
            version,
            client_kwargs=client_kwargs,
            config_kwargs=config_kwargs,
            expires_at=expires_at,
            max_items=max_items,
            threads=threads,
            max_attempts=max_attempts,
        )
        load_started = time.perf_counter()
        try:
            parts = grouped.rdd.mapPartitions(loader).collect()
        except Exception as exc:
            line = task_failure(exc)
            if line is None:
                raise
            raise JobError(f"loading {version} failed in a task: {line}") from None
        load_seconds = time.perf_counter() - load_started
    finally:
        grouped.unpersist()
    counts = LoadCounts()
    for part in parts:
        counts = counts + LoadCounts.from_dict(part)
    try:
        marker = finish_load(
            client,
            table,
            version,
            popularity=popular,
            lists_written=counts.written,
            lists_expected=users,
            expires_at=expires_at,
            loaded_at=datetime.now(timezone.utc),
        )
    except (ReconciliationError, LiveVersionError) as exc:
        raise JobError(str(exc)) from None
    summary = {
        "version": version,
        "table": table,
        "users": users,
        "model_users": int(check["model_users"]),
        "popularity_users": int(check["popularity_users"]),
        "lists_written": counts.written,
        "requests": counts.requests,
        "resent": counts.resent,
        "throttled": counts.throttled,
        "write_units": counts.write_units,
        "popularity_items": marker.popularity_items,
        "max_items": max_items,
        "expires_at": expires_at,
        "loaded_at": marker.loaded_at,
        "partitions": len(parts),
        "threads": threads,
        "load_seconds": round(load_seconds, 3),
        "seconds": round(time.perf_counter() - started, 3),
    }
    if summary_uri:
        fs.write_json(spark, summary_uri, summary)
    log.info(
        "loaded %d lists of %s into %s in %.1f s (%d requests, %d items resent, ~%d write units); marked "
        "loaded, expiring at %d",
        counts.written,
        version,
        table,
        load_seconds,
        counts.requests,
        counts.resent,
        counts.write_units,
        expires_at,
    )
    return summary


def parse_args(argv: Optional[Sequence[str]] = None):
    parser = new_parser(JOB, __doc__.split("\n\n")[0])
    parser.add_argument("--recommendations", required=True, help="the version's served lists (Parquet URI)")
    parser.add_argument("--features", required=True, help="the run's build_features output (popularity)")
    parser.add_argument("--version", required=True, help="registry version id, <YYYY-MM-DD>_<token>")
    parser.add_argument("--table", required=True, help="serving table name")
    parser.add_argument("--region", default=None, help="AWS region (default: the cluster's)")
    parser.add_argument("--endpoint-url", default=None, help="DynamoDB endpoint (default: AWS's)")
    parser.add_argument(
        "--ttl-days", type=positive_int_arg, default=DEFAULT_TTL_DAYS, help="days until the items expire"
    )
    parser.add_argument(
        "--max-items", type=positive_int_arg, default=defaults.SERVE_K, help="items kept per list"
    )
    parser.add_argument(
        "--threads",
        type=positive_int_arg,
        default=defaults.SERVING_LOAD_THREADS,
        help="requests in flight per task (<= 16)",
    )
    parser.add_argument("--partitions", type=positive_int_arg, default=None, help="repartition the users")
    parser.add_argument(
        "--max-attempts", type=positive_int_arg, default=10, help="BatchWriteItem requests per batch"
    )
    parser.add_argument("--ensure-table", action="store_true", help="create the table (and TTL) if missing")
    parser.add_argument("--summary", default=None, metavar="URI", help="write the load's counts here (JSON)")
    args = parser.parse_args(argv)
    if args.threads > 16:
        parser.error("--threads is at most 16")
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    client_kwargs = {
        key: value
        for key, value in (("region_name", args.region), ("endpoint_url", args.endpoint_url))
        if value
    }
    expires_at = int(time.time()) + args.ttl_days * 86400  # once, on the driver: every item the same
    spark = build_spark(JOB)
    run(
        spark,
        args.recommendations,
        args.features,
        args.version,
        args.table,
        client_kwargs=client_kwargs,
        expires_at=expires_at,
        max_items=args.max_items,
        threads=args.threads,
        partitions=args.partitions,
        max_attempts=args.max_attempts,
        ensure=args.ensure_table,
        summary_uri=args.summary,
    )


if __name__ == "__main__":
    run_job(JOB, main)
