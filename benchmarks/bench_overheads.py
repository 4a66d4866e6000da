"""Pipeline overheads: DAG parse time, the fixed cost of a spark-submit, and ``make run`` split into
set-up, Airflow, Spark start-up and Spark work.

    python -m benchmarks.bench_overheads [--seed 42] [--quick] [--repeats 3]

- DAG parse: a fresh interpreter imports Airflow and parses ``dags/recsys_training.py`` with a DagBag
  (cold: what a new parsing process pays, Airflow import included), then parses it again (warm: what
  the scheduler's DAG processor pays every 30 s). Median of ``--repeats`` processes.
- Spark start-up: ``benchmarks/workers/empty_job.py`` (session start, one trivial action, stop) through
  spark-submit, median of ``--repeats``: every job pays this.
- ``make run`` (full mode; ``--make-run``): by default the four-job chain (``tools.run_chain`` with the
  arguments make run used before the end-to-end issue; ``make run-chain`` now), stamped: set-up =
  make's prerequisites plus the runner's start until the first spark-submit, Spark = each job's wall
  (the empty job's median wall per job counted as start-up), Airflow = 0. ``--make-run e2e`` times the
  end-to-end ``make run`` (the DAG on the local stack, ``tools.local_run``) on the benchmark's own
  ports and state folder (``E2E_ENV``), from its stamped output and its own summary: set-up = until
  the data is loaded and the code deployed, plus ``airflow db migrate``; Spark = the EMR steps'
  durations; Airflow = the rest of ``airflow dags test`` and the summary's CLI queries. It is opt-in
  because it shares ``var/airflow`` with any other ``make run`` of the checkout; if it fails, the chain
  is timed instead and the page says so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from benchmarks.env import ROOT, WORK, load_avg, spark_env
from benchmarks.procmon import MIB, run_monitored
from benchmarks.results import Recorder, add_common_args

DAG_PARSE_CODE = """
import sys, time, json
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
JOB_TIME = re.compile(r"^\s{2}(\S+)\s+(\d+(?:\.\d+)?)\s*$")
SECTION_ROW = re.compile(r"^\s{2}(.+?)\s+(\d+(?:\.\d+)?)\s*$")
STEP_ROW = re.compile(r"^\s{2}(\S+)\s+([A-Z_]+)\s+(\d+(?:\.\d+)?)\s*$")


def section(lines: Sequence[str], title: str) -> List[str]:
    """The lines under ``-- <title> --`` in local_run's summary, up to the next ``--``/``==`` heading."""
    out: List[str] = []
    inside = False
    for line in lines:
        if line.startswith("-- " + title):
            inside = True
            continue
        if inside:
            if line.startswith(("--", "==")) or not line.strip():
                break
            out.append(line)
    return out


def local_run_timings(lines: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """``make run``'s (tools.local_run) summary -> ``{"wall": {phase: s}, "steps": {step: s}}``."""
    wall = {}
    for line in section(lines, "wall time"):
        match = SECTION_ROW.match(line)
        if match:
            wall[match.group(1).strip()] = float(match.group(2))
    steps = {}
    for line in section(lines, "EMR steps"):
        match = STEP_ROW.match(line)
        if match:
            steps[match.group(1)] = float(match.group(3))
    return {"wall": wall, "steps": steps}


def split_e2e_run(
    wall: float, loaded_at: float, summary_at: float, timings: Dict[str, Dict[str, float]], fixed: float
) -> List[Tuple[str, float]]:
    """The end-to-end ``make run`` -> [(part, seconds)] adding up to ``wall``.

    set-up: make's prerequisites, stack start, data load + code deploy (until the "loaded" line at
    ``loaded_at``) and ``airflow db migrate``; Spark: the EMR steps' own durations, ``fixed`` per step
    counted as start-up; Airflow: the rest of ``airflow dags test`` and the CLI queries of the summary
    (until ``summary_at``); other: printing the summary and stopping the stack.
    """
    migrate = timings["wall"].get("airflow db migrate", 0.0)
    steps = sum(timings["steps"].values())
    startup = min(fixed * len(timings["steps"]), steps)
    setup = loaded_at + migrate
    airflow = max(0.0, summary_at - setup - steps)
    return [
        ("set-up (make prerequisites, local stack up, load data + deploy code, airflow db migrate)", setup),
        ("Airflow (dags test scheduling, sensors, EMR calls; summary queries)", airflow),
        ("Spark fixed cost (empty spark-submit: start, first action, stop; x steps)", startup),
        ("Spark work (EMR step durations minus the fixed cost)", steps - startup),
        ("other (summary, stack down)", max(0.0, wall - summary_at)),
    ]


def dag_parse_once(dag_file: Path) -> Dict[str, Any]:
    """One fresh process: Airflow import, first parse and a warm re-parse of ``dag_file`` (seconds)."""
    home = tempfile.mkdtemp(prefix="bench-airflow-")
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__DAGS_FOLDER": str(dag_file.parent),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONPATH": str(dag_file.parent),
        }
    )
    env.pop("AIRFLOW_VAR_RECSYS_TRAINING_CONFIG", None)
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", DAG_PARSE_CODE, str(dag_file)],
        capture_output=True, text=True, env=env, cwd=ROOT, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"DAG parse failed: {out.stderr[-2000:]}")
    record = json.loads(line[len("BENCH ") :])
    record["process_wall_s"] = wall
    return record


