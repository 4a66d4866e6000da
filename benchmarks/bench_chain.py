"""The four-job chain on MovieLens-100K against four empty spark-submits, in the same round; where each job's
time goes, from Spark's event log; and the chain as ``make run-chain`` runs it (make's set-up prerequisites,
then the jobs) split into set-up, Spark's fixed cost and Spark work (the page's "make run"). Last round.

    python -m benchmarks.bench_chain [--repeats 2] [--seed 42] [--quick]

Event-log split, in seconds: ``startup`` (process start to SparkContext start), ``spark_actions`` (the
union of SQL executions and of jobs outside any; a write's end includes its commit), ``driver`` (the rest
while the context is up: imports, the implicit fit, planning, small-file I/O), ``shutdown`` (context end
to process exit).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from benchmarks import common as c
from tools.local.run_chain import run_chain


def _short(site: str) -> str:
    """``count at /x/job.py:12`` -> ``count at job.py:12``; py4j's call site shows as the bare action."""
    name, _, where = site.partition(" at ")
    py4j = not where or where.startswith("NativeMethodAccessorImpl")
    return name if py4j else f"{name} at {where.rsplit('/', 1)[-1]}"


def read_event_log(path: Path) -> Dict[str, Any]:
    """An uncompressed event log's application start/end (epoch ms) and actions in start order, each
    ``{description, start_ms, end_ms, jobs, tasks}``."""
    app: Dict[str, int] = {}
    sql: Dict[int, Dict[str, Any]] = {}
    loose: Dict[int, Dict[str, Any]] = {}  # jobs outside any SQL execution
    jobs: Dict[int, tuple] = {}  # job -> (SQL execution id or None, stage ids)
    stage_tasks: Dict[int, int] = {}
    for e in map(json.loads, path.read_text(encoding="utf-8").splitlines()):
        kind = e["Event"]
        if kind in ("SparkListenerApplicationStart", "SparkListenerApplicationEnd"):
            app[kind[len("SparkListenerApplication") :]] = e["Timestamp"]
        elif kind.endswith("SQLExecutionStart"):
            sql[e["executionId"]] = {"description": _short(e["description"]), "start_ms": e["time"]}
        elif kind.endswith("SQLExecutionEnd"):
            sql[e["executionId"]]["end_ms"] = e["time"]
        elif kind == "SparkListenerJobStart":
            props, job = e.get("Properties", {}), e["Job ID"]
            execution = props.get("spark.sql.execution.id")
            stages = [stage["Stage ID"] for stage in e["Stage Infos"]]
            jobs[job] = (None if execution is None else int(execution), stages)
            if execution is None:
                loose[job] = {"description": _short(props.get("callSite.short") or "job"),
                              "start_ms": e["Submission Time"]}  # fmt: skip
        elif kind == "SparkListenerStageCompleted" and "Completion Time" in e["Stage Info"]:  # it ran
            stage_tasks[e["Stage Info"]["Stage ID"]] = e["Stage Info"]["Number of Tasks"]
        elif kind == "SparkListenerJobEnd" and e["Job ID"] in loose:
            loose[e["Job ID"]]["end_ms"] = e["Completion Time"]
    if len(app) < 2:
        raise ValueError(f"{path}: no application start/end (did the job finish?)")
    for action in [*sql.values(), *loose.values()]:
        action.update(jobs=0, tasks=0, end_ms=action.get("end_ms", action["start_ms"]))
    for job, (execution, stages) in jobs.items():
        action = loose.get(job) if execution is None else sql.get(execution)
        if action is not None:
            action["jobs"] += 1
            action["tasks"] += sum(stage_tasks.get(stage, 0) for stage in stages)
    actions = sorted([*sql.values(), *loose.values()], key=lambda a: a["start_ms"])
    return {"start_ms": app["Start"], "end_ms": app["End"], "actions": actions}


def breakdown(log: Dict[str, Any], process_start_ms: int, process_end_ms: int) -> Dict[str, Any]:
    """The split of the module docstring, and ``actions``: description -> {count, seconds, tasks}."""
    grouped: Dict[str, Dict[str, Any]] = {}
    covered, reach = 0, None  # milliseconds in the union of the actions' (overlapping) intervals
    for a in log["actions"]:
        entry = grouped.setdefault(a["description"], {"count": 0, "seconds": 0.0, "tasks": 0})
        entry.update(count=entry["count"] + 1, tasks=entry["tasks"] + a["tasks"])
        entry["seconds"] = round(entry["seconds"] + (a["end_ms"] - a["start_ms"]) / 1000.0, 3)
        covered += max(0, a["end_ms"] - (a["start_ms"] if reach is None else max(a["start_ms"], reach)))
        reach = a["end_ms"] if reach is None else max(reach, a["end_ms"])
    ms = {"wall": process_end_ms - process_start_ms, "startup": log["start_ms"] - process_start_ms,
          "spark_actions": covered, "driver": log["end_ms"] - log["start_ms"] - covered,
          "shutdown": process_end_ms - log["end_ms"]}  # fmt: skip
    split = {key: round(value / 1000.0, 3) for key, value in ms.items()}
    tasks = sum(a["tasks"] for a in log["actions"])
    return {**split, "action_count": len(log["actions"]), "tasks": tasks, "actions": grouped}


