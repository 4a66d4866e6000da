"""Pipeline overheads: DAG parse time, the fixed cost of a spark-submit and, with ``--make-run e2e``,
``make run`` (the DAG on the local stack) split into set-up, Airflow, Spark start-up and Spark work.

    python -m benchmarks.bench_overheads [--quick] [--repeats 3] [--make-run e2e|none]

The e2e run uses the benchmark's own ports and state folder (``E2E_ENV``; opt-in: it shares
``var/airflow``). Without it the page's "make run" is the four-job chain, timed by bench_chain.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

from benchmarks import common as c

DAG_PARSE = """import sys, time, json
t0 = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
t1 = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
t2 = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
t3 = time.perf_counter()
print("BENCH " + json.dumps({"airflow_import_s": t1 - t0, "first_parse_s": t2 - t1, "warm_parse_s": t3 - t2,
      "errors": len(bag.import_errors), "dags": sorted(bag.dag_ids)}))
"""
STEP_ROW = re.compile(r"^\s{2}(\S+)\s+[A-Z_]+\s+(\d+(?:\.\d+)?)\s*$")  # "  train_cf  COMPLETED  40.0"
WALL_PART = re.compile(r"(?:^|, )(.+?) (\d+(?:\.\d+)?) s(?=,|$)")  # "-- wall time: a 1.0 s, b 2.0 s"
# The end-to-end make run on its own ports and state folder: never a stack another checkout has up.
E2E_ENV = {"LOCALSTACK_PORT": "4766", "LOCAL_EMR_PORT": "4780", "LOCAL_AWS_STATE_DIR": "var/bench/localstack"}


def local_run_timings(lines: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """make run's own summary: ``wall`` (its "-- wall time:" parts) and ``steps`` (the rows under
    "-- EMR steps", up to the next blank, ``--`` or ``==`` line), seconds by name."""
    wall = next((x[len("-- wall time: ") :] for x in lines if x.startswith("-- wall time: ")), "")
    start = next((i + 1 for i, x in enumerate(lines) if x.startswith("-- EMR steps")), len(lines))
    rows = itertools.takewhile(lambda x: x.strip() and x[:2] not in ("--", "=="), lines[start:])
    steps = {m[1]: float(m[2]) for m in map(STEP_ROW.match, rows) if m}
    return {"wall": {m[1]: float(m[2]) for m in WALL_PART.finditer(wall)}, "steps": steps}


def split_e2e_run(wall: float, loaded_at: float, summary_at: float, timings: Dict, fixed: float) -> List:
    """The end-to-end make run: set-up until the "loaded" line plus the Airflow DB reset; the EMR steps'
    durations (``fixed`` per step as Spark's fixed cost); Airflow, the rest until the summary."""
    steps, setup = sum(timings["steps"].values()), loaded_at + timings["wall"].get("airflow db reset", 0.0)
    startup = min(fixed * len(timings["steps"]), steps)
    return [["set-up (make prerequisites, local stack up, load data + deploy code, airflow db reset)", setup],
            ["Airflow (dags test scheduling, sensors, EMR calls; summary queries)",
             max(0.0, summary_at - setup - steps)],
            ["Spark fixed cost (empty spark-submit: start, first action, stop; x steps)", startup],
            ["Spark work (EMR step durations minus the fixed cost)", steps - startup],
            ["other (summary, stack down)", max(0.0, wall - summary_at)]]  # fmt: skip


def make_run_e2e(fixed: float) -> Dict[str, Any]:
    """``make run`` (the DAG on the local stack) once, on the benchmark's own ports; stamped output."""
    run = {"kind": "e2e", "command": "make run (" + " ".join(f"{k}={v}" for k, v in E2E_ENV.items()) + ")"}
    command, env = ["make", "--no-print-directory", "run"], {**os.environ, **E2E_ENV}
    run["load_before"], started = c.load_avg(), time.perf_counter()
    out = subprocess.Popen(command, cwd=c.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    stamped = [(time.perf_counter() - started, x.decode(errors="replace").rstrip()) for x in out.stdout or ()]
    lines = [line for _, line in stamped]
    if out.wait() != 0:
        raise RuntimeError("make run failed:\n" + "\n".join(lines[-25:]))
    run["wall_s"] = time.perf_counter() - started
    run["loaded_at_s"] = next(t for t, x in stamped if x.startswith("loaded ") and "deployed code" in x)
    run["summary_at_s"] = next(t for t, x in stamped if x.startswith("== recsys_training"))
    run["timings"] = local_run_timings(lines)
    keys = ("wall_s", "loaded_at_s", "summary_at_s", "timings")
    run["split"] = split_e2e_run(*(run[k] for k in keys), fixed)
    summary = lines[next(i for i, x in enumerate(lines) if x.startswith("== recsys_training")) :][:60]
    return {**run, "summary": summary, "load_after": c.load_avg()}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = c.parser(__doc__, "overheads")
    p.add_argument("--repeats", type=int, default=None, help="DAG parses and empty jobs (3, quick 1)")
    p.add_argument("--make-run", choices=("e2e", "none"), default="none", help="e2e: also time make run, the "
                   "DAG on the local stack (needs a quiet checkout)")  # fmt: skip
    args, doc = c.begin("overheads", p, argv)
    repeats = args.repeats or (1 if args.quick else 3)
    print("overheads bench: DAG parse ...", flush=True)
    dag, parses, load_before = c.ROOT / "dags" / "recsys_training.py", [], c.load_avg()
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW_VAR_RECSYS_TRAINING_CONFIG"}
    env.update(AIRFLOW__CORE__DAGS_FOLDER=str(dag.parent), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    for _ in range(repeats):  # a fresh interpreter each: Airflow import, a first and a warm parse
        env.update(PYTHONPATH=str(dag.parent), AIRFLOW_HOME=tempfile.mkdtemp(prefix="bench-airflow-"))
        started, command = time.perf_counter(), [sys.executable, "-c", DAG_PARSE, str(dag)]
        out = subprocess.run(command, capture_output=True, text=True, cwd=c.ROOT, env=env, check=False)
        line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH ")), None)
        if out.returncode != 0 or line is None:
            raise RuntimeError(f"DAG parse failed: {out.stderr[-2000:]}")
        parses.append({**json.loads(line[len("BENCH ") :]), "process_wall_s": time.perf_counter() - started})
    median = {k: statistics.median(r[k] for r in parses) for k in parses[0] if k.endswith("_s")}
    doc["dag_parse"] = {"repeats": parses, "median": median, "load_before": load_before}
    doc["dag_parse"]["load_after"] = c.load_avg()
    print("overheads bench: empty spark-submit ...", flush=True)
    empties = [c.empty_job(args.work / f"empty_job-{i}.log") for i in range(repeats)]
    keys = {"wall_s": "wall_seconds", "peak_rss_mib": "peak_rss_mib"}
    keys.update(session_ready_s="session_ready_seconds", action_done_s="action_done_seconds")
    median = {k: statistics.median(e[v] for e in empties) for k, v in keys.items()}
    doc["empty_job"] = {"repeats": empties, "median": median}
    if args.make_run == "e2e":
        print("overheads bench: make run (the DAG on the local stack) ...", flush=True)
        try:
            doc["make_run"] = make_run_e2e(median["wall_s"])
        except (RuntimeError, StopIteration) as exc:  # the page shows bench_chain's chain instead
            print(f"overheads bench: make run failed: {exc}", flush=True)
            doc["make_run_error"] = str(exc)[-3000:]
    return c.save(doc, args)


if __name__ == "__main__":
    sys.exit(main())
