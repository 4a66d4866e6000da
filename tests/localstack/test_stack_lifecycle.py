"""Start, stop and status of the stack through ``make``, on a private instance (own ports, own state).

A private instance, so these tests may stop and kill freely without disturbing the stack the rest
of the suite (or a developer) uses. Its first start is a cold one (a new FILESYSTEM_ROOT, ~10 s).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterable, List

import boto3
import psutil
import pytest
from local_aws.http import get_json
from local_aws.proc import port_is_free, read_pid
from local_aws.settings import HOST, Settings, load_settings
from stack_helpers import ROOT, command_step, local_aws, wait_until

pytestmark = pytest.mark.localstack


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _make(target: str, env: Dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), target],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture(scope="module")
def private_env(tmp_path_factory: pytest.TempPathFactory) -> Iterable[Dict[str, str]]:
    """Environment of a private stack instance; whatever it left running is stopped at the end."""
    env = {
        **os.environ,
        "LOCALSTACK_PORT": str(_free_port()),
        "LOCAL_EMR_PORT": str(_free_port()),
        "LOCAL_DYNAMODB_PORT": str(_free_port()),
        "LOCAL_AWS_STATE_DIR": str(tmp_path_factory.mktemp("private-stack")),
    }
    yield env
    local_aws("down", env=env)


def _settings(env: Dict[str, str]) -> Settings:
    return load_settings(env)


def _pids(settings: Settings) -> Dict[str, Any]:
    return {name: read_pid(settings.pid_file(name)) for name in ("localstack", "local-dynamodb", "local-emr")}


def _start_long_step(settings: Settings) -> List[psutil.Process]:
    """A cluster on the private EMR endpoint with a running step; its process group's processes."""
    emr = boto3.client(
        "emr",
        endpoint_url=settings.emr_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    emr.run_job_flow(
        Name="lifecycle",
        ReleaseLabel="emr-7.2.0",
        Instances={
            "KeepJobFlowAliveWhenNoSteps": True,
            "InstanceCount": 1,
            "MasterInstanceType": "m5.xlarge",
        },
        Steps=[command_step("long", ["bash", "-c", "sleep 300 & sleep 301; wait"])],
    )

    def running() -> Any:
        steps = (get_json(f"{settings.emr_url}/_local_emr/health") or {}).get("running_steps", [])
        return steps[0]["pid"] if steps else None

    leader = psutil.Process(wait_until(running, 15, "the long step to run"))
    return [leader, *wait_until(lambda: leader.children(recursive=True), 5, "the step's children")]


def _gone(processes: Iterable[psutil.Process]) -> bool:
    return all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in processes)


@pytest.mark.parametrize(
    ("only", "port_env"),
    [("localstack", "LOCALSTACK_PORT"), ("emr", "LOCAL_EMR_PORT"), ("dynamodb", "LOCAL_DYNAMODB_PORT")],
)
def test_port_already_taken_gives_a_clear_error(
    only: str, port_env: str, tmp_path: Path, private_env: Dict[str, str]
) -> None:
    with socket.socket() as squatter:
        squatter.bind((HOST, 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = {**private_env, port_env: str(port), "LOCAL_AWS_STATE_DIR": str(tmp_path)}
        result = local_aws("up", "--only", only, env=env)
    assert result.returncode == 1
    assert f"port {HOST}:{port} is already in use" in result.stderr
    assert f"{port_env}=<port>" in result.stderr  # says how to move it
    assert "Traceback" not in result.stderr


def test_stopping_when_nothing_runs_is_harmless(private_env: Dict[str, str]) -> None:
    for _ in range(2):
        result = _make("local-down", private_env)
        assert result.returncode == 0, result.stderr
        for name in ("localstack", "local-dynamodb", "local-emr"):
            assert f"{name}: not running" in result.stdout


def test_starting_twice_is_harmless(private_env: Dict[str, str]) -> None:
    first = _make("local-up", private_env)
    assert first.returncode == 0, first.stdout + first.stderr
    settings = _settings(private_env)
    pids = _pids(settings)
    assert all(pids.values())

    second = _make("local-up", private_env)
    assert second.returncode == 0, second.stderr
    for name in ("localstack", "local-dynamodb", "local-emr"):
        assert f"{name}: already running" in second.stdout
    assert _pids(settings) == pids

    status = _make("local-status", private_env)
    assert status.stdout.count(" ready ") == 3, status.stdout


def test_steps_of_a_killed_endpoint_are_cleaned_up_by_down(private_env: Dict[str, str]) -> None:
    """Even after a SIGKILL of the endpoint (no chance to clean up), ``down`` kills its step processes."""
    assert _make("local-up", private_env).returncode == 0
    settings = _settings(private_env)
    step_processes = _start_long_step(settings)
    endpoint = psutil.Process(_pids(settings)["local-emr"])
    endpoint.send_signal(signal.SIGKILL)
    endpoint.wait(timeout=10)
    assert not _gone(step_processes)  # orphaned: nobody killed them yet

    result = local_aws("down", "--only", "emr", env=private_env)
    assert result.returncode == 0, result.stderr
    wait_until(lambda: _gone(step_processes), 15, "the orphaned step processes to be killed")


def test_local_down_leaves_no_process_behind(private_env: Dict[str, str]) -> None:
    assert _make("local-up", private_env).returncode == 0
    settings = _settings(private_env)
    servers = [psutil.Process(pid) for pid in _pids(settings).values()]
    step_processes = _start_long_step(settings)

    result = _make("local-down", private_env)
    assert result.returncode == 0, result.stderr
    for name in ("localstack", "local-dynamodb", "local-emr"):
        assert f"{name}: stopped" in result.stdout
    assert _gone(servers), servers
    assert _gone(step_processes), step_processes
    for port in (settings.localstack_port, settings.emr_port, settings.dynamodb_port):
        assert port_is_free(HOST, port)
    assert _pids(settings) == {"localstack": None, "local-dynamodb": None, "local-emr": None}
