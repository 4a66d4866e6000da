"""A run that hits dagrun_timeout on a real scheduler leaves no cluster, and says so.

``dag.test()`` and ``airflow dags test`` never enforce dagrun_timeout: only the scheduler does
(``SchedulerJobRunner._schedule_dag_run``), and only the DAG processor runs the DAG's failure callback.
So this starts the components ``make airflow`` starts (tools/local/airflow_stack.py: API server, scheduler
with the LocalExecutor, DAG processor; no triggerer, no sensor defers), in a throw-away AIRFLOW_HOME,
with AWS being moto's HTTP server on 127.0.0.1 in this process. The DAG is the real one with a test
configuration: a tiny dagrun_timeout, the time-budget check off (test only), manual triggers.

Mocked: EMR itself. moto never runs steps, so parse_logs stays RUNNING and its sensor waits, which is
exactly the case where a timeout used to leave the cluster running. Nothing else is arranged: the
scheduler times the run out, skips the unfinished tasks (the terminate_cluster teardown too), and the
DAG processor's callback terminates the cluster over HTTP and publishes the alert (SNS -> SQS).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import urllib.request
from pathlib import Path
from typing import Dict, Optional, TypeVar

import pytest
from moto.core import DEFAULT_ACCOUNT_ID

from tests.dags.conftest import DAGS, HTTP_CONN_ID, REGION, http_connection, reset_moto_server
from tests.dags.test_dag_runs import ACTIVE_CLUSTER_STATES, DS, World
from tests.polling import wait_for

pytestmark = pytest.mark.airflow_ui

DAG_ID = "recsys_training"
ROOT = DAGS.parent
# Long enough for wait_for_data -> create_cluster -> add_steps -> watch_parse_logs running (~10 s here, on a
# busy two-core machine: each task start costs seconds), short enough for a test.
DAGRUN_TIMEOUT_S = 45
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Api:
    """The API server's REST API on 127.0.0.1 (simple auth manager, all admins: no token)."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}/api/v2"

    def call(self, path: str, body: Optional[dict] = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method="POST" if data else "GET",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def task_states(self, run_id: str) -> Dict[str, Optional[str]]:
        tis = self.call(f"/dags/{DAG_ID}/dagRuns/{urllib.request.quote(run_id)}/taskInstances?limit=100")
        return {ti["task_id"]: ti["state"] for ti in tis["task_instances"]}


def component_env(home: Path, port: int, moto_url: str) -> Dict[str, str]:
    """What make airflow's components get (tools/local/airflow_stack.ui_env), pointed at moto instead of the
    local stack, with the test DAG configuration."""
    config = {
        "aws_conn_id": HTTP_CONN_ID,
        "region_name": REGION,
        "data_bucket": "test-lake",
        "artifact_bucket": "test-arts",
        "alert_topic_arn": f"arn:aws:sns:{REGION}:{DEFAULT_ACCOUNT_ID}:recsys-alerts",  # World's topic
        "schedule": None,
        "start_date": "2024-01-01",
        "retries": 0,
        "data_poke_interval_seconds": 1,
        "step_poke_interval_seconds": 2,
        "dagrun_timeout_seconds": DAGRUN_TIMEOUT_S,
        "test_only_skip_time_budget_check": True,
    }
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            # Every component signs or checks the task tokens with it: one value for all, made up here.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            f"AIRFLOW_CONN_{HTTP_CONN_ID.upper()}": http_connection(moto_url, moto_url),
            "AIRFLOW_VAR_RECSYS_TRAINING_CONFIG": json.dumps(config),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "PYTHONPATH": str(ROOT),
        }
    )
    env.pop("AWS_PROFILE", None)
    return env


@pytest.fixture
def components(tmp_path, monkeypatch, moto_server):
    """make airflow's components (minus the triggerer) in tmp_path, stopped by their recorded PIDs."""
    from tools.local import airflow_stack

    home = tmp_path / "airflow"
    home.mkdir()
    monkeypatch.setattr(airflow_stack, "UI_AIRFLOW_HOME", home)
    monkeypatch.setattr(airflow_stack, "COMPONENT_LOGS", home / "components")
    monkeypatch.setattr(airflow_stack, "STOP_GRACE_S", 10)  # then SIGKILL, by PID and process group
    wanted = ("api-server", "scheduler", "dag-processor")
    monkeypatch.setattr(
        airflow_stack, "COMPONENTS", {k: v for k, v in airflow_stack.COMPONENTS.items() if k in wanted}
    )
    reset_moto_server(moto_server)
    port = free_port()
    env = component_env(home, port, moto_server)
    airflow_stack.prepare_db(env)
    processes = airflow_stack.start(env)
    try:
        airflow_stack.wait_until_healthy(f"http://127.0.0.1:{port}", processes)
        yield Api(port), home / "components"
    finally:
        airflow_stack.stop(processes)
        reset_moto_server(moto_server)


def test_a_timed_out_run_terminates_its_cluster_and_alerts(components, moto_server, aws_env):
    api, logs = components
    world = World(endpoint_url=moto_server)
    world.day_arrives()

    dag_run = api.call(f"/dags/{DAG_ID}/dagRuns", {"logical_date": f"{DS}T02:00:00Z"})
    run_id = dag_run["dag_run_id"]

    # The step sensor is waiting on a RUNNING step, on a running cluster, when the timeout comes.
    states = wait_for(
        "watch_parse_logs to run",
        lambda: (s := api.task_states(run_id)).get("watch_parse_logs") == "running" and s,
        timeout_s=DAGRUN_TIMEOUT_S,
    )
    assert states["add_steps"] == "success" and states["terminate_cluster"] is None
    (cluster,) = world.clusters(ACTIVE_CLUSTER_STATES)
    assert cluster["Status"]["State"] == "RUNNING"

    run = wait_for(
        "the run to time out",
        lambda: (
            (r := api.call(f"/dags/{DAG_ID}/dagRuns/{urllib.request.quote(run_id)}"))["state"] == "failed"
            and r
        ),
        timeout_s=DAGRUN_TIMEOUT_S + 60,
    )
    assert run["end_date"]
    # What the scheduler does on dagrun_timeout: every unfinished task skipped, the teardown included.
    states = api.task_states(run_id)
    assert states["watch_parse_logs"] == "skipped" and states["terminate_cluster"] == "skipped"
    assert f"Run {run_id} of {DAG_ID} has timed-out" in (logs / "scheduler.log").read_text()

    # ...so only the DAG's failure callback, in the DAG processor, can have ended the cluster.
    wait_for(
        "the cluster to be terminated", lambda: world.clusters(ACTIVE_CLUSTER_STATES) == [], timeout_s=90
    )
    (after,) = world.clusters()
    assert after["Id"] == cluster["Id"] and after["Status"]["State"] == "TERMINATED"
    alerts = wait_for("the timeout alert", world.messages, timeout_s=30)
    (alert,) = [message for message in alerts if "timed out" in message]
    assert f"run: {run_id}" in alert
    assert f"the run timed out: dagrun_timeout ({DAGRUN_TIMEOUT_S} s) reached" in alert
    assert f"terminated clusters: {cluster['Id']} (recsys-training-{DS}, was RUNNING)" in alert
