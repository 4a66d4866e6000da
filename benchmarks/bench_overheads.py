"""Pipeline overheads: DAG parse time, the fixed cost of a spark-submit, and ``make run`` split into
set-up, Airflow, Spark start-up and Spark work.

    python -m benchmarks.bench_overheads [--quick] [--repeats 3] [--make-run chain|e2e|none]

``make run`` is by default the four-job chain (``make run-chain``); ``e2e`` times the DAG on the local
stack on the benchmark's own ports (``E2E_ENV``; opt-in: it shares ``var/airflow``), falling back to
the chain if it fails.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

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
SECONDS = r"(\d+(?:\.\d+)?)"
JOB_ROW = re.compile(rf"^\s{{2}}(\S+)\s+{SECONDS}\s*$")  # run_chain: "  parse_logs  21.5"
STEP_ROW = re.compile(rf"^\s{{2}}(\S+)\s+[A-Z_]+\s+{SECONDS}\s*$")  # local_run: "  train_cf  COMPLETED  40.0"
WALL_PART = re.compile(rf"(?:^|, )(.+?) {SECONDS} s(?=,|$)")  # local_run: "-- wall time: a 1.0 s, b 2.0 s"
# The end-to-end make run on its own ports and state folder: never a stack another checkout has up.
E2E_ENV = {"LOCALSTACK_PORT": "4766", "LOCAL_EMR_PORT": "4780", "LOCAL_AWS_STATE_DIR": "var/bench/localstack"}
Parts = List[Tuple[str, float]]


def rows_under(lines: Sequence[str], heading: str, row: re.Pattern) -> Dict[str, float]:
    """``{name: seconds}`` of the ``row`` lines under the first line starting with ``heading``, up to the
    next blank, ``--`` or ``==`` line."""
    out: Dict[str, float] = {}
    inside = False
    for line in lines:
        if inside and (not line.strip() or line.startswith(("--", "=="))):
            break
        match = row.match(line) if inside else None
        if match:
            out[match.group(1)] = float(match.group(2))
        inside = inside or line.startswith(heading)
    return out


def job_times(lines: Sequence[str]) -> Dict[str, float]:
    return {k: v for k, v in rows_under(lines, "== wall time per job", JOB_ROW).items() if k != "total"}


def local_run_timings(lines: Sequence[str]) -> Dict[str, Dict[str, float]]:
    wall = next((x[len("-- wall time: ") :] for x in lines if x.startswith("-- wall time: ")), "")
    steps = rows_under(lines, "-- EMR steps", STEP_ROW)
    return {"wall": {m[1]: float(m[2]) for m in WALL_PART.finditer(wall)}, "steps": steps}


def split_make_run(wall: float, first_job_at: Optional[float], jobs: Dict[str, float], fixed: float):
    """The chain's wall: set-up until the first spark-submit, the empty job's wall per job as Spark's
    fixed cost, the rest of the job walls as Spark work, and the remainder."""
    setup, spark = first_job_at or 0.0, sum(jobs.values())
    startup = min(fixed * len(jobs), spark)
    return [("set-up (make prerequisites, interpreter, imports)", setup), ("Airflow (none in the chain)", 0),
            ("Spark fixed cost (empty spark-submit: start, first action, stop; x jobs)", startup),
            ("Spark work (job walls minus the fixed cost)", spark - startup),
            ("other (between jobs, report, exit)", max(0.0, wall - setup - spark))]  # fmt: skip


def split_e2e_run(wall: float, loaded_at: float, summary_at: float, timings: Dict, fixed: float) -> Parts:
    """The end-to-end make run: set-up until the "loaded" line plus the Airflow DB reset; the EMR steps'
    durations (``fixed`` per step as Spark's fixed cost); Airflow, the rest until the summary."""
    steps, setup = sum(timings["steps"].values()), loaded_at + timings["wall"].get("airflow db reset", 0.0)
    startup = min(fixed * len(timings["steps"]), steps)
    return [("set-up (make prerequisites, local stack up, load data + deploy code, airflow db reset)", setup),
            ("Airflow (dags test scheduling, sensors, EMR calls; summary queries)",
             max(0.0, summary_at - setup - steps)),
            ("Spark fixed cost (empty spark-submit: start, first action, stop; x steps)", startup),
            ("Spark work (EMR step durations minus the fixed cost)", steps - startup),
            ("other (summary, stack down)", max(0.0, wall - summary_at))]  # fmt: skip


def stamped(command: List[str], env: Mapping[str, str], started: float) -> Tuple[list, float]:
    """Run ``command``: its output lines, each with seconds since ``started``, and the seconds at exit."""
    out = subprocess.Popen(command, cwd=c.ROOT, env={**env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = [(time.perf_counter() - started, x.decode(errors="replace").rstrip()) for x in out.stdout or ()]
    if out.wait() != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed:\n" + "\n".join(x for _, x in lines[-25:]))
    return lines, time.perf_counter() - started


def make_run_chain(work: Path, fixed: float) -> Dict[str, Any]:
    """make's set-up prerequisites, then ``tools.run_chain`` as ``make run-chain`` runs it (what make run
    was before the end-to-end issue), outputs under ``work``; stamped output."""
    env, run, started = c.spark_env(), {"kind": "chain", "load_before": c.load_avg()}, time.perf_counter()
    make = ["make", "--no-print-directory", "setup", "data-movielens"]
    subprocess.run(make, cwd=c.ROOT, env=env, check=True, capture_output=True)
    run["make_setup_s"] = time.perf_counter() - started
    chain = ["-m", "tools.run_chain", "--raw", str(c.MOVIELENS_RAW), "--work", str(work), "--run-date"]
    chain += [c.RUN_DATE, "--engines", "implicit"]
    lines, run["wall_s"] = stamped([c.PYTHON, *chain], env, started)
    run.update(command=" ".join(make[2:]) + "; " + " ".join(chain), jobs_s=job_times([x for _, x in lines]))
    run["first_job_at_s"] = next((t for t, line in lines if line.startswith("$ spark-submit")), None)
    run["split"] = split_make_run(run["wall_s"], run["first_job_at_s"], run["jobs_s"], fixed)
    return {**run, "load_after": c.load_avg()}


def make_run_e2e(fixed: float) -> Dict[str, Any]:
    """``make run`` (the DAG on the local stack) once, on the benchmark's own ports; stamped output."""
    run = {"kind": "e2e", "command": "make run (" + " ".join(f"{k}={v}" for k, v in E2E_ENV.items()) + ")"}
    run["load_before"], started = c.load_avg(), time.perf_counter()
    out, run["wall_s"] = stamped(["make", "--no-print-directory", "run"], {**os.environ, **E2E_ENV}, started)
    lines = [line for _, line in out]
    run["loaded_at_s"] = next(t for t, x in out if x.startswith("loaded ") and "deployed code" in x)
    run["summary_at_s"] = next(t for t, x in out if x.startswith("== recsys_training"))
    run["timings"] = local_run_timings(lines)
    keys = ("wall_s", "loaded_at_s", "summary_at_s", "timings")
    run["split"] = split_e2e_run(*(run[k] for k in keys), fixed)
    summary = lines[next(i for i, x in enumerate(lines) if x.startswith("== recsys_training")) :][:60]
    return {**run, "summary": summary, "load_after": c.load_avg()}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = c.parser(__doc__)
    p.add_argument("--repeats", type=int, default=None, help="repeats for DAG parse and empty job")
    p.add_argument("--make-run", choices=("chain", "e2e", "none"), default=None, help="what to time as make "
                   "run: the four-job chain (default), the DAG on the local stack (needs a quiet checkout; "
                   "falls back to the chain), or nothing (the default with --quick)")  # fmt: skip
    p.add_argument("--work", type=Path, default=c.WORK / "overheads", help="logs and make run outputs")
    args = p.parse_args(argv)
    repeats, doc = args.repeats or (1 if args.quick else 3), c.begin("overheads", args)
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
    which, fixed = args.make_run or ("none" if args.quick else "chain"), median["wall_s"]
    if which == "e2e":
        print("overheads bench: make run (the DAG on the local stack) ...", flush=True)
        try:
            doc["make_run"] = make_run_e2e(fixed)
        except (RuntimeError, StopIteration) as exc:
            print(f"overheads bench: make run failed, timing the four-job chain instead: {exc}", flush=True)
            doc["make_run_error"], which = str(exc)[-3000:], "chain"
    if which == "chain":
        print("overheads bench: the four-job chain ...", flush=True)
        doc["make_run"] = make_run_chain(args.work / "chain", fixed)
    c.save(doc, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