def median_of(rows: List[Dict[str, Any]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def dag_parse(repeats: int) -> Dict[str, Any]:
    dag_file = ROOT / "dags" / "recsys_training.py"
    load_before = load_avg()
    rows = [dag_parse_once(dag_file) for _ in range(repeats)]
    return {
        "repeats": rows,
        "median": {k: median_of(rows, k) for k in ("airflow_import_s", "first_parse_s", "warm_parse_s",
                                                    "process_wall_s")},
        "load_before": load_before,
        "load_after": load_avg(),
    }  # fmt: skip


def empty_jobs(repeats: int, work: Path) -> Dict[str, Any]:
    rows = []
    for index in range(repeats):
        result = run_monitored(
            ["spark-submit", str(ROOT / "benchmarks" / "workers" / "empty_job.py")],
            cwd=ROOT, env=spark_env(), log_path=work / f"empty_job-{index}.log",
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"empty spark-submit failed; log in {work}")
        rows.append(
            {
                "wall_s": result.seconds,
                "session_ready_s": result.first_line_at("BENCH session_ready"),
                "action_done_s": result.first_line_at("BENCH action_done"),
                "peak_rss_mib": result.peak_rss_bytes / MIB,
                "load_before": list(result.load_before),
                "load_after": list(result.load_after),
            }
        )
    keys = ("wall_s", "session_ready_s", "action_done_s", "peak_rss_mib")
    return {"repeats": rows, "median": {k: median_of(rows, k) for k in keys}}


def job_times(lines: Sequence[str]) -> Dict[str, float]:
    """run_chain's "wall time per job" table -> ``{step: seconds}`` (the ``total`` row excluded)."""
    times: Dict[str, float] = {}
    inside = False
    for line in lines:
        if line.startswith("== wall time per job"):
            inside = True
            continue
        if inside:
            match = JOB_TIME.match(line)
            if not match:
                break
            if match.group(1) != "total":
                times[match.group(1)] = float(match.group(2))
    return times


def split_make_run(
    wall: float, first_job_at: Optional[float], jobs: Dict[str, float], startup: float
) -> List[Tuple[str, float]]:
    """``make run`` wall seconds -> [(part, seconds)]: set-up (until the first spark-submit), Airflow
    (none in make run yet), Spark start-up (``startup`` per job), Spark work (the rest of the job walls),
    and the remainder (report printing, make's own exit)."""
    setup = first_job_at if first_job_at is not None else 0.0
    spark_total = sum(jobs.values())
    spark_startup = min(startup * len(jobs), spark_total)
    return [
        ("set-up (make prerequisites, interpreter, imports)", setup),
        ("Airflow (none in the chain)", 0.0),
        ("Spark fixed cost (empty spark-submit: start, first action, stop; x jobs)", spark_startup),
        ("Spark work (job walls minus the fixed cost)", spark_total - spark_startup),
        ("other (between jobs, report, exit)", max(0.0, wall - setup - spark_total)),
    ]


RUN_DATE = "1998-04-22"  # the Makefile's RUN_DATE: MovieLens-100K's last day


def make_run(work: Path) -> Dict[str, Any]:
    """The chain ``make run`` runs (before the end-to-end issue), once, outputs under ``work``: make's
    set-up prerequisites, then ``tools.run_chain`` with make run's arguments, stdout stamped by line."""
    env = spark_env()
    load_before = load_avg()
    started = time.perf_counter()
    subprocess.run(
        ["make", "--no-print-directory", "setup", "data-movielens"],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    setup_s = time.perf_counter() - started
    chain = [
        sys.executable, "-m", "tools.run_chain",
        "--raw", str(ROOT / "data" / "movielens" / "raw"), "--work", str(work),
        "--run-date", RUN_DATE, "--engines", "implicit", "--features-args", "--half-life-days 0",
    ]  # fmt: skip
    proc = subprocess.Popen(
        chain, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    stamped: List[Tuple[float, str]] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        stamped.append((time.perf_counter() - started, line.rstrip("\n")))
    code = proc.wait()
    wall = time.perf_counter() - started
    if code != 0:
        raise RuntimeError("the chain failed:\n" + "\n".join(line for _, line in stamped[-20:]))
    first_job = next((t for t, line in stamped if line.startswith("$ spark-submit")), None)
    return {
        "command": "make setup data-movielens; " + " ".join(chain[1:]),
        "make_setup_s": setup_s,
        "wall_s": wall,
        "first_job_at_s": first_job,
        "jobs_s": job_times([line for _, line in stamped]),
        "load_before": load_before,
        "load_after": load_avg(),
        "output_tail": [line for _, line in stamped if line.strip()][-40:],
    }


# The end-to-end make run on its own ports and state folder: it must never touch a stack that another
# checkout (a concurrent test or CI run on this machine) has up on the default ports.
E2E_ENV = {"LOCALSTACK_PORT": "4766", "LOCAL_EMR_PORT": "4780", "LOCAL_AWS_STATE_DIR": "var/bench/localstack"}


def make_run_e2e(fixed: float) -> Dict[str, Any]:
    """``make run`` (the DAG on the local stack) once, on the benchmark's own ports; stamped output."""
    env = {**os.environ, **E2E_ENV}
    load_before = load_avg()
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    stamped: List[Tuple[float, str]] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        stamped.append((time.perf_counter() - started, line.rstrip("\n")))
    code = proc.wait()
    wall = time.perf_counter() - started
    lines = [line for _, line in stamped]
    if code != 0:
        raise RuntimeError("make run failed:\n" + "\n".join(lines[-25:]))
    loaded_at = next(t for t, line in stamped if line.startswith("loaded ") and "deployed code" in line)
    summary_at = next(t for t, line in stamped if line.startswith("== recsys_training"))
    timings = local_run_timings(lines)
    return {
        "kind": "e2e",
        "command": "make run (" + " ".join(f"{k}={v}" for k, v in E2E_ENV.items()) + ")",
        "wall_s": wall,
        "loaded_at_s": loaded_at,
        "summary_at_s": summary_at,
        "timings": timings,
        "split": split_e2e_run(wall, loaded_at, summary_at, timings, fixed),
        "load_before": load_before,
        "load_after": load_avg(),
        "summary": lines[lines.index(next(x for x in lines if x.startswith("== recsys_training"))) :][:60],
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--repeats", type=int, default=None, help="repeats for DAG parse and empty job")
    parser.add_argument(
        "--make-run",
        choices=("chain", "e2e", "none"),
        default=None,
        help="what to time as make run: the four-job chain (default), the end-to-end DAG on the local "
        "stack (needs a quiet checkout: it shares var/airflow with any other make run; falls back to the "
        "chain if it fails), or nothing (the default with --quick)",
    )
    parser.add_argument("--work", type=Path, default=WORK / "overheads", help="logs and make run outputs")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    recorder = Recorder("overheads", args)
    args.work.mkdir(parents=True, exist_ok=True)
    print("overheads bench: DAG parse ...", flush=True)
    recorder["dag_parse"] = dag_parse(repeats)
    print("overheads bench: empty spark-submit ...", flush=True)
    empty = empty_jobs(repeats, args.work)
    recorder["empty_job"] = empty
    which = args.make_run or ("none" if args.quick else "chain")
    fixed = empty["median"]["wall_s"]
    if which == "e2e":
        print("overheads bench: make run (the DAG on the local stack) ...", flush=True)
        try:
            recorder["make_run"] = make_run_e2e(fixed)
        except (RuntimeError, StopIteration) as exc:
            print(f"overheads bench: make run failed, timing the four-job chain instead: {exc}", flush=True)
            recorder["make_run_error"] = str(exc)[-3000:]
            which = "chain"
    if which == "chain":
        print("overheads bench: the four-job chain ...", flush=True)
        run = make_run(args.work / "chain")
        run["kind"] = "chain"
        run["split"] = split_make_run(run["wall_s"], run["first_job_at_s"], run["jobs_s"], fixed)
        recorder["make_run"] = run
    recorder.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
