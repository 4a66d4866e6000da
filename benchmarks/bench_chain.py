"""The four-job chain on MovieLens-100K against four empty spark-submits, in the same round, and where
each job's time goes (from Spark's event log, :mod:`benchmarks.eventlog`, last round).

    python -m benchmarks.bench_chain [--repeats 2] [--seed 42] [--quick]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from benchmarks import common as c
from benchmarks.eventlog import breakdown, read_event_log
from tools.run_chain import run_chain


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = c.parser(__doc__)
    p.add_argument("--repeats", type=int, default=None, help="empty x4 + chain rounds (default 2, quick 1)")
    p.add_argument("--work", type=Path, default=c.WORK / "chain", help="chain outputs and logs")
    args = p.parse_args(argv)
    if not c.MOVIELENS_RAW.is_dir():
        print(f"ERROR: no MovieLens raw data at {c.MOVIELENS_RAW}: run make data-movielens", file=sys.stderr)
        return 2
    os.environ.update(c.spark_env())  # run_chain's spark-submits inherit it
    doc, work, empty_logs = c.begin("chain", args), args.work / "run", c.mkdir(args.work / "empty")
    doc["rounds"] = []
    for index in range(args.repeats or (1 if args.quick else 2)):
        round_ = {"load_before": c.load_avg(), "empty_walls": []}
        print(f"chain bench: round {index + 1}: four empty spark-submits, then the chain ...", flush=True)
        for n in range(4):  # plain subprocesses: no sampling thread competing with them
            started = time.perf_counter()
            with open(empty_logs / f"empty-{n}.log", "w") as log:
                subprocess.run(["spark-submit", str(c.EMPTY_JOB)], stdout=log, stderr=log, check=True)
            round_["empty_walls"].append(time.perf_counter() - started)
        shutil.rmtree(work, ignore_errors=True)
        # as make run-chain runs it: the DAG's steps with the local stack's config, implicit
        result = run_chain(c.MOVIELENS_RAW, work, c.RUN_DATE, ["implicit"], event_logs=work / "eventlogs")
        round_.update(chain_walls=dict(result.timings), chain_total=sum(result.timings.values()))
        round_.update(ratio=round_["chain_total"] / sum(round_["empty_walls"]), load_after=c.load_avg())
        doc["rounds"].append(round_)
        print(f"chain bench: chain {round_['chain_total']:.1f} s, ratio {round_['ratio']:.2f}", flush=True)
    doc["breakdown"] = {}  # the last round's
    for label, (start_ms, end_ms) in result.spans.items():
        log_file = next((work / "eventlogs" / label).iterdir())
        doc["breakdown"][label] = breakdown(read_event_log(log_file), start_ms, end_ms)
    doc["metrics"] = result.metrics
    doc["median_ratio"] = statistics.median(r["ratio"] for r in doc["rounds"])
    doc["median_empty_wall"] = statistics.median(w for r in doc["rounds"] for w in r["empty_walls"])
    doc["median_chain_total"] = statistics.median(r["chain_total"] for r in doc["rounds"])
    c.save(doc, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
