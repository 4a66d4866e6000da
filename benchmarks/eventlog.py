"""Where a spark-submit's time went, from Spark's event log (``spark.eventLog.enabled``), in seconds:
``startup`` (process start to SparkContext start), the Spark actions (SQL executions, and jobs outside
any; a write's end includes its commit), ``driver`` (the rest while the context is up: imports, the
implicit fit, planning, small-file I/O) and ``shutdown`` (context end to process exit)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional


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
    job_execution: Dict[int, Optional[int]] = {}
    job_stages: Dict[int, List[int]] = {}
    stage_tasks: Dict[int, int] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        e = json.loads(line)
        kind = e["Event"]
        if kind in ("SparkListenerApplicationStart", "SparkListenerApplicationEnd"):
            app[kind[len("SparkListenerApplication") :]] = e["Timestamp"]
        elif kind.endswith("SQLExecutionStart"):
            sql[e["executionId"]] = {"description": _short(e["description"]), "start_ms": e["time"]}
        elif kind.endswith("SQLExecutionEnd"):
            sql[e["executionId"]]["end_ms"] = e["time"]
        elif kind == "SparkListenerJobStart":
            job, props = e["Job ID"], e.get("Properties", {})
            execution = props.get("spark.sql.execution.id")
            job_execution[job] = int(execution) if execution is not None else None
            job_stages[job] = [stage["Stage ID"] for stage in e["Stage Infos"]]
            if execution is None:
                site = _short(props.get("callSite.short") or "job")
                loose[job] = {"description": site, "start_ms": e["Submission Time"]}
        elif kind == "SparkListenerStageCompleted" and "Completion Time" in e["Stage Info"]:  # it ran
            stage_tasks[e["Stage Info"]["Stage ID"]] = e["Stage Info"]["Number of Tasks"]
        elif kind == "SparkListenerJobEnd" and e["Job ID"] in loose:
            loose[e["Job ID"]]["end_ms"] = e["Completion Time"]
    if len(app) < 2:
        raise ValueError(f"{path}: no application start/end (did the job finish?)")
    for action in [*sql.values(), *loose.values()]:
        action.update(jobs=0, tasks=0, end_ms=action.get("end_ms", action["start_ms"]))
    for job, execution in job_execution.items():
        action = sql.get(execution) if execution is not None else loose.get(job)
        if action is not None:
            action["jobs"] += 1
            action["tasks"] += sum(stage_tasks.get(stage, 0) for stage in job_stages[job])
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
    seconds = {"wall": process_end_ms - process_start_ms, "startup": log["start_ms"] - process_start_ms}
    seconds.update(spark_actions=covered, driver=log["end_ms"] - log["start_ms"] - covered)
    seconds["shutdown"] = process_end_ms - log["end_ms"]
    split = {key: round(ms / 1000.0, 3) for key, ms in seconds.items()}
    tasks = sum(a["tasks"] for a in log["actions"])
    return {**split, "action_count": len(log["actions"]), "tasks": tasks, "actions": grouped}
