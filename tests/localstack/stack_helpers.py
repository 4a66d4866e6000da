"""Helpers shared by the local AWS stack tests (plain functions; the fixtures are in conftest.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Set

import pytest
from local_aws import dynamodb_server, emr_server, localstack_server
from local_aws.__main__ import SERVICES as STACK_SERVICES
from local_aws.settings import HOST, Settings

from tests.polling import wait_for

ROOT = Path(__file__).resolve().parents[2]
LOCALSTACK_DIR = ROOT / "localstack"

STEP_ENDED = ("COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED")
CLUSTER_ENDED = ("TERMINATED", "TERMINATED_WITH_ERRORS")


def local_aws(*args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Run ``python -m local_aws <args>`` from the project root (the stack's start script)."""
    return subprocess.run(
        [sys.executable, "-m", "local_aws", *args],
        cwd=ROOT,
        env={**(env or os.environ), "PYTHONPATH": str(LOCALSTACK_DIR)},
        capture_output=True,
        text=True,
        check=False,
    )


def running_servers(settings: Settings) -> Set[str]:
    """Which of ``localstack``, ``dynamodb`` and ``emr`` answer as ready on ``settings``' ports (whoever
    started them)."""
    ready = set()
    try:
        if localstack_server.is_ready(settings):
            ready.add("localstack")
    except RuntimeError:  # up, but an init hook failed: not usable, and not ours to judge here
        pass
    try:
        if dynamodb_server.is_ready(settings):
            ready.add("dynamodb")
    except RuntimeError:  # up, but the serving table could not be created
        pass
    if emr_server.is_ready(settings):
        ready.add("emr")
    return ready


def cluster_request(
    resources: Dict[str, Any], steps: List[Dict[str, Any]] = (), **overrides: Any
) -> Dict[str, Any]:
    """RunJobFlow arguments of the suite's clusters (one primary node, kept alive, the stack's LogUri)."""
    request: Dict[str, Any] = {
        "Name": "localstack-suite",
        "ReleaseLabel": "emr-7.2.0",
        "LogUri": resources["emr_log_uri"],
        "Applications": [{"Name": "Spark"}],
        "Instances": {
            "InstanceGroups": [
                {
                    "Name": "primary",
                    "Market": "ON_DEMAND",
                    "InstanceRole": "MASTER",
                    "InstanceType": "m5.xlarge",
                    "InstanceCount": 1,
                }
            ],
            "KeepJobFlowAliveWhenNoSteps": True,
            "TerminationProtected": False,
        },
        "JobFlowRole": "EMR_EC2_DefaultRole",
        "ServiceRole": "EMR_DefaultRole",
        "Steps": list(steps),
    }
    request.update(overrides)
    return request


def command_step(name: str, args: List[str], action_on_failure: str = "CONTINUE") -> Dict[str, Any]:
    """An EMR step definition running ``args`` through command-runner.jar (as the DAG's steps do)."""
    return {
        "Name": name,
        "ActionOnFailure": action_on_failure,
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": args},
    }


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.3) -> Any:
    """:func:`tests.polling.wait_for` with this suite's argument order and a short interval."""
    return wait_for(what, predicate, timeout_s, interval_s)


@contextlib.contextmanager
def stack_for_session(settings: Settings) -> Iterator[Settings]:
    """Use the running local stack, or start it and stop afterwards only what was started here (a
    server that ran before belongs to someone else). Shared by the localstack and e2e suites."""
    running_before = running_servers(settings)
    if running_before == set(STACK_SERVICES):
        yield settings
        return
    started = local_aws("up")
    if started.returncode != 0:
        pytest.fail(f"could not start the local AWS stack:\n{started.stdout}\n{started.stderr}")
    try:
        yield settings
    finally:
        started_here = [name for name in STACK_SERVICES if name not in running_before]
        for only in [[]] if not running_before else [["--only", name] for name in started_here]:
            stopped = local_aws("down", *only)
            assert stopped.returncode == 0, stopped.stderr


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def private_emr_endpoint(settings: Settings, state_dir: Path, env: Mapping[str, str]) -> Iterator[Settings]:
    """A second local EMR endpoint (own port, state and step directories; the same LocalStack) started
    with ``env`` on top of the usual environment, e.g. ``LOCAL_EMR_CONTAINER_LOG_DELAY_S``; stopped by
    its recorded PID afterwards. Yields its settings (``emr_url``)."""
    private = dataclasses.replace(settings, state_dir=state_dir, emr_port=free_port())
    service = emr_server.service(private)
    service.env.update(env)
    service.start()
    try:
        yield private
    finally:
        service.stop()
