"""parse_logs at growing input sizes: seconds, events/s, MB/s and peak memory of the whole process tree.

    python -m benchmarks.bench_parse_logs [--sizes 1000000,5000000,10000000] [--seed 42] [--quick]

One seeded synthetic clickstream (``tools.datagen.clickstream.generate``; 1M valid events a day, ~2%
bad lines) is generated once for the largest size; a size of N events is its first N / per-day days,
hard-linked into its own folder. Each size is one real ``spark-submit spark_jobs/parse_logs.py`` with the
Makefile's environment, its process tree (launcher, JVM, Python driver and workers) sampled at 10 Hz,
and the JVM's GC log kept to tell live heap from committed heap. The outcome is checked against the
generator's manifest (accepted events and rejects must match exactly). Reports only; asserts no timing.

``--compare-rev REV --compare-sizes ...`` also runs the parse_logs of an older commit (its
``spark_jobs/`` exported read-only with ``git archive``) on the same inputs, in the same run: the
before/after evidence for a memory fix.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
from functools import reduce
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from benchmarks import jvmgc
from benchmarks.env import ROOT, WORK, spark_env
from benchmarks.procmon import MIB, run_monitored
from benchmarks.results import Recorder, add_common_args
from spark_jobs.common.published import local_pointer
from tools.datagen.clickstream import generate

FULL_SIZES = (1_000_000, 5_000_000, 10_000_000)
QUICK_SIZES = (50_000, 100_000, 200_000)


def sizes_arg(text: str) -> List[int]:
    """``"1000000,5000000"`` -> ``[1000000, 5000000]`` (sorted, positive)."""
    sizes = sorted(int(part) for part in text.split(",") if part.strip())
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"expected positive comma-separated sizes, got {text!r}")
    return sizes


def day_plan(sizes: Sequence[int]) -> Dict[str, int]:
    """Events per day (the gcd of the sizes) and days to generate, so every size is whole days."""
    per_day = reduce(math.gcd, sizes)
    return {"per_day": per_day, "days": max(sizes) // per_day}


def ensure_raw(folder: Path, events: int, days: int, seed: int) -> Dict[str, Any]:
    """Generate the data set into ``folder`` unless a manifest with the same parameters is there."""
    manifest_path = folder / "_manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        wanted = {"events": events, "days": days, "seed": seed}
        if {k: manifest["parameters"][k] for k in wanted} == wanted:
            print(f"parse_logs bench: reusing {folder}", flush=True)
            return manifest
    return generate(folder, events=events, days=days, seed=seed)


def link_days(raw: Path, manifest: Dict[str, Any], n_days: int, target: Path) -> Dict[str, Any]:
    """Hard-link the first ``n_days`` day folders of ``raw`` into ``target``; return the expected outcome
    (lines, accepted, rejected, bytes) summed from the manifest."""
    shutil.rmtree(target, ignore_errors=True)
    days = sorted(manifest["days"])[:n_days]
    expected = {"lines": 0, "accepted": 0, "rejected": 0, "bytes": 0}
    for day in days:
        entry = manifest["days"][day]
        for file in entry["files"]:
            source = raw / file["path"]
            dest = target / file["path"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, dest)
            expected["bytes"] += file["bytes"]
        expected["lines"] += entry["lines"]
        expected["accepted"] += entry["expected_accepted"]
        expected["rejected"] += sum(entry["expected_rejected_by_reason"].values())
    return expected


def export_jobs(rev: str, work: Path) -> Path:
    """``spark_jobs/`` as of git revision ``rev``, extracted under ``work``; the path of its parse_logs.py."""
    target = work / f"rev-{rev}"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "spark_jobs"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "spark_jobs" / "parse_logs.py"


def run_size(
    size: int, input_dir: Path, work: Path, expected: Dict[str, Any], job: Path, label: str = "current"
) -> Dict[str, Any]:
    """One monitored run of the parse_logs at ``job`` over ``input_dir``; its measurements."""
    tag = f"{label.replace(' ', '-')}-{size}"
    out, rejects = work / f"parsed-{tag}", work / f"rejects-{tag}"
    gc_log = work / f"gc-{tag}.log"
    command = [
        "spark-submit",
        "--driver-java-options",
        jvmgc.java_options(str(gc_log)),
        str(job),
        "--input", str(input_dir),
        "--output", str(out),
        "--rejects", str(rejects),
    ]  # fmt: skip
    print(f"parse_logs bench: {label} parse_logs, {size} events ...", flush=True)
    log = work / f"parse_logs-{tag}.log"
    result = run_monitored(command, cwd=ROOT, env=spark_env(), log_path=log)
    if result.returncode != 0:
        raise RuntimeError(f"parse_logs failed at {size} events; log: {log}")
    # Revisions before days were published wrote _stats.json at the top of the output (--compare-rev).
    legacy = out / "_stats.json"
    stats = json.loads(legacy.read_text()) if legacy.exists() else local_pointer(out)["stats"]
    heap = jvmgc.heap_summary(gc_log.read_text().splitlines()) if gc_log.exists() else {}
    counted_at = result.first_line_at("recsys.parse_logs: read ")
    read_line = next((line for _, line in result.lines if "recsys.parse_logs: read " in line), "")
    partitions = re.search(r"\((\d+) partitions\)", read_line)
    row = {
        "job": label,
        "events": size,
        "lines": stats["lines"],
        "accepted": stats["accepted"],
        "rejected": stats["rejected"],
        "matches_manifest": stats["accepted"] == expected["accepted"]
        and stats["rejected"] == expected["rejected"]
        and stats["lines"] == expected["lines"],
        "input_mb": expected["bytes"] / 1e6,
        "seconds": result.seconds,
        "events_per_s": stats["lines"] / result.seconds,
        "mb_per_s": expected["bytes"] / 1e6 / result.seconds,
        "seconds_to_counted": counted_at,
        "partitions": int(partitions.group(1)) if partitions else None,  # duplicate-check partitions
        "peak_rss_mib": result.peak_rss_bytes / MIB,
        "peak_rss_by_process_mib": {
            k: (v if k == "processes" else round(v / MIB, 1)) for k, v in result.peak_breakdown.items()
        },
        "jvm_heap": heap,
        "samples": result.samples,
        "load_before": list(result.load_before),
        "load_after": list(result.load_after),
        "rss_trace_mib": [(round(t, 2), round(b / MIB, 1)) for t, b in result.rss_trace[::5]],
    }
    print(
        f"parse_logs bench: {size} events in {result.seconds:.1f} s, peak RSS {row['peak_rss_mib']:.0f} MiB, "
        f"max live heap {heap.get('max_live_mib')} MiB, load {result.load_before[0]:.2f}",
        flush=True,
    )
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(rejects, ignore_errors=True)
    return row


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument(
        "--sizes", type=sizes_arg, default=None, help="valid events per run (comma-separated)"
    )
    parser.add_argument("--work", type=Path, default=WORK / "parse_logs", help="data and logs folder")
    parser.add_argument("--compare-rev", default=None, help="also run parse_logs as of this git revision")
    parser.add_argument("--compare-sizes", type=sizes_arg, default=None, help="sizes for --compare-rev")
    args = parser.parse_args(argv)
    sizes = args.sizes or list(QUICK_SIZES if args.quick else FULL_SIZES)
    plan = day_plan(sizes + (args.compare_sizes or []))
    recorder = Recorder("parse_logs", args)
    args.work.mkdir(parents=True, exist_ok=True)
    raw = args.work / f"raw-seed{args.seed}-{plan['per_day']}x{plan['days']}"
    manifest = ensure_raw(raw, plan["per_day"] * plan["days"], plan["days"], args.seed)
    compare_sizes = (args.compare_sizes or sizes) if args.compare_rev else []
    old_job = export_jobs(args.compare_rev, args.work) if args.compare_rev else None
    rows, compare = [], []
    for size in sorted(set(sizes) | set(compare_sizes)):
        if size % plan["per_day"]:
            raise SystemExit(f"size {size} is not a whole number of {plan['per_day']}-event days")
        input_dir = args.work / f"input-{size}"
        expected = link_days(raw, manifest, size // plan["per_day"], input_dir)
        if size in sizes:
            rows.append(run_size(size, input_dir, args.work, expected, ROOT / "spark_jobs" / "parse_logs.py"))
        if old_job is not None and size in compare_sizes:
            compare.append(run_size(size, input_dir, args.work, expected, old_job, f"rev {args.compare_rev}"))
        shutil.rmtree(input_dir, ignore_errors=True)
    recorder["plan"] = plan
    recorder["compare"] = compare
    recorder["generator"] = {k: manifest["parameters"][k] for k in ("users", "items", "malformed_ratio")}
    recorder["runs"] = rows
    recorder.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
