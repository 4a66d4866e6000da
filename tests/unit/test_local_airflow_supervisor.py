"""``make airflow``'s supervision (tools/local/airflow_stack.py on local_aws.proc), with python stand-ins
for the components: PID files, failing fast when one exits, and stop by PID with the group's leftovers
killed. The real components are tested in tests/integration/test_local_airflow.py."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

from tests.integration.test_local_airflow import group_members
from tools.local import airflow_stack

pytestmark = pytest.mark.unit

# Like a scheduler whose executor worker outlives it: the leader exits on SIGTERM, its child ignores it.
LEAKY = (
    "import signal, subprocess, sys, time; "
    "code = 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); "
    "time.sleep(60)'; "
    "worker = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE); "
    "worker.stdout.readline(); print('worker', 'up', flush=True); time.sleep(60)"
)


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(airflow_stack, "UI_AIRFLOW_HOME", tmp_path / "airflow-ui")
    monkeypatch.setattr(airflow_stack, "COMPONENT_LOGS", tmp_path / "airflow-ui" / "components")
    return tmp_path / "airflow-ui"


def test_stop_by_pid_kills_what_a_component_left_behind(home: Path) -> None:
    processes = {
        "scheduler": airflow_stack._spawn("scheduler", [sys.executable, "-c", LEAKY], os.environ, home),
        "statsd": airflow_stack._spawn("statsd", ["sleep", "60"], os.environ, home),
    }
    log = home / "components" / "scheduler.log"
    deadline = time.monotonic() + 10
    while "worker up" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "worker up" in log.read_text()
    pids = {name: process.pid for name, process in processes.items()}
    for name, pid in pids.items():
        assert (home / f"{name}.pid").read_text().strip() == str(pid)
    assert len(group_members(pids["scheduler"])) == 2
    assert airflow_stack.died(processes) is None

    began = time.monotonic()
    airflow_stack.stop(processes)
    assert time.monotonic() - began < 10  # the leader's exit ends the wait (STOP_GRACE_S is 30 s)
    for name, pid in pids.items():
        assert not (home / f"{name}.pid").exists()
        assert group_members(pid) == [], f"{name} left processes behind"


def test_a_component_that_exits_ends_the_wait_with_its_name_not_a_timeout(home: Path) -> None:
    processes = {"scheduler": airflow_stack._spawn("scheduler", ["sh", "-c", "exit 3"], os.environ, home)}
    with socket.socket() as probe:  # a port nobody serves
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    try:
        with pytest.raises(RuntimeError) as error:
            airflow_stack.wait_until_healthy(f"http://127.0.0.1:{port}", processes, timeout_s=30)
        assert str(error.value).startswith("airflow scheduler exited with code 3; see ")
        assert str(error.value).endswith("components/scheduler.log")
    finally:
        airflow_stack.stop(processes)


def test_waiting_for_statsd_times_out(home: Path) -> None:
    processes = {"statsd": airflow_stack._spawn("statsd", ["sleep", "60"], os.environ, home)}
    try:
        with pytest.raises(TimeoutError, match=r"the StatsD server on 127\.0\.0\.1:\d+: not ready after 1 s"):
            airflow_stack.wait_until_statsd_ready(1, processes, timeout_s=0.6)
    finally:
        airflow_stack.stop(processes)
