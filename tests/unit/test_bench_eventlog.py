"""benchmarks.bench_chain: a job's wall split from Spark's event log."""

from __future__ import annotations

import json

import pytest

from benchmarks.bench_chain import breakdown, read_event_log

pytestmark = pytest.mark.unit

SQL = "org.apache.spark.sql.execution.ui.SparkListenerSQLExecution"


def test_actions_come_from_sql_executions_and_loose_jobs(tmp_path):
    events = [
        {"Event": "SparkListenerApplicationStart", "Timestamp": 10_000},
        {"Event": SQL + "Start", "executionId": 0, "description": "count at /x/job.py:12", "time": 11_000},
        {
            "Event": "SparkListenerJobStart",
            "Job ID": 0,
            "Submission Time": 11_100,
            "Stage Infos": [{"Stage ID": 0}, {"Stage ID": 1}],
            "Properties": {"spark.sql.execution.id": "0"},
        },
        {
            "Event": "SparkListenerStageCompleted",
            "Stage Info": {"Stage ID": 0, "Number of Tasks": 8, "Completion Time": 1},
        },
        {
            "Event": "SparkListenerStageCompleted",
            "Stage Info": {"Stage ID": 1, "Number of Tasks": 2},
        },  # skipped
        {"Event": "SparkListenerJobEnd", "Job ID": 0, "Completion Time": 12_000},
        {"Event": SQL + "End", "executionId": 0, "time": 12_500},
        {
            "Event": "SparkListenerJobStart",
            "Job ID": 1,
            "Submission Time": 12_000,  # overlaps the SQL execution by 0.5 s
            "Stage Infos": [{"Stage ID": 2}],
            "Properties": {"callSite.short": "collect at NativeMethodAccessorImpl.java:0"},
        },
        {
            "Event": "SparkListenerStageCompleted",
            "Stage Info": {"Stage ID": 2, "Number of Tasks": 3, "Completion Time": 1},
        },
        {"Event": "SparkListenerJobEnd", "Job ID": 1, "Completion Time": 13_000},
        {"Event": "SparkListenerApplicationEnd", "Timestamp": 15_000},
    ]
    path = tmp_path / "app"
    path.write_text("\n".join(json.dumps(event) for event in events) + "\n")
    log = read_event_log(path)
    actions = [(a["description"], a["end_ms"] - a["start_ms"], a["jobs"], a["tasks"]) for a in log["actions"]]
    assert actions == [
        ("count at job.py:12", 1500, 1, 8),
        ("collect", 1000, 1, 3),
    ]
    split = breakdown(log, process_start_ms=8_000, process_end_ms=15_500)
    assert split["wall"] == 7.5 and split["startup"] == 2.0 and split["shutdown"] == 0.5
    assert split["spark_actions"] == 2.0  # 11.0-13.0, the overlap counted once
    assert split["driver"] == 3.0  # 5 s of context minus 2 s of actions
    assert split["actions"]["count at job.py:12"] == {"count": 1, "seconds": 1.5, "tasks": 8}


def test_an_unfinished_application_is_an_error(tmp_path):
    path = tmp_path / "app"
    path.write_text(json.dumps({"Event": "SparkListenerApplicationStart", "Timestamp": 1}) + "\n")
    with pytest.raises(ValueError, match="no application start/end"):
        read_event_log(path)
