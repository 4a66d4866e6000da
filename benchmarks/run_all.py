"""Run every benchmark of one mode in sequence, then build the page: what ``make bench`` and
``make bench-quick`` call.

    python -m benchmarks.run_all [--quick] [--seed 42] [--spark-iterations N]

The mode's results folder is emptied first, so the page can only show numbers from this run. Each
benchmark runs as its own process (``python -m benchmarks.<name>``); the first failure stops the run.
Full mode writes ``docs/benchmarks.md`` and ``docs/bench_*.png``; quick mode writes under
``var/bench/quick/`` so a smoke run never overwrites the committed page.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from typing import List, Optional, Sequence

from benchmarks.env import ROOT
from benchmarks.results import results_dir

# Spark ALS iterations on the ~10M-nnz matrix in full mode: 15 takes longer than the whole 30-minute
# budget on this shared 2-core machine, so it runs fewer and the page says so (and extrapolates).
FULL_SPARK_ITERATIONS = 2
QUICK_SPARK_ITERATIONS = 3


def commands(quick: bool, seed: int, spark_iterations: Optional[int]) -> List[List[str]]:
    """The benchmark processes of one mode, in order (the report last)."""
    common = ["--seed", str(seed)] + (["--quick"] if quick else [])
    iterations = spark_iterations or (QUICK_SPARK_ITERATIONS if quick else FULL_SPARK_ITERATIONS)
    python = [sys.executable, "-m"]
    return [
        [*python, "benchmarks.bench_parse_logs", *common],
        [*python, "benchmarks.bench_parse_native", *common],
        [*python, "benchmarks.bench_train", *common, "--spark-iterations", str(iterations)],
        [*python, "benchmarks.bench_quality", *common],
        [*python, "benchmarks.bench_overheads", *common],
        [*python, "benchmarks.bench_chain", *common],
        [*python, "benchmarks.bench_serving", *common],
    ]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, page under var/bench/quick/")
    parser.add_argument("--seed", type=int, default=42, help="seed passed to every benchmark")
    parser.add_argument(
        "--spark-iterations",
        type=int,
        default=None,
        help=f"Spark ALS iterations on the largest matrix (default {FULL_SPARK_ITERATIONS} full, "
        f"{QUICK_SPARK_ITERATIONS} quick)",
    )
    args = parser.parse_args(argv)
    shutil.rmtree(results_dir(args.quick), ignore_errors=True)
    started = time.perf_counter()
    for command in commands(args.quick, args.seed, args.spark_iterations):
        print("$ python " + " ".join(command[1:]), flush=True)
        step = time.perf_counter()
        if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
            print(f"FAILED: {' '.join(command[2:])}", file=sys.stderr)
            return 1
        print(f"  ({time.perf_counter() - step:.0f} s)", flush=True)
    total = time.perf_counter() - started
    report = [sys.executable, "-m", "benchmarks.report", "--total-seconds", f"{total:.1f}"]
    report += ["--quick"] if args.quick else []
    return subprocess.run(report, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
