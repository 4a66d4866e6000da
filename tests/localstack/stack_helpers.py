"""Helpers shared by the local AWS stack tests (plain functions; the fixtures are in conftest.py)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Set

import pytest
from local_aws import emr_server, localstack_server
from local_aws.settings import Settings

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
    """Which of ``localstack`` and ``emr`` answer as ready on ``settings``' ports (whoever started them)."""
    ready = set()
    try:
        if localstack_server.is_ready(settings):
            ready.add("localstack")
    except RuntimeError:  # up, but an init hook failed: not usable, and not ours to judge here
        pass
    if emr_server.is_ready(settings):
        ready.add("emr")
    return ready


def command_step(name: str, args: List[str], action_on_failure: str = "CONTINUE") -> Dict[str, Any]:
    """An EMR step definition running ``args`` through command-runner.jar (as the DAG's steps do)."""
    return {
        "Name": name,
        "ActionOnFailure": action_on_failure,
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": args},
    }


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.3) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


@contextlib.contextmanager
def stack_for_session(settings: Settings) -> Iterator[Settings]:
    """Use the running local stack, or start it and stop afterwards only what was started here (a
    server that ran before belongs to someone else). Shared by the localstack and e2e suites."""
    running_before = running_servers(settings)
    if running_before == {"localstack", "emr"}:
        yield settings
        return
    started = local_aws("up")
    if started.returncode != 0:
        pytest.fail(f"could not start the local AWS stack:\n{started.stdout}\n{started.stderr}")
    try:
        yield settings
    finally:
        only = [] if not running_before else ["--only", ({"localstack", "emr"} - running_before).pop()]
        stopped = local_aws("down", *only)
        assert stopped.returncode == 0, stopped.stderr
