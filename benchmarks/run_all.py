"""Run every benchmark of one mode, then fill the page template from their JSON results: what ``make
bench`` and ``make bench-quick`` call.

    python -m benchmarks.run_all [--quick] [--seed 42] [--spark-iterations N] [--report-only]

The mode's results folder is emptied first, so the page only shows numbers from this run; each benchmark
is its own process and the first failure stops the run. ``templates/benchmarks.md.j2`` is rendered into
``docs/benchmarks.md`` beside ``docs/bench_*.png`` (quick: ``var/bench/quick/``, so a smoke run never
overwrites the committed page).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import jinja2

from benchmarks import plots
from benchmarks.common import ROOT, WORK, results_dir

BENCHMARKS = ("parse_logs", "parse_native", "train", "quality", "overheads", "chain", "serving")
# Spark ALS iterations on the ~10M-nnz matrix in full mode: 15 take longer than the whole 30-minute
# budget on this shared 2-core machine, so it runs fewer and the page says so (and extrapolates).
FULL_SPARK_ITERATIONS, QUICK_SPARK_ITERATIONS = 2, 3


def secs(s: Optional[float]) -> str:
    """``0.0261 -> "0.026 s"``, ``12.34 -> "12.3 s"``, ``256.8 -> "257 s"``."""
    if s is None or math.isnan(s):
        return "n/a"
    return "0 s" if s == 0 else f"{s:.3f} s" if s < 1 else f"{s:.1f} s" if s < 100 else f"{s:,.0f} s"


def count(n: float) -> str:
    """``10_000_000 -> "10M"``, ``1_234_567 -> "1.23M"``, ``250_000 -> "250k"``, ``943 -> "943"``."""
    for scale, digits, unit in ((1e6, 2, "M"), (1e3, 1, "k")):
        if n >= scale:
            return f"{n / scale:.{digits}f}".rstrip("0").rstrip(".") + unit
    return f"{n:.0f}"


def rate(n: float) -> str:
    """``38910.2 -> "38.9k/s"``, ``1.5e6 -> "1.50M/s"``, ``512 -> "512/s"``."""
    return f"{n / 1e6:.2f}M/s" if n >= 1e6 else f"{n / 1e3:.1f}k/s" if n >= 1e3 else f"{n:.0f}/s"


def duration(seconds: float) -> str:
    """The largest two units: ``10_000 -> "2 h 47 min"``, ``1_000 -> "16 min 40 s"``, ``42.4 -> "42 s"``."""
    if seconds >= 3600 - 30:  # from an hour on, to the nearest minute
        hours, minutes = divmod(round(seconds / 60), 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    minutes, s = divmod(round(seconds), 60)
    return (f"{minutes} min {s} s" if s else f"{minutes} min") if minutes else f"{s} s"


def load(before: Any, after: Any = None) -> str:
    """1-minute load before → after (two load lists, or a run with ``load_before`` and ``load_after``)."""
    before, after = (before["load_before"], before["load_after"]) if after is None else (before, after)
    return f"{before[0]:.2f} → {after[0]:.2f}"


FILTERS = {"secs": secs, "count": count, "rate": rate, "duration": duration, "load": load, "f": format}
FILTERS["mib"] = lambda mib: "n/a" if mib is None else f"{mib:,.0f} MiB"
FILTERS["metric"] = lambda value: "n/a" if value is None else f"{value:.3f}"
FILTERS["kv"] = lambda params: ", ".join(f"{k} {v:g}" for k, v in params.items())


def render(quick: bool, total_seconds: Optional[float]) -> Path:
    """The plots and ``benchmarks.md`` from the results of one mode (a missing benchmark gets a note)."""
    folder, out = results_dir(quick), WORK / "quick" if quick else ROOT / "docs"
    paths = {name: folder / f"{name}.json" for name in BENCHMARKS}
    docs = {name: json.loads(path.read_text()) for name, path in paths.items() if path.exists()}
    if not docs:
        raise SystemExit(f"no results in {folder}")
    out.mkdir(parents=True, exist_ok=True)
    for name in ("parse_logs", "train", "quality"):
        if name in docs:
            getattr(plots, name)(docs[name], out)
    job = docs.get("train", {"matrices": [{}]})["matrices"][0].get("train_cf_job")
    if job:
        title = f"train_cf job on {count(docs['train']['matrices'][0]['nnz'])} nnz: where the wall time goes"
        plots.breakdown(job["phases_seconds"], title, out / "bench_train_cf_overhead.png")
    run = docs.get("overheads", {}).get("make_run") or docs.get("chain", {}).get("make_run")
    if run:
        title = "make run: where the wall time goes" + ("" if run["kind"] == "e2e" else " (four-job chain)")
        plots.breakdown(run["split"], title, out / "bench_make_run.png")
    investigation = WORK / "results" / "investigation" / "parse_logs.json"  # the memory fix's before/after
    loader = jinja2.FileSystemLoader(Path(__file__).parent / "templates")
    env = jinja2.Environment(loader=loader, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)  # fmt: skip
    env.filters.update(FILTERS)
    page = env.get_template("benchmarks.md.j2").render(
        docs=docs, total_seconds=total_seconds, quick=quick,
        investigation=json.loads(investigation.read_text()) if investigation.exists() else None,
    )  # fmt: skip
    (out / "benchmarks.md").write_text(page)
    print(f"report: {out / 'benchmarks.md'}", flush=True)
    return out / "benchmarks.md"


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, page under var/bench/quick/")
    p.add_argument("--seed", type=int, default=42, help="seed passed to every benchmark")
    p.add_argument("--spark-iterations", type=int, default=None, help="Spark ALS iterations on the largest "
                   f"matrix (default {FULL_SPARK_ITERATIONS}, quick {QUICK_SPARK_ITERATIONS})")  # fmt: skip
    p.add_argument("--report-only", action="store_true", help="only build the page from the mode's results")
    p.add_argument("--total-seconds", type=float, default=None, help="with --report-only: the run's wall")
    args = p.parse_args(argv)
    if args.report_only:
        render(args.quick, args.total_seconds)
        return 0
    shutil.rmtree(results_dir(args.quick), ignore_errors=True)
    common = ["--seed", str(args.seed)] + (["--quick"] if args.quick else [])
    iterations = args.spark_iterations or (QUICK_SPARK_ITERATIONS if args.quick else FULL_SPARK_ITERATIONS)
    started = time.perf_counter()
    for name in BENCHMARKS:
        command = [sys.executable, "-m", f"benchmarks.bench_{name}", *common]
        command += ["--spark-iterations", str(iterations)] if name == "train" else []
        print("$ python " + " ".join(command[1:]), flush=True)
        step = time.perf_counter()
        if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
            print(f"FAILED: {' '.join(command[2:])}", file=sys.stderr)
            return 1
        print(f"  ({time.perf_counter() - step:.0f} s)", flush=True)
    render(args.quick, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
