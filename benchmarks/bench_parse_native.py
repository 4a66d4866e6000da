"""parse_logs' Python validator vs the same validation as native Spark expressions, in one Spark session.

    python -m benchmarks.bench_parse_native [--events 2000000] [--quick] [--seed 42] [--repeats N]
                                            [--sink noop|parquet] [--default-jit]

One seeded synthetic clickstream (``tools.datagen.clickstream.generate``, 1M valid events a day, ~2% bad
lines of every kind; reused when a data set with the same parameters is there). One local Spark session
with the Makefile's environment (``benchmarks.env.spark_env``, ``emr_configs/local-spark``: ``local[*]``,
4 GiB driver) times, for each path, the same action: read the lines (``parse_logs.read_lines``), validate
them, write every row (``--sink noop``, the default: Spark's ``noop`` writer evaluates every column
and writes nothing, so the time is reading plus validating; ``parquet`` writes real files). The paths:

- *python*: ``spark_jobs.parse_logs.validate_lines``, ``events.parse_raw`` in ``mapInPandas`` (the product);
- *native*: ``benchmarks.native_parse.validate_lines_native``, ``from_json``/regex/``when`` expressions
  (measurement only: its docstring lists what it cannot express).

The JVM runs with ``native_parse.JIT_JAVA_OPTION`` so that the native path's large generated method is
JIT-compiled like the rest (``--default-jit`` leaves it out). The runs alternate (python, native, python,
native, ...) so that machine noise hits both; each path's time is the median of ``--repeats`` runs, wall
seconds and CPU seconds of the process tree (JVM and Python workers; less affected when other work
shares the cores). Before them, untimed, both paths run once into a disk cache (which also warms the
JVM and the Python workers) to check agreement: accepted lines and counts by reason per path against
the generator's manifest, and the rows only one path produced. Reports only; asserts no timing.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from benchmarks.bench_parse_logs import ensure_raw
from benchmarks.env import WORK, load_avg, spark_env
from benchmarks.native_parse import JIT_JAVA_OPTION, REQUIRED_CONF, validate_lines_native
from benchmarks.procmon import descendants, snapshot_parents
from benchmarks.results import Recorder, add_common_args
from spark_jobs.common.events import DUPLICATE_EVENT_ID
from spark_jobs.common.session import build_spark
from spark_jobs.parse_logs import read_lines, validate_lines

FULL_EVENTS = 2_000_000
QUICK_EVENTS = 200_000
EVENTS_PER_DAY = 1_000_000  # as bench_parse_logs: a day of the generated clickstream
REQUIRED_RATIO = 1.5  # the product's path must stay within this factor of the faster one
SAMPLES = 5  # disagreeing rows kept per direction in the results
# Columns compared row by row; raw_base64 stands in for raw on lines that are not UTF-8 (where the two
# paths write raw differently by design).
COMPARED = ("reason", "event_id", "user_id", "item_id", "event_type", "event_ts_us", "session_id")

# Path name -> raw lines (column ``value``) to parsed lines (parse_logs' _PARSED_LINE columns).
PATHS: Dict[str, Callable[[DataFrame], DataFrame]] = {
    "python": validate_lines,
    "native": validate_lines_native,
}


def days_for(events: int) -> int:
    """Days to generate so that a day holds at most ``EVENTS_PER_DAY`` valid events."""
    return max(1, math.ceil(events / EVENTS_PER_DAY))


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: Optional[int] = None) -> float:
    """CPU seconds (user + system, with reaped children) used so far by ``root`` (default: this process)
    and its descendants: the JVM and its Python workers. Less sensitive than wall time to other work on
    the machine, which takes CPU turns but does not add CPU time here."""
    total = 0
    for pid in descendants(snapshot_parents(), root or os.getpid()):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rpartition(")")[2].split()
        except OSError:  # exited since the snapshot
            continue
        total += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime (stat fields 14-17)
    return total / CLOCK_TICKS


def start_spark(default_jit: bool = False) -> SparkSession:
    """The benchmark's one Spark session, launched with the Makefile's environment, plus the settings
    the native path needs (``native_parse.REQUIRED_CONF``), unwrapped base64 (Python's form) and,
    unless ``default_jit``, ``native_parse.JIT_JAVA_OPTION`` on the JVM (without it the native path's
    generated code runs interpreted: the comparison would measure that, not the expressions)."""
    os.environ.update(spark_env())  # read when the JVM starts: SPARK_CONF_DIR, PYSPARK_PYTHON, ...
    conf = {**REQUIRED_CONF, "spark.sql.chunkBase64String.enabled": "false"}
    if not default_jit:
        conf["spark.driver.extraJavaOptions"] = JIT_JAVA_OPTION  # local mode: the driver runs the tasks
    return build_spark("bench_parse_native", conf)


def row_key() -> Column:
    """One 64-bit hash per parsed line over what both paths must agree on."""
    return F.xxhash64(F.coalesce("raw_base64", "raw"), *COMPARED, F.col("value").cast("double"))


def agreement(spark: SparkSession, input_dir: str, manifest: Dict[str, Any]) -> Dict[str, Any]:
    """Both paths once, untimed, cached on disk: counts per reason, accepted lines, and the rows (by
    :func:`row_key`) that only one path produced, with a few of them to read."""
    total = manifest["total"]
    expected_rejects = dict(total["expected_rejected_by_reason"])
    duplicates = expected_rejects.pop(DUPLICATE_EVENT_ID)  # valid lines until parse_logs' duplicate step
    result: Dict[str, Any] = {
        "expected": {
            "lines": total["lines"],
            "accepted_before_duplicates": total["expected_accepted"] + duplicates,
            "rejected_by_reason": expected_rejects,
        }
    }
    cached = {}
    for name, validate in PATHS.items():
        started = time.perf_counter()
        frame = validate(read_lines(spark, input_dir)).persist(StorageLevel.DISK_ONLY)
        counts = {r["reason"]: r["count"] for r in frame.groupBy("reason").count().collect()}
        accepted = counts.pop(None, 0)
        result[name] = {
            "lines": accepted + sum(counts.values()),
            "accepted": accepted,
            "rejected_by_reason": dict(sorted(counts.items())),
            "matches_manifest": accepted == result["expected"]["accepted_before_duplicates"]
            and counts == {k: v for k, v in expected_rejects.items() if v},
            "seconds_untimed_pass": time.perf_counter() - started,
        }
        cached[name] = frame
        print(f"parse_native bench: {name} agreement pass: {result[name]}", flush=True)
    keys = {name: frame.select(row_key().alias("key")) for name, frame in cached.items()}
    for mine, other in (("python", "native"), ("native", "python")):
        only = keys[mine].exceptAll(keys[other])
        result[f"rows_only_{mine}"] = only.count()
        sample = [row["key"] for row in only.limit(SAMPLES).collect()]
        frame = cached[mine]
        rows = frame.where(row_key().isin(sample)).select(F.substring("raw", 1, 300).alias("raw"), "reason")
        result[f"samples_only_{mine}"] = [row.asDict() for row in rows.limit(SAMPLES).collect()]
    result["accepted_difference_python_minus_native"] = (
        result["python"]["accepted"] - result["native"]["accepted"]
    )
    for frame in cached.values():
        frame.unpersist()
    return result


def timed_run(spark: SparkSession, name: str, input_dir: str, sink: str, out: Path) -> Dict[str, Any]:
    """One timed read + validate + write of every row with path ``name``: seconds, and the 1-minute
    load around it."""
    before = load_avg()
    cpu = tree_cpu_seconds()
    started = time.perf_counter()
    writer = PATHS[name](read_lines(spark, input_dir)).write.mode("overwrite")
    if sink == "noop":
        writer.format("noop").save()
    else:
        writer.parquet(str(out / name))
    seconds = time.perf_counter() - started
    cpu_seconds = tree_cpu_seconds() - cpu
    shutil.rmtree(out / name, ignore_errors=True)
    return {
        "path": name,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "load_before": before,
        "load_after": load_avg(),
    }


def summarise(runs: Sequence[Dict[str, Any]], lines: int) -> Dict[str, Any]:
    """Median seconds and lines/s per path, their ratio, and whether the Python path is within
    ``REQUIRED_RATIO`` of the faster one (a fact recorded, never asserted)."""
    out: Dict[str, Any] = {}
    for name in PATHS:
        seconds = [r["seconds"] for r in runs if r["path"] == name]
        cpu = [r["cpu_seconds"] for r in runs if r["path"] == name]
        median = statistics.median(seconds)
        out[name] = {
            "seconds": seconds,
            "median_s": median,
            "events_per_s": lines / median,
            "cpu_seconds": cpu,
            "median_cpu_s": statistics.median(cpu),
        }
    faster = min(out["python"]["median_s"], out["native"]["median_s"])
    out["ratio_python_over_native"] = out["python"]["median_s"] / out["native"]["median_s"]
    out["cpu_ratio_python_over_native"] = out["python"]["median_cpu_s"] / out["native"]["median_cpu_s"]
    out["python_over_faster"] = out["python"]["median_s"] / faster
    out["required_ratio"] = REQUIRED_RATIO
    out["python_within_required_ratio"] = out["python_over_faster"] <= REQUIRED_RATIO
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--events", type=int, default=None, help="valid events (default 2M, quick 200k)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per path (default 3, quick 1)")
    parser.add_argument("--sink", choices=("noop", "parquet"), default="noop", help="where rows are written")
    parser.add_argument("--work", type=Path, default=WORK / "parse_native", help="data folder")
    parser.add_argument(
        "--default-jit",
        action="store_true",
        help=f"start the JVM without {JIT_JAVA_OPTION} (the native path then runs interpreted)",
    )
    args = parser.parse_args(argv)
    events = args.events or (QUICK_EVENTS if args.quick else FULL_EVENTS)
    repeats = args.repeats or (1 if args.quick else 3)
    if events < 1 or repeats < 1:
        raise SystemExit("--events and --repeats must be positive")
    recorder = Recorder("parse_native", args)
    days = days_for(events)
    raw = args.work / f"raw-seed{args.seed}-{events}x{days}"
    manifest = ensure_raw(raw, events, days, args.seed)
    input_dir = str(raw)

    spark = start_spark(args.default_jit)
    try:
        check = agreement(spark, input_dir, manifest)
        runs: List[Dict[str, Any]] = []
        for repeat in range(repeats):
            for name in PATHS:  # alternating: python, native, python, native, ...
                run = timed_run(spark, name, input_dir, args.sink, args.work / "out")
                run["repeat"] = repeat
                runs.append(run)
                print(
                    f"parse_native bench: repeat {repeat + 1}/{repeats} {name} {run['seconds']:.1f} s "
                    f"(CPU {run['cpu_seconds']:.1f} s), load {run['load_before'][0]:.2f}",
                    flush=True,
                )
        session = {
            "version": spark.version,
            "master": spark.sparkContext.master,
            "default_parallelism": spark.sparkContext.defaultParallelism,
            "input_partitions": read_lines(spark, input_dir).rdd.getNumPartitions(),
            "jit_java_option": JIT_JAVA_OPTION
            if JIT_JAVA_OPTION in spark.sparkContext.getConf().get("spark.driver.extraJavaOptions", "")
            else None,
        }
    finally:
        spark.stop()

    lines = manifest["total"]["lines"]
    summary = summarise(runs, lines)
    recorder["input"] = {
        "events": events,
        "days": days,
        "lines": lines,
        "bytes": manifest["total"]["bytes"],
        "generator": {k: manifest["parameters"][k] for k in ("users", "items", "malformed_ratio")},
    }
    recorder["sink"] = args.sink
    recorder["repeats"] = repeats
    recorder["spark"] = session
    recorder["runs"] = runs
    recorder["summary"] = summary
    recorder["agreement"] = check
    recorder.save()
    print(
        f"parse_native bench: {lines} lines; python {summary['python']['median_s']:.1f} s "
        f"({summary['python']['events_per_s']:,.0f}/s), native {summary['native']['median_s']:.1f} s "
        f"({summary['native']['events_per_s']:,.0f}/s); "
        f"python/native {summary['ratio_python_over_native']:.2f} "
        f"(CPU {summary['cpu_ratio_python_over_native']:.2f}); "
        f"accepted python {check['python']['accepted']} native {check['native']['accepted']}; "
        f"rows only python {check['rows_only_python']}, only native {check['rows_only_native']}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