def split_make_run(wall: float, first_job_at: Optional[float], jobs: Dict[str, float], fixed: float) -> List:
    """The chain's wall as ``[label, seconds]`` parts: set-up until the first spark-submit, the empty job's
    wall per job as Spark's fixed cost, the rest of the job walls as Spark work, and the remainder."""
    setup, spark = first_job_at or 0.0, sum(jobs.values())
    startup = min(fixed * len(jobs), spark)
    return [["set-up (make prerequisites, code bundle)", setup], ["Airflow (none in the chain)", 0],
            ["Spark fixed cost (empty spark-submit: start, first action, stop; x jobs)", startup],
            ["Spark work (job walls minus the fixed cost)", spark - startup],
            ["other (between jobs)", max(0.0, wall - setup - spark)]]  # fmt: skip


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = c.parser(__doc__, "chain")
    p.add_argument("--repeats", type=int, default=None, help="empty x4 + chain rounds (default 2, quick 1)")
    args, doc = c.begin("chain", p, argv)
    if not c.MOVIELENS_RAW.is_dir():
        print(f"ERROR: no MovieLens raw data at {c.MOVIELENS_RAW}: run make data-movielens", file=sys.stderr)
        return 2
    os.environ.update(c.spark_env())  # run_chain's spark-submits inherit it
    work, empty_logs, doc["rounds"] = args.work / "run", c.mkdir(args.work / "empty"), []
    for index in range(args.repeats or (1 if args.quick else 2)):
        round_ = {"load_before": c.load_avg(), "empty_walls": []}
        print(f"chain bench: round {index + 1}: four empty spark-submits, then the chain ...", flush=True)
        for n in range(4):  # plain subprocesses: no sampling thread competing with them
            started = time.perf_counter()
            with open(empty_logs / f"empty-{n}.log", "w") as log:
                subprocess.run(["spark-submit", str(c.EMPTY_JOB)], stdout=log, stderr=log, check=True)
            round_["empty_walls"].append(time.perf_counter() - started)
        shutil.rmtree(work, ignore_errors=True)
        started, started_ms, load_before = time.perf_counter(), time.time() * 1000, c.load_avg()
        make = ["make", "--no-print-directory", "setup", "data-movielens"]  # make run-chain's prerequisites
        subprocess.run(make, cwd=c.ROOT, check=True, capture_output=True)
        setup_s = time.perf_counter() - started
        # the DAG's steps with the local stack's config, implicit, as make run-chain runs them
        result = run_chain(c.MOVIELENS_RAW, work, c.RUN_DATE, ["implicit"], event_logs=work / "eventlogs")
        wall = time.perf_counter() - started
        first_job_at = (min(start for start, _ in result.spans.values()) - started_ms) / 1000
        round_.update(chain_walls=dict(result.timings), chain_total=sum(result.timings.values()))
        round_.update(ratio=round_["chain_total"] / sum(round_["empty_walls"]), load_after=c.load_avg())
        doc["rounds"].append(round_)
        print(f"chain bench: chain {round_['chain_total']:.1f} s, ratio {round_['ratio']:.2f}", flush=True)
    command = " ".join(make[2:]) + "; tools.local.run_chain (implicit)"
    run = {"kind": "chain", "command": command, "wall_s": wall}
    run.update(make_setup_s=setup_s, first_job_at_s=first_job_at, jobs_s=round_["chain_walls"])
    run.update(load_before=load_before, load_after=round_["load_after"])
    fixed = statistics.median(round_["empty_walls"])  # this round's empty spark-submits
    doc["make_run"] = {**run, "split": split_make_run(wall, first_job_at, run["jobs_s"], fixed)}
    doc["breakdown"] = {
        label: breakdown(read_event_log(next((work / "eventlogs" / label).iterdir())), start_ms, end_ms)
        for label, (start_ms, end_ms) in result.spans.items()
    }
    doc["metrics"] = result.metrics
    doc["median_ratio"] = statistics.median(r["ratio"] for r in doc["rounds"])
    doc["median_empty_wall"] = statistics.median(w for r in doc["rounds"] for w in r["empty_walls"])
    doc["median_chain_total"] = statistics.median(r["chain_total"] for r in doc["rounds"])
    return c.save(doc, args)


if __name__ == "__main__":
    sys.exit(main())
