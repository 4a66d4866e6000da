"""The Airflow connection ``aws_local``: EMR hooks reach the local EMR endpoint, the others LocalStack."""

from __future__ import annotations

import json
from typing import Any, Dict

import pytest
from local_aws.connection import CONN_ID, as_json, import_file
from local_aws.settings import LOCALSTACK_DIR, Settings, load_settings
from stack_helpers import cluster_request

pytestmark = pytest.mark.localstack

CONNECTION_FILE = LOCALSTACK_DIR / "airflow_connection.json"


def test_committed_connection_file_matches_the_helper() -> None:
    """localstack/airflow_connection.json is what the helper prints for the default ports."""
    assert json.loads(CONNECTION_FILE.read_text()) == import_file(load_settings({}))


def test_connection_file_loads_in_airflow() -> None:
    from airflow.secrets.local_filesystem import load_connections_dict

    connection = load_connections_dict(str(CONNECTION_FILE))[CONN_ID]
    assert connection.conn_type == "aws"
    extra = connection.extra_dejson
    assert extra["endpoint_url"] == "http://127.0.0.1:4566"
    assert extra["service_config"]["emr"]["endpoint_url"] == "http://127.0.0.1:4580"
    assert extra["service_config"]["dynamodb"]["endpoint_url"] == "http://127.0.0.1:4581"


@pytest.fixture
def aws_local_env(local_stack: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """AIRFLOW_CONN_AWS_LOCAL as the helper prints it, for the running stack's ports."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", as_json(local_stack))
    return local_stack


def test_emr_hook_reaches_the_local_emr_endpoint(
    aws_local_env: Settings, emr: Any, resources: Dict[str, Any]
) -> None:
    from airflow.providers.amazon.aws.hooks.emr import EmrHook

    hook = EmrHook(aws_conn_id=CONN_ID, emr_conn_id=None)
    assert hook.conn.meta.endpoint_url == aws_local_env.emr_url
    cluster_id = hook.create_job_flow(cluster_request(resources, Name="hook-test"))["JobFlowId"]
    try:
        # The cluster exists on the local EMR endpoint, seen through a plain boto3 client.
        assert emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Name"] == "hook-test"
    finally:
        emr.terminate_job_flows(JobFlowIds=[cluster_id])


def test_other_hooks_reach_localstack(aws_local_env: Settings, resources: Dict[str, Any]) -> None:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.amazon.aws.hooks.sns import SnsHook

    s3_hook = S3Hook(aws_conn_id=CONN_ID)
    assert s3_hook.conn.meta.endpoint_url == aws_local_env.localstack_url
    assert s3_hook.check_for_bucket(resources["buckets"]["data_lake"])
    sns_hook = SnsHook(aws_conn_id=CONN_ID)
    assert sns_hook.conn.meta.endpoint_url == aws_local_env.localstack_url
    topics = [t["TopicArn"] for t in sns_hook.conn.list_topics()["Topics"]]
    assert resources["alerts"]["topic_arn"] in topics
