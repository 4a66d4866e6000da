"""``make airflow``'s supervisor: the four real Airflow components start, serve the UI on loopback only,
list the DAG unpaused, and stop by their recorded PIDs (no local stack needed for this part)."""

from __future__ import annotations

import json
import os
import socket
import urllib.request

import psutil
import pytest

from tools.local import airflow_stack

pytestmark = pytest.mark.airflow_ui


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def ui_home(tmp_path, monkeypatch):
    monkeypatch.setattr(airflow_stack, "UI_AIRFLOW_HOME", tmp_path / "airflow-ui")
    monkeypatch.setattr(airflow_stack, "COMPONENT_LOGS", tmp_path / "airflow-ui" / "components")
    (tmp_path / "airflow-ui").mkdir()
    return tmp_path / "airflow-ui"


def listening_addresses(pid: int) -> set:
    """Every (ip, port) a process or any of its descendants listens on."""
    root = psutil.Process(pid)
    found = set()
    for process in [root, *root.children(recursive=True)]:
        try:
            connections = process.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found |= {(c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN}
    return found


def group_members(pgid: int) -> list:
    """Live (non-zombie) processes in a process group."""
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def test_components_serve_on_loopback_and_stop_by_pid(ui_home):
    port = free_port()
    env = airflow_stack.ui_env("0.0.0-test", port)
    airflow_stack.prepare_db(env)
    processes = airflow_stack.start(env)
    pids = {name: process.pid for name, process in processes.items()}
    try:
        airflow_stack.wait_until_healthy(f"http://127.0.0.1:{port}", processes)
        workers = [pid for pid in group_members(pids["scheduler"]) if pid != pids["scheduler"]]
        assert 0 < len(workers) <= 4, "LocalExecutor workers are capped by AIRFLOW__CORE__PARALLELISM"
        for name, pid in pids.items():
            assert (ui_home / f"{name}.pid").read_text().strip() == str(pid)
            for ip, _ in listening_addresses(pid):
                assert ip == "127.0.0.1", f"airflow {name} listens on {ip}"
        assert ("127.0.0.1", port) in listening_addresses(pids["api-server"])

        url = f"http://127.0.0.1:{port}/api/v2/dags/recsys_training"
        with urllib.request.urlopen(url, timeout=10) as response:  # all-admins: no token needed
            dag = json.load(response)
        assert dag["is_paused"] is False
        assert dag["timetable_summary"] in (None, "None")  # manual only on the local UI
        assert airflow_stack.died(processes) is None
    finally:
        airflow_stack.stop(processes)
    for name, pid in pids.items():
        assert not (ui_home / f"{name}.pid").exists()
        assert group_members(pid) == [], f"airflow {name} left processes behind"
    assert (ui_home / "components" / "scheduler.log").stat().st_size > 0
