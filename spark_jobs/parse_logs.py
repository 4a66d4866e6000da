"""parse_logs: raw interaction logs (JSON lines, .gz ok) -> validated Parquet events + readable rejects.

    spark-submit spark_jobs/parse_logs.py --input URI --output URI --rejects URI [--max-reject-ratio R]

Contract (docs/contracts.md): every non-blank input line is either accepted (one row in the attempt's
events) or rejected (one JSON line ``{"raw", "reason", "detail"}`` in its rejects, plus ``"raw_base64"``,
the exact bytes, for a line that is not UTF-8); blank lines are skipped and not counted. ``--output`` and
``--rejects`` are the day's folders: each run writes a new attempt under ``_attempts/<id>/`` and the day
is published (``<output>/_PUBLISHED.json`` names the attempt, written last) only when the attempt is
within ``--max-reject-ratio`` (:mod:`spark_jobs.common.published`). Any byte sequence
is input: what a line is, and the limits, are in :mod:`spark_jobs.common.events`. Duplicated
``event_id``: the copy with the earliest (event time, raw text) is kept, the others are rejected as
``duplicate_event_id``. Counts by reason go to ``_stats.json`` in the attempt's folder (and into the
pointer). A reject ratio above ``--max-reject-ratio`` fails the job (exit 2) after the attempt is
written, leaving the day's previously published attempt, if any, as it was.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a file by spark-submit: make the `spark_jobs` package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import datetime as dt
from typing import Dict, Iterator, Optional, Sequence, Tuple

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from spark_jobs.common import fs
from spark_jobs.common.cli import JobError, new_parser, ratio_arg, run_job
from spark_jobs.common.events import DUPLICATE_EVENT_ID, REJECT_REASONS, is_blank_bytes, parse_raw
from spark_jobs.common.joblog import get_logger
from spark_jobs.common.published import attempt_uri, new_attempt_id, pointer_uri, publish
from spark_jobs.common.session import build_spark
from spark_jobs.common.uris import join_uri

JOB = "parse_logs"
log = get_logger(JOB)

# What parse_raw yields per line, before duplicate detection (timestamps as UTC epoch microseconds).
_PARSED_LINE = StructType(
    [
        StructField("raw", StringType(), False),
        StructField("raw_base64", StringType(), True),  # the exact bytes, only when they are not UTF-8
        StructField("reason", StringType(), True),
        StructField("detail", StringType(), True),
        StructField("event_id", StringType(), True),
        StructField("user_id", StringType(), True),
        StructField("item_id", StringType(), True),
        StructField("event_type", StringType(), True),
        StructField("event_ts_us", LongType(), True),
        StructField("session_id", StringType(), True),
        StructField("value", StringType(), True),  # cast to double in Spark: keeps None vs NaN apart
    ]
)
# Microseconds as int64: never through a double.
_ARROW_TYPES = tuple(pa.int64() if f.name == "event_ts_us" else pa.string() for f in _PARSED_LINE.fields)
EVENT_COLUMNS = ("event_id", "user_id", "item_id", "event_type", "event_ts", "session_id", "value")
# Raw input bytes per duplicate-check partition. What one task holds in memory (the sort behind the
# event_id window, a Parquet row group being written) grows with the rows per partition, so the
# partition count follows the input's size instead of staying at spark.sql.shuffle.partitions: memory
# stays flat as the day grows. Counted in bytes, not input splits: a day of many small files packs into
# splits of mostly open-file cost (spark.sql.files.openCostInBytes), which had MovieLens-100K's 13 MB
# in 28 partitions.
PARTITION_INPUT_BYTES = 32 * 1024 * 1024


def _parse_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: apply :func:`parse_raw` to every non-blank line (bytes) of each Arrow batch.

    Arrow in, Arrow out, built from Python lists: the workers never import pandas (a second of start-up
    per worker) and no column is converted twice.
    """
    for batch in batches:
        columns: Tuple[list, ...] = tuple([] for _ in _PARSED_LINE.fields)
        for line in batch.column(0).to_pylist():
            if is_blank_bytes(line):
                continue
            raw, raw_base64, parsed = parse_raw(line)
            value = None if parsed.value is None else repr(parsed.value)
            for column, cell in zip(columns, (raw, raw_base64, *parsed[:-1], value)):
                column.append(cell)
        yield pa.RecordBatch.from_arrays(
            [pa.array(column, type=kind) for column, kind in zip(columns, _ARROW_TYPES)],
            names=[field.name for field in _PARSED_LINE.fields],
        )


