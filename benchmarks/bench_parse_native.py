"""parse_logs' Python validator vs the same validation as native Spark expressions, in one Spark session.

    python -m benchmarks.bench_parse_native [--events 2000000] [--quick] [--repeats N]
                                            [--sink noop|parquet] [--default-jit]

Each path reads the clickstream's lines, validates them and writes every row (``noop``: evaluated,
nothing written); runs alternate python, native, python, ... and each path's wall and process-tree CPU
is the median. First, untimed, both paths run once into a disk cache to check agreement (per reason,
against the manifest, and row by row).
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from pyspark import StorageLevel
from pyspark.sql import functions as F

from benchmarks import common as c
from benchmarks.native_parse import JIT_JAVA_OPTION, REQUIRED_CONF, validate_lines_native
from spark_jobs.common.events import DUPLICATE_EVENT_ID
from spark_jobs.common.session import build_spark
from spark_jobs.parse_logs import read_lines, validate_lines

REQUIRED_RATIO = 1.5  # the product's path must stay within this factor of the faster one
PATHS = {"python": validate_lines, "native": validate_lines_native}
# Compared row by row; raw_base64 stands in for raw on lines that are not UTF-8 (written differently).
COMPARED = ("reason", "event_id", "user_id", "item_id", "event_type", "event_ts_us", "session_id")


def agreement(spark: Any, input_dir: str, manifest: Dict[str, Any]) -> Dict[str, Any]:
    """Both paths once, untimed, cached on disk: counts per reason, and the rows only one path gave."""
    total = manifest["total"]
    key = F.xxhash64(F.coalesce("raw_base64", "raw"), *COMPARED, F.col("value").cast("double"))
    rejects = dict(total["expected_rejected_by_reason"])
    accepted = total["expected_accepted"] + rejects.pop(DUPLICATE_EVENT_ID)  # valid until the duplicate step
    result: Dict[str, Any] = {"expected": {"lines": total["lines"], "accepted_before_duplicates": accepted}}
    result["expected"]["rejected_by_reason"] = rejects
    cached = {}
    for name, validate in PATHS.items():
        started = time.perf_counter()
        cached[name] = frame = validate(read_lines(spark, input_dir)).persist(StorageLevel.DISK_ONLY)
        counts = {r["reason"]: r["count"] for r in frame.groupBy("reason").count().collect()}
        mine = {"accepted": counts.pop(None, 0), "rejected_by_reason": dict(sorted(counts.items()))}
        mine["lines"] = mine["accepted"] + sum(counts.values())
        same = mine["accepted"] == accepted and counts == {k: v for k, v in rejects.items() if v}
        mine.update(matches_manifest=same, seconds_untimed_pass=time.perf_counter() - started)
        result[name] = mine
        print(f"parse_native bench: {name} agreement pass: {result[name]}", flush=True)
    keys = {name: frame.select(key.alias("key")) for name, frame in cached.items()}
    for mine, other in (("python", "native"), ("native", "python")):
        only = keys[mine].exceptAll(keys[other])
        result[f"rows_only_{mine}"] = only.count()
        sample = cached[mine].where(key.isin([row["key"] for row in only.limit(5).collect()]))
        rows = sample.select(F.substring("raw", 1, 300).alias("raw"), "reason").limit(5).collect()
        result[f"samples_only_{mine}"] = [row.asDict() for row in rows]
    for frame in cached.values():
        frame.unpersist()
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = c.parser(__doc__, "parse_native")
    p.add_argument("--events", type=int, default=None, help="valid events (default 2M, quick 200k)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per path (default 3, quick 1)")
    p.add_argument("--sink", choices=("noop", "parquet"), default="noop", help="where rows are written")
    p.add_argument("--default-jit", action="store_true", help=f"start the JVM without {JIT_JAVA_OPTION}")
    args, doc = c.begin("parse_native", p, argv)
    events = args.events or (200_000 if args.quick else 2_000_000)
    days = max(1, math.ceil(events / 1_000_000))  # at most 1M valid events a day, as bench_parse_logs
    raw = str(args.work / f"raw-seed{args.seed}-{events}x{days}")
    manifest = c.clickstream(Path(raw), events, days, args.seed)
    doc.update(sink=args.sink, repeats=args.repeats or (1 if args.quick else 3), runs=[])
    os.environ.update(c.spark_env())  # read when the JVM starts: SPARK_CONF_DIR, PYSPARK_PYTHON, ...
    conf = {**REQUIRED_CONF, "spark.sql.chunkBase64String.enabled": "false"}  # unwrapped, as Python's
    if not args.default_jit:  # without it the native path's generated code runs interpreted
        conf["spark.driver.extraJavaOptions"] = JIT_JAVA_OPTION  # local mode: the driver runs the tasks
    spark = build_spark("bench_parse_native", conf)
    try:
        doc["agreement"] = agreement(spark, raw, manifest)
        for repeat, (name, validate) in itertools.product(range(doc["repeats"]), PATHS.items()):
            before, cpu, started = c.load_avg(), c.cpu_seconds(os.getpid()), time.perf_counter()
            writer = validate(read_lines(spark, raw)).write.mode("overwrite")  # python, native, python, ...
            if args.sink == "noop":
                writer.format("noop").save()
            else:
                writer.parquet(str(args.work / "out"))
            run = {"path": name, "repeat": repeat, "seconds": time.perf_counter() - started}
            run.update(cpu_seconds=c.cpu_seconds(os.getpid()) - cpu, load_before=before)
            run["load_after"] = c.load_avg()
            shutil.rmtree(args.work / "out", ignore_errors=True)
            doc["runs"].append(run)
            print(f"parse_native bench: {name} {run['seconds']:.1f} s", flush=True)
        java = spark.sparkContext.getConf().get("spark.driver.extraJavaOptions", "")
        doc["spark"] = {"version": spark.version, "master": spark.sparkContext.master,
                        "input_partitions": read_lines(spark, raw).rdd.getNumPartitions(),
                        "jit_java_option": JIT_JAVA_OPTION if JIT_JAVA_OPTION in java else None}  # fmt: skip
    finally:
        spark.stop()
    lines = manifest["total"]["lines"]
    doc["input"] = {"events": events, "days": days, "lines": lines, "bytes": manifest["total"]["bytes"]}
    summary: Dict[str, Any] = {"required_ratio": REQUIRED_RATIO}
    for name in PATHS:  # medians per path; a fact recorded, never asserted
        seconds, cpu = ([r[k] for r in doc["runs"] if r["path"] == name] for k in ("seconds", "cpu_seconds"))
        median = statistics.median(seconds)
        summary[name] = {"seconds": seconds, "median_s": median, "cpu_seconds": cpu,
                         "median_cpu_s": statistics.median(cpu), "events_per_s": lines / median}  # fmt: skip
    python, native = summary["python"], summary["native"]
    summary["ratio_python_over_native"] = python["median_s"] / native["median_s"]
    summary["cpu_ratio_python_over_native"] = python["median_cpu_s"] / native["median_cpu_s"]
    summary["python_over_faster"] = python["median_s"] / min(python["median_s"], native["median_s"])
    summary["python_within_required_ratio"] = summary["python_over_faster"] <= REQUIRED_RATIO
    doc["summary"] = summary
    return c.save(doc, args)


if __name__ == "__main__":
    sys.exit(main())
