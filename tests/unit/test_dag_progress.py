"""make run's quiet progress: the task lines read from ``airflow dags test``'s own output."""

from __future__ import annotations

import sys

import pytest

from tools.local.dag_progress import run_quietly, task_event

pytestmark = pytest.mark.unit

# Lines as airflow dags test 3.3 prints them (shortened where they carry ids).
START = "2026-12-02T04:59:01.750945Z [info     ] [DAG TEST] starting task_id=wait_for_data map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1501"  # noqa: E501
STATE = "2026-12-02T04:59:06.287944Z [info     ] Task instance state updated    [airflow.api_fastapi.execution_api.routes.task_instances] correlation_id=01a2 loc=task_instances.py:485 new_state=success rows_affected=1 ti_id=01a2"  # noqa: E501
END = "2026-12-02T04:59:06.300572Z [info     ] [DAG TEST] end task task_id=wait_for_data map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1563"  # noqa: E501
MAPPED = "2026-12-02T05:13:10.991383Z [info     ] [DAG TEST] starting task_id=watch_trial map_index=2 [airflow.sdk.definitions.dag] loc=dag.py:1501"  # noqa: E501


def test_task_events_are_read_from_the_dag_test_output():
    assert task_event(START) == ("start", "wait_for_data")
    assert task_event(STATE) == ("state", "success")
    assert task_event(END) == ("end", "wait_for_data")
    assert task_event(MAPPED) == ("start", "watch_trial[2]")
    assert task_event("INFO botocore.credentials Found credentials in environment variables.") is None


def test_the_run_prints_one_line_per_task_and_keeps_everything_in_the_log(tmp_path):
    script = "; ".join(f"print({line!r})" for line in [START, "noise", STATE, END, MAPPED, "no end"])
    printed = []
    code, finished = run_quietly(
        [sys.executable, "-c", script], {}, tmp_path, tmp_path / "run.log", out=printed.append
    )
    assert code == 0
    assert [(task, state) for task, state, _ in finished] == [("wait_for_data", "success")]
    assert len(printed) == 1 and printed[0].split()[:2] == ["wait_for_data", "success"]
    assert (tmp_path / "run.log").read_text().splitlines() == [START, "noise", STATE, END, MAPPED, "no end"]
