"""Where a spark-submit's time went, from Spark's own event log (``spark.eventLog.enabled``).

A job's wall time, measured from the outside, splits into:

- ``startup``: process start to the SparkContext's start (JVM, Python, py4j, SparkContext);
- one entry per Spark action (an SQL execution, or a job outside any: RDD actions, Arrow collects),
  from its start to its end; for writes, the end includes the job commit (files renamed into place);
- ``driver``: the rest between the context's start and its end (Python on the driver: imports, the
  implicit fit, small-file I/O, planning);
- ``shutdown``: the context's end to process exit.

All values in seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional


@dataclass
class Action:
    """One Spark action: an SQL execution (``description`` = its call site) or a job outside one."""

    description: str
    start_ms: int
    end_ms: int
    jobs: int = 0
    tasks: int = 0

    @property
    def seconds(self) -> float:
        return (self.end_ms - self.start_ms) / 1000.0


@dataclass
class EventLog:
    """The parts of one application's event log this breakdown needs (epoch milliseconds)."""

    app_start_ms: int
    app_end_ms: int
    actions: List[Action] = field(default_factory=list)


def _short(description: str) -> str:
    """``count at /x/y/job.py:12`` -> ``count at job.py:12``; py4j's call site shows as the bare action."""
    name, _, where = description.partition(" at ")
    if not where or where.startswith("NativeMethodAccessorImpl"):
        return name
    return f"{name} at {where.rsplit('/', 1)[-1]}"


def read_event_log(path: Path) -> EventLog:
    """Parse an uncompressed event log file into actions, in start order."""
    app_start = app_end = None
    sql: Dict[int, Action] = {}
    loose: Dict[int, Action] = {}  # jobs outside any SQL execution
    job_execution: Dict[int, Optional[int]] = {}
    stage_tasks: Dict[int, int] = {}
    job_stages: Dict[int, List[int]] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            event = json.loads(line)
            kind = event["Event"]
            if kind == "SparkListenerApplicationStart":
                app_start = event["Timestamp"]
            elif kind == "SparkListenerApplicationEnd":
                app_end = event["Timestamp"]
            elif kind.endswith("SQLExecutionStart"):
                sql[event["executionId"]] = Action(_short(event["description"]), event["time"], event["time"])
            elif kind.endswith("SQLExecutionEnd"):
                sql[event["executionId"]].end_ms = event["time"]
            elif kind == "SparkListenerJobStart":
                execution = event.get("Properties", {}).get("spark.sql.execution.id")
                job_id = event["Job ID"]
                job_execution[job_id] = int(execution) if execution is not None else None
                job_stages[job_id] = [stage["Stage ID"] for stage in event["Stage Infos"]]
                if execution is None:
                    site = event.get("Properties", {}).get("callSite.short") or "job"
                    start = event["Submission Time"]
                    loose[job_id] = Action(_short(site), start, start)
            elif kind == "SparkListenerStageCompleted":
                info = event["Stage Info"]
                if "Completion Time" in info:  # skipped stages never ran
                    stage_tasks[info["Stage ID"]] = info["Number of Tasks"]
            elif kind == "SparkListenerJobEnd":
                job_id = event["Job ID"]
                if job_id in loose:
                    loose[job_id].end_ms = event["Completion Time"]
    if app_start is None or app_end is None:
        raise ValueError(f"{path}: no application start/end (did the job finish?)")
    for job_id, execution in job_execution.items():
        action = sql.get(execution) if execution is not None else loose.get(job_id)
        if action is not None:
            action.jobs += 1
            action.tasks += sum(stage_tasks.get(stage, 0) for stage in job_stages[job_id])
    actions = sorted([*sql.values(), *loose.values()], key=lambda a: a.start_ms)
    return EventLog(app_start, app_end, actions)


def _covered_ms(actions: List[Action]) -> int:
    """Milliseconds covered by the union of the actions' intervals (actions may overlap)."""
    covered, reach = 0, None
    for action in sorted(actions, key=lambda a: a.start_ms):
        start, end = action.start_ms, action.end_ms
        if reach is None or start >= reach:
            covered += end - start
            reach = end
        elif end > reach:
            covered += end - reach
            reach = end
    return covered


def breakdown(log: EventLog, process_start_ms: int, process_end_ms: int) -> Dict[str, object]:
    """The split described in the module docstring, plus the actions grouped by description.

    ``actions``: description -> {"count", "seconds", "tasks"}, in order of first appearance.
    """
    grouped: Dict[str, Dict[str, float]] = {}
    for action in log.actions:
        entry = grouped.setdefault(action.description, {"count": 0, "seconds": 0.0, "tasks": 0})
        entry["count"] += 1
        entry["seconds"] = round(entry["seconds"] + action.seconds, 3)
        entry["tasks"] += action.tasks
    spark_ms = _covered_ms(log.actions)
    return {
        "wall": round((process_end_ms - process_start_ms) / 1000.0, 3),
        "startup": round((log.app_start_ms - process_start_ms) / 1000.0, 3),
        "spark_actions": round(spark_ms / 1000.0, 3),
        "driver": round((log.app_end_ms - log.app_start_ms - spark_ms) / 1000.0, 3),
        "shutdown": round((process_end_ms - log.app_end_ms) / 1000.0, 3),
        "action_count": len(log.actions),
        "tasks": sum(action.tasks for action in log.actions),
        "actions": grouped,
    }
