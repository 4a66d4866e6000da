"""Fixtures of the local AWS stack suite: the running stack, boto3 clients, EMR polling helpers.

The session fixture uses the stack if it already runs (e.g. after ``make local-up``) and otherwise
starts it with the start script (``python -m local_aws up``, which also installs what is missing) and
stops it again at the end: plain ``pytest`` works from a clean clone.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List

import boto3
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
LOCALSTACK_DIR = ROOT / "localstack"
if str(LOCALSTACK_DIR) not in sys.path:
    sys.path.insert(0, str(LOCALSTACK_DIR))  # local_aws, local_emr (never a package named localstack)

from local_aws.settings import Settings, load_resources, load_settings  # noqa: E402
from stack_helpers import STEP_ENDED, cluster_request, stack_for_session, wait_until  # noqa: E402


@pytest.fixture(scope="session")
def local_stack() -> Iterable[Settings]:
    """The running local stack's settings; started (and stopped afterwards) only if not running yet."""
    with stack_for_session(load_settings()) as settings:
        yield settings


@pytest.fixture(scope="session")
def resources() -> Dict[str, Any]:
    return load_resources()


def _client(service: str, endpoint: str, resources: Dict[str, Any]) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=resources["region"],
        aws_access_key_id=resources["aws_access_key_id"],
        aws_secret_access_key=resources["aws_secret_access_key"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}),
    )


@pytest.fixture(scope="session")
def aws(local_stack: Settings, resources: Dict[str, Any]) -> Callable[[str], Any]:
    """``aws("s3")``: a boto3 client for LocalStack (``aws("emr")``, ``aws("dynamodb")``: for the local EMR
    and DynamoDB endpoints)."""

    def make(service: str) -> Any:
        own = {"emr": local_stack.emr_url, "dynamodb": local_stack.dynamodb_url}
        endpoint = own.get(service, local_stack.localstack_url)
        return _client(service, endpoint, resources)

    return make


@pytest.fixture(scope="session")
def emr(aws: Callable[[str], Any]) -> Any:
    return aws("emr")


@pytest.fixture(scope="session")
def s3(aws: Callable[[str], Any]) -> Any:
    return aws("s3")


@pytest.fixture
def test_prefix() -> str:
    """A unique key prefix per test, so reruns and parallel runs never see each other's objects."""
    return f"tests/localstack/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_cluster(emr: Any, resources: Dict[str, Any]) -> Iterable[Callable[..., str]]:
    """``make_cluster(steps, **overrides)`` runs a job flow and returns its id; all terminated at the end."""
    created: List[str] = []

    def make(steps: List[Dict[str, Any]] = (), **overrides: Any) -> str:
        request = cluster_request(resources, steps, **overrides)
        cluster_id = emr.run_job_flow(**request)["JobFlowId"]
        created.append(cluster_id)
        return cluster_id

    yield make
    if created:
        emr.terminate_job_flows(JobFlowIds=created)


@pytest.fixture
def steps_of(emr: Any) -> Callable[[str], Dict[str, Dict[str, Any]]]:
    """``steps_of(cluster_id)``: the cluster's steps by name (ListSteps)."""

    def get(cluster_id: str) -> Dict[str, Dict[str, Any]]:
        return {step["Name"]: step for step in emr.list_steps(ClusterId=cluster_id)["Steps"]}

    return get


@pytest.fixture
def wait_steps_ended(steps_of: Callable[[str], Dict[str, Dict[str, Any]]]) -> Callable[..., Dict[str, Any]]:
    """``wait_steps_ended(cluster_id, timeout_s)``: wait until every step has ended; steps by name."""

    def wait(cluster_id: str, timeout_s: float = 60.0) -> Dict[str, Dict[str, Any]]:
        def ended() -> Dict[str, Dict[str, Any]]:
            steps = steps_of(cluster_id)
            return steps if all(s["Status"]["State"] in STEP_ENDED for s in steps.values()) else {}

        return wait_until(ended, timeout_s, f"the steps of {cluster_id} to end")

    return wait


@pytest.fixture
def cluster_state(emr: Any) -> Callable[[str], Dict[str, Any]]:
    """``cluster_state(cluster_id)``: DescribeCluster's Status dict."""
    return lambda cluster_id: emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]
