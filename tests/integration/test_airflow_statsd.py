"""``make airflow STATSD=1``: the real StatsD server (tools/local/statsd/) and the four real Airflow
components with ``[metrics] statsd_on``; a real DAG run under LocalExecutor, and its task and run metrics
arrive at the server (no local stack needed: a two-task probe DAG in a temporary DAGs folder)."""

from __future__ import annotations

import json
import socket
import textwrap
import urllib.request

import psutil
import pytest

from tests.integration.test_local_airflow import (  # ui_home: a fixture, used by name
    free_port,
    group_members,
    listening_addresses,
    ui_home,  # noqa: F401
)
from tests.polling import wait_for
from tools.local import airflow_stack

pytestmark = [pytest.mark.airflow_ui, pytest.mark.usefixtures("ui_home")]

DAG_ID = "statsd_probe"
TASKS = ("one", "two")
PROBE_DAG = textwrap.dedent(
    f'''
    """Test-only: two independent trivial tasks, so both run at once."""
    import pendulum
    from airflow.sdk import dag, task


    @dag(dag_id="{DAG_ID}", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
    def probe():
        @task
        def one():
            return 1

        @task
        def two():
            return 2

        one()
        two()


    probe()
    '''
)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def udp_addresses(pid: int) -> set:
    """Every (ip, port) a process has a UDP socket bound to."""
    return {(c.laddr.ip, c.laddr.port) for c in psutil.Process(pid).net_connections(kind="udp")}


def received() -> dict:
    """Everything the StatsD server has flushed so far: counters summed, timer values concatenated."""
    counters: dict = {}
    timers: dict = {}
    path = airflow_stack.statsd_metrics_file()
    lines = path.read_text().splitlines() if path.exists() else []
    for line in lines:
        flush = json.loads(line)
        for name, count in flush["counters"].items():
            counters[name] = counters.get(name, 0) + count
        for name, values in flush["timers"].items():
            timers.setdefault(name, []).extend(values)
    return {"counters": counters, "timers": timers}


def api(base_url: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{base_url}/api/v2{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # all-admins: no token needed
        return json.load(response)


def test_a_dag_run_reports_its_task_and_run_metrics_to_statsd(tmp_path, monkeypatch):
    # After a run, Airflow 3.3.2's scheduler sometimes never exits on SIGTERM (LocalExecutor.end() joins a
    # worker that gets no shutdown message), so stop() SIGKILLs it after the grace period: a shorter one
    # here (the other components stop in a few seconds).
    monkeypatch.setattr(airflow_stack, "STOP_GRACE_S", 10)
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(PROBE_DAG)
    port, statsd_port, mgmt_port = free_port(), free_udp_port(), free_port()
    env = airflow_stack.ui_env("0.0.0-test", port, statsd_port=statsd_port)
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
    assert env["AIRFLOW__METRICS__STATSD_ON"] == "True"
    assert env["AIRFLOW__METRICS__STATSD_HOST"] == "127.0.0.1"
    airflow_stack.prepare_db(env, dag_id=DAG_ID)

    processes = airflow_stack.start_statsd(statsd_port, mgmt_port, flush_ms=500)
    pids = {"statsd": processes["statsd"].pid}
    base_url = f"http://127.0.0.1:{port}"
    try:
        airflow_stack.wait_until_statsd_ready(mgmt_port, processes)
        assert udp_addresses(pids["statsd"]) == {("127.0.0.1", statsd_port)}
        assert listening_addresses(pids["statsd"]) == {("127.0.0.1", mgmt_port)}
        processes.update(airflow_stack.start(env))
        pids.update({name: process.pid for name, process in processes.items()})
        airflow_stack.wait_until_healthy(base_url, processes)

        run_id = api(base_url, f"/dags/{DAG_ID}/dagRuns", {"logical_date": None})["dag_run_id"]

        def finished():
            dead = airflow_stack.died(processes)
            assert dead is None, dead
            state = api(base_url, f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
            return state if state in ("success", "failed") else None

        assert wait_for(f"run {run_id} to finish", finished, timeout_s=120, interval_s=0.5) == "success"

        prefix = airflow_stack.STATSD_PREFIX
        expected_counters = {f"{prefix}.ti.finish.{DAG_ID}.{task}.success" for task in TASKS}
        expected_counters |= {f"{prefix}.ti.start.{DAG_ID}.{task}" for task in TASKS}
        expected_timers = {f"{prefix}.dagrun.duration.success.{DAG_ID}"}
        expected_timers |= {f"{prefix}.dag.{DAG_ID}.{task}.duration" for task in TASKS}

        def arrived():
            metrics = received()
            have = (
                expected_counters <= metrics["counters"].keys()
                and expected_timers <= metrics["timers"].keys()
            )
            return metrics if have else None

        metrics = wait_for("the run's metrics at the StatsD server", arrived, timeout_s=30, interval_s=0.5)
        for name in expected_counters:
            assert metrics["counters"][name] == 1, name
        assert metrics["counters"][f"{prefix}.ti_successes"] == len(TASKS)
        assert len(metrics["timers"][f"{prefix}.dagrun.duration.success.{DAG_ID}"]) == 1
        assert airflow_stack.statsd_health(mgmt_port) == "health: up"
    finally:
        airflow_stack.stop(processes)
    for name, pid in pids.items():
        assert not (airflow_stack.UI_AIRFLOW_HOME / f"{name}.pid").exists()
        assert group_members(pid) == [], f"{name} left processes behind"