def validate_lines(lines: DataFrame) -> DataFrame:
    """Raw lines (one column ``value``) -> one row per non-blank line, shaped as ``_PARSED_LINE``.

    The lines reach Python as bytes: Spark's text source does not check UTF-8, and an undecodable
    string would fail the Arrow conversion (and the whole job) instead of being rejected.
    """
    return lines.select(F.col("value").cast("binary").alias("value")).mapInArrow(
        _parse_batches, schema=_PARSED_LINE
    )


def read_lines(spark: SparkSession, input_uri: str) -> DataFrame:
    """The raw lines under ``input_uri`` (files or nested folders, .gz ok), split at ``\\n`` only."""
    return spark.read.option("recursiveFileLookup", "true").option("lineSep", "\n").text(input_uri)


def mark_duplicates(parsed: DataFrame, num_partitions: Optional[int] = None) -> DataFrame:
    """Reject all but one line per ``event_id`` among lines that passed validation.

    The survivor is the line with the smallest (event time, raw text): deterministic whatever the file
    order or partitioning, and for exact repeats it does not matter which copy stays. ``num_partitions``
    sets how many partitions the lines are hashed into by ``event_id`` (default: the session's
    ``spark.sql.shuffle.partitions``); the window reuses that partitioning.
    """
    if num_partitions is not None:
        parsed = parsed.repartition(num_partitions, "event_id")
    by_event = Window.partitionBy("event_id").orderBy(F.col("event_ts_us").asc(), F.col("raw").asc())
    ranked = parsed.withColumn(
        "_copy", F.when(F.col("reason").isNull(), F.row_number().over(by_event)).otherwise(F.lit(1))
    )
    is_duplicate = F.col("reason").isNull() & (F.col("_copy") > 1)
    return (
        ranked.withColumn("detail", F.when(is_duplicate, F.col("event_id")).otherwise(F.col("detail")))
        .withColumn("reason", F.when(is_duplicate, F.lit(DUPLICATE_EVENT_ID)).otherwise(F.col("reason")))
        .drop("_copy")
    )


def accepted_events(marked: DataFrame) -> DataFrame:
    """Accepted lines as the parsed-events schema (event_ts a UTC timestamp, value a double)."""
    return marked.where(F.col("reason").isNull()).select(
        "event_id",
        "user_id",
        "item_id",
        "event_type",
        F.timestamp_micros("event_ts_us").alias("event_ts"),
        "session_id",
        F.col("value").cast("double").alias("value"),
    )


def rejected_lines(marked: DataFrame) -> DataFrame:
    """Rejected lines as ``{raw, reason, detail[, raw_base64]}``, ready to write as JSON lines
    (``raw_base64`` only for lines that are not UTF-8: the JSON writer leaves out null fields)."""
    return marked.where(F.col("reason").isNotNull()).select("raw", "reason", "detail", "raw_base64")


def input_bytes(lines: DataFrame) -> int:
    """Bytes of the files behind ``lines``, from the file listing the read already made (Spark's size
    estimate of the relation: the files' lengths, times ``spark.sql.sources.fileCompressionFactor``;
    set that above 1 for gzipped days, whose text is several times their size)."""
    return int(lines._jdf.queryExecution().optimizedPlan().stats().sizeInBytes())


