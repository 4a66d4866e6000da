"""parse_logs at growing input sizes: seconds, events/s, MB/s and peak memory of the whole process tree.

    python -m benchmarks.bench_parse_logs [--sizes 1000000,5000000,10000000] [--quick]
                                          [--compare-rev REV [--compare-sizes ...]]

One seeded clickstream; a size of N events is its first N / per-day days, hard-linked. Each size is one
monitored ``spark-submit parse_logs.py`` with its GC log (live vs committed heap), checked against the
generator's manifest. ``--compare-rev`` also runs parse_logs as of an older commit on the same inputs.
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
from typing import Dict, List, Optional, Sequence

from benchmarks import common as c
from spark_jobs.common.published import local_pointer

GC_PAUSE = re.compile(r"GC\(\d+\) Pause .*?(\d+)M->(\d+)M\((\d+)M\)")  # -Xlog:gc (JDK 11+) pause lines
COUNTS = ("lines", "accepted", "rejected")


def sizes_arg(text: str) -> List[int]:
    sizes = sorted(int(part) for part in text.split(",") if part.strip())
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"expected positive comma-separated sizes, got {text!r}")
    return sizes


def heap_summary(lines: Sequence[str]) -> Dict[str, int]:
    """GC pauses, the largest heap still live right after one, the largest committed heap (MiB)."""
    pauses = [[int(x) for x in m.groups()] for m in map(GC_PAUSE.search, lines) if m]
    live, committed = (max((p[i] for p in pauses), default=0) for i in (1, 2))
    return {"collections": len(pauses), "max_live_mib": live, "max_committed_mib": committed}


def run_size(size: int, folder: Path, work: Path, expected: Dict[str, int], job: Path, label: str) -> Dict:
    """One monitored ``spark-submit`` of the parse_logs at ``job`` over ``folder``: its measurements."""
    tag = f"{label.replace(' ', '-')}-{size}"
    out, rejects, gc_log = work / f"parsed-{tag}", work / f"rejects-{tag}", work / f"gc-{tag}.log"
    print(f"parse_logs bench: {label} parse_logs, {size} events ...", flush=True)
    command = ["spark-submit", "--driver-java-options", f"-Xlog:gc:file={gc_log}", str(job), "--input"]
    command += [str(folder), "--output", str(out), "--rejects", str(rejects)]
    run = c.monitored(command, work / f"parse_logs-{tag}.log")
    legacy = out / "_stats.json"  # revisions before days were published (--compare-rev)
    stats = json.loads(legacy.read_text()) if legacy.exists() else local_pointer(out)["stats"]
    read_line = next((line for _, line in run.lines if "recsys.parse_logs: read " in line), "")
    partitions = re.search(r"\((\d+) partitions\)", read_line)  # the duplicate check's
    row = {**run.record(), "job": label, "events": size, "seconds": run.seconds}
    row["input_mb"] = expected["bytes"] / 1e6
    row.update({k: stats[k] for k in COUNTS}, matches_manifest=all(stats[k] == expected[k] for k in COUNTS))
    row.update(events_per_s=stats["lines"] / run.seconds, mb_per_s=row["input_mb"] / run.seconds)
    row.update(seconds_to_counted=run.first_line_at("recsys.parse_logs: read "))
    row["partitions"] = int(partitions.group(1)) if partitions else None
    row["jvm_heap"] = heap_summary(gc_log.read_text().splitlines()) if gc_log.exists() else {}
    row["rss_trace_mib"] = [(round(t, 2), round(b / c.MIB, 1)) for t, b in run.rss_trace[::5]]
    print(f"parse_logs bench: {run.seconds:.1f} s, peak RSS {row['peak_rss_mib']:.0f} MiB", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(rejects, ignore_errors=True)
    return row


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = c.parser(__doc__, "parse_logs")
    p.add_argument("--sizes", type=sizes_arg, default=None, help="valid events per run (comma-separated)")
    p.add_argument("--compare-rev", default=None, help="also run parse_logs as of this git revision")
    p.add_argument("--compare-sizes", type=sizes_arg, default=None, help="sizes for --compare-rev")
    args, doc = c.begin("parse_logs", p, argv)
    sizes = args.sizes or ([50_000, 100_000, 200_000] if args.quick else [1_000_000, 5_000_000, 10_000_000])
    compare = (args.compare_sizes or sizes) if args.compare_rev else []
    per_day = reduce(math.gcd, sizes + compare)  # every size is whole days
    days = max(sizes + compare) // per_day
    doc.update(plan={"per_day": per_day, "days": days}, runs=[], compare=[])
    raw = args.work / f"raw-seed{args.seed}-{per_day}x{days}"
    manifest = c.clickstream(raw, per_day * days, days, args.seed)
    jobs = [("current", sizes, "runs", c.ROOT / "spark_jobs" / "parse_logs.py")]
    if args.compare_rev:  # its spark_jobs/, exported read-only with git archive
        old = args.work / f"rev-{args.compare_rev}"
        shutil.rmtree(old, ignore_errors=True)
        git = ["git", "-C", str(c.ROOT), "archive", args.compare_rev, "spark_jobs"]
        tar = subprocess.run(git, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(c.mkdir(old))], input=tar, check=True)
        jobs.append((f"rev {args.compare_rev}", compare, "compare", old / "spark_jobs" / "parse_logs.py"))
    for size in sorted(set(sizes) | set(compare)):
        folder = args.work / f"input-{size}"  # the first days, hard-linked, and their expected outcome
        shutil.rmtree(folder, ignore_errors=True)
        expected = {"lines": 0, "accepted": 0, "rejected": 0, "bytes": 0}
        for day in sorted(manifest["days"])[: size // per_day]:
            entry = manifest["days"][day]
            for file in entry["files"]:
                c.mkdir((folder / file["path"]).parent)
                os.link(raw / file["path"], folder / file["path"])
                expected["bytes"] += file["bytes"]
            expected["lines"] += entry["lines"]
            expected["accepted"] += entry["expected_accepted"]
            expected["rejected"] += sum(entry["expected_rejected_by_reason"].values())
        for label, wanted, key, job in jobs:
            if size in wanted:
                doc[key].append(run_size(size, folder, args.work, expected, job, label))
        shutil.rmtree(folder, ignore_errors=True)
    doc["generator"] = {k: manifest["parameters"][k] for k in ("users", "items", "malformed_ratio")}
    return c.save(doc, args)


if __name__ == "__main__":
    sys.exit(main())
