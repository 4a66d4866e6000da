"""The four-job chain on MovieLens-100K against four empty spark-submits, in the same run, and where
each job's time goes (from Spark's event log).

    python -m benchmarks.bench_chain [--repeats 2] [--seed 42] [--quick]

Each repeat runs four empty spark-submits (``benchmarks/workers/empty_job.py``: session, one trivial
action, stop), then ``tools.run_chain`` as ``make run-chain`` runs it, with each job's event log kept.
The ratio is the chain's job walls over the four empty walls of the same repeat; the page shows the
median. The last repeat's event logs are split per job by :mod:`benchmarks.eventlog` (start-up, each
action, driver-side Python, shutdown). Reports only; asserts no timing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from benchmarks.env import ROOT, WORK, load_avg, spark_env
from benchmarks.eventlog import breakdown, read_event_log
from benchmarks.results import Recorder, add_common_args
from tools.run_chain import run_chain

RUN_DATE = "1998-04-22"  # the Makefile's RUN_DATE: MovieLens-100K's last day
RAW = ROOT / "data" / "movielens" / "raw"
EMPTY_JOB = ROOT / "benchmarks" / "workers" / "empty_job.py"


def empty_walls(count: int, log_dir: Path) -> List[float]:
    """Wall seconds of ``count`` empty spark-submits, one after the other."""
    log_dir.mkdir(parents=True, exist_ok=True)
    walls = []
    for index in range(count):
        started = time.perf_counter()
        with open(log_dir / f"empty-{index}.log", "w") as log:
            code = subprocess.run(
                ["spark-submit", str(EMPTY_JOB)], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
            ).returncode
        if code != 0:
            raise RuntimeError(f"the empty spark-submit failed; see {log_dir}")
        walls.append(time.perf_counter() - started)
    return walls


def chain_once(work: Path) -> Dict[str, Any]:
    """One ``make run-chain`` equivalent under ``work``: job walls and each job's breakdown."""
    shutil.rmtree(work, ignore_errors=True)
    event_logs = work / "eventlogs"
    result = run_chain(RAW, work, RUN_DATE, ["implicit"], ["--half-life-days", "0"], event_logs=event_logs)
    jobs = {}
    for label, (start_ms, end_ms) in result.spans.items():
        log_file = next((event_logs / label).iterdir())
        jobs[label] = breakdown(read_event_log(log_file), start_ms, end_ms)
    return {"walls": dict(result.timings), "jobs": jobs, "metrics": result.metrics}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--repeats", type=int, default=None, help="empty x4 + chain rounds (default 2)")
    parser.add_argument("--work", type=Path, default=WORK / "chain", help="chain outputs and logs")
    args = parser.parse_args(argv)
    if not RAW.is_dir():
        print(f"ERROR: no MovieLens raw data at {RAW}: run make data-movielens", file=sys.stderr)
        return 2
    os.environ.update(spark_env())  # run_chain's spark-submits inherit it
    repeats = args.repeats or (1 if args.quick else 2)
    recorder = Recorder("chain", args)
    rounds = []
    for index in range(repeats):
        load_before = load_avg()
        print(f"chain bench: round {index + 1}/{repeats}: four empty spark-submits ...", flush=True)
        empty = empty_walls(4, args.work / "empty")
        print(f"chain bench: round {index + 1}/{repeats}: the chain ...", flush=True)
        chain = chain_once(args.work / "run")
        total = sum(chain["walls"].values())
        rounds.append(
            {
                "empty_walls": empty,
                "chain_walls": chain["walls"],
                "chain_total": total,
                "ratio": total / sum(empty),
                "load_before": load_before,
                "load_after": load_avg(),
            }
        )
        print(f"chain bench: chain {total:.1f} s vs four empty {sum(empty):.1f} s", flush=True)
    recorder["rounds"] = rounds
    recorder["median_ratio"] = statistics.median(r["ratio"] for r in rounds)
    recorder["median_empty_wall"] = statistics.median(w for r in rounds for w in r["empty_walls"])
    recorder["median_chain_total"] = statistics.median(r["chain_total"] for r in rounds)
    recorder["breakdown"] = chain["jobs"]  # the last round's
    recorder["metrics"] = chain["metrics"]
    recorder.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