def duplicate_check_partitions(spark: SparkSession, lines: DataFrame) -> int:
    """Partitions for :func:`mark_duplicates`: one per ``PARTITION_INPUT_BYTES`` of input, and never
    fewer than ``spark.sql.shuffle.partitions``."""
    configured = int(spark.conf.get("spark.sql.shuffle.partitions"))
    return max(configured, -(-input_bytes(lines) // PARTITION_INPUT_BYTES))


def outcome_counts(marked: DataFrame) -> Tuple[int, Dict[str, int]]:
    """``(accepted, counts per reject reason)`` in one Spark job; every known reason is present (0 when
    absent)."""
    counts = {reason: 0 for reason in REJECT_REASONS}
    accepted = 0
    for row in marked.groupBy("reason").count().collect():
        if row["reason"] is None:
            accepted = int(row["count"])
        else:
            counts[row["reason"]] = int(row["count"])
    return accepted, counts


def build_stats(total_lines: int, counts_by_reason: Dict[str, int], accepted: int) -> Dict[str, object]:
    """The stats record; raises :class:`JobError` if reconciliation fails (a bug, never bad input)."""
    rejected = sum(counts_by_reason.values())
    if accepted + rejected != total_lines:
        raise JobError(
            f"reconciliation failed: {total_lines} lines != {accepted} accepted + {rejected} rejected"
        )
    return {
        "lines": total_lines,
        "accepted": accepted,
        "rejected": rejected,
        "rejected_by_reason": counts_by_reason,
        "reject_ratio": (rejected / total_lines) if total_lines else 0.0,
    }


def run(
    spark: SparkSession,
    input_uri: str,
    output_uri: str,
    rejects_uri: str,
    max_reject_ratio: Optional[float] = None,
    stats_uri: Optional[str] = None,
) -> Dict[str, object]:
    """Parse ``input_uri`` into a new attempt of the day ``output_uri``; publish it if within the ratio.

    The attempt's events (Parquet) and rejects (JSON lines) go under ``<output_uri>/_attempts/<id>/``
    and ``<rejects_uri>/_attempts/<id>/``; then, unless the reject ratio exceeds ``max_reject_ratio``,
    ``<output_uri>/_PUBLISHED.json`` names it (:mod:`spark_jobs.common.published`). Returns the stats
    record (written to ``<attempt>/_stats.json``, into the pointer, and to ``stats_uri`` if given: the
    run's copy, there whatever the ratio).
    """
    attempt = new_attempt_id(spark.sparkContext.applicationId, dt.datetime.now(dt.timezone.utc))
    events_uri = attempt_uri(output_uri, attempt)
    attempt_rejects = attempt_uri(rejects_uri, attempt)
    attempt_stats = join_uri(events_uri, "_stats.json")
    stats_uri = stats_uri or attempt_stats
    lines = read_lines(spark, input_uri)
    partitions = duplicate_check_partitions(spark, lines)
    # Parsed once (the Python parse is the expensive part), read three times (the counts, the two
    # writes). Cached on local disk, not in the JVM heap: an in-memory cache of the whole day, raw
    # lines included, made the driver's memory grow with the input.
    marked = mark_duplicates(validate_lines(lines), partitions).persist(StorageLevel.DISK_ONLY)
    try:
        accepted, counts = outcome_counts(marked)
        rejected = sum(counts.values())
        total = accepted + rejected
        log.info("read %d non-blank lines from %s (%d partitions)", total, input_uri, partitions)
        if total == 0:
            raise JobError(f"no input lines under {input_uri}: refusing to publish an empty day")

        accepted_events(marked).write.mode("overwrite").parquet(events_uri)
        # Rejects are few by construction (bounded by the ratio); one file is what a person wants to read.
        rejects_out = rejected_lines(marked)
        if rejected <= 1_000_000:
            rejects_out = rejects_out.coalesce(1)
        rejects_out.write.mode("overwrite").json(attempt_rejects)
        stats = build_stats(total, counts, total - rejected)
    finally:
        marked.unpersist()

    stats.update({"input": input_uri, "output": events_uri, "rejects": attempt_rejects, "attempt": attempt})
    for uri in dict.fromkeys([attempt_stats, stats_uri]):
        fs.write_json(spark, uri, stats)
    log.info("wrote %d events to %s", stats["accepted"], events_uri)
    log.info(
        "wrote %d rejects to %s (%s)",
        rejected,
        attempt_rejects,
        ", ".join(f"{reason}={n}" for reason, n in counts.items() if n) or "none",
    )
    log.info("wrote stats to %s", stats_uri)

    if max_reject_ratio is not None and stats["reject_ratio"] > max_reject_ratio:
        raise JobError(
            f"reject ratio {stats['reject_ratio']:.4f} ({rejected}/{total} lines) exceeds "
            f"--max-reject-ratio {max_reject_ratio}: attempt {attempt} not published, the day's published "
            f"output is unchanged; see rejects at {attempt_rejects} and stats at {stats_uri}"
        )
    pointer = {
        "attempt": attempt,
        "events": events_uri,
        "rejects": attempt_rejects,
        "stats": stats,
        "published_at": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
    pruned = publish(spark, output_uri, pointer, also_prune=[rejects_uri])
    log.info("published attempt %s at %s (pruned %d older)", attempt, pointer_uri(output_uri), len(pruned))
    return stats


def parse_args(argv: Optional[Sequence[str]] = None):
    parser = new_parser(JOB, __doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="raw JSON-lines URI (file or folder, .gz ok)")
    parser.add_argument(
        "--output", required=True, help="the day's events folder: attempts (Parquet) and _PUBLISHED.json"
    )
    parser.add_argument(
        "--rejects", required=True, help="the day's rejects folder: JSON lines under _attempts/<attempt>/"
    )
    parser.add_argument(
        "--max-reject-ratio",
        type=ratio_arg,
        default=None,
        help="fail without publishing the day if rejected/lines exceeds this; unset = never fail on rejects",
    )
    parser.add_argument(
        "--stats", default=None, help="also write the stats JSON here (always in the attempt's folder)"
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    spark = build_spark(JOB)
    run(spark, args.input, args.output, args.rejects, args.max_reject_ratio, args.stats)


if __name__ == "__main__":
    run_job(JOB, main)
