"""LocalStack after start: what the init hook created is there, and S3/SNS/SQS/CloudWatch/STS answer."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Callable, Dict

import pytest

pytestmark = pytest.mark.localstack


def test_buckets_exist_after_start(s3: Any, resources: Dict[str, Any]) -> None:
    names = {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
    assert set(resources["buckets"].values()) <= names


def test_s3_round_trip(s3: Any, resources: Dict[str, Any], test_prefix: str) -> None:
    bucket = resources["buckets"]["data_lake"]
    s3.put_object(Bucket=bucket, Key=f"{test_prefix}/hello.txt", Body=b"hello")
    assert s3.get_object(Bucket=bucket, Key=f"{test_prefix}/hello.txt")["Body"].read() == b"hello"


def test_sns_publish_arrives_on_the_subscribed_queue(
    aws: Callable[[str], Any], resources: Dict[str, Any]
) -> None:
    alerts = resources["alerts"]
    sns, sqs = aws("sns"), aws("sqs")
    queue_url = sqs.get_queue_url(QueueName=alerts["inbox_queue_name"])["QueueUrl"]
    assert queue_url.startswith("http://127.0.0.1:")  # loopback URLs: no DNS name to resolve
    marker = f"recsys alert {uuid.uuid4()}"
    sns.publish(TopicArn=alerts["topic_arn"], Subject="test alert", Message=marker)

    # Other users of the stack (the DAG tests) may have left messages: read until ours shows up.
    deadline = time.monotonic() + 20
    found = None
    while found is None and time.monotonic() < deadline:
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2)
        for message in response.get("Messages", []):
            body = json.loads(message["Body"])
            if body.get("Message") == marker:
                found = body
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    assert found is not None, "the SNS message never reached the subscribed queue"
    # Raw message delivery is off (resources.json): the body is the SNS envelope.
    assert resources["alerts"]["raw_message_delivery"] is False
    assert found["Type"] == "Notification"
    assert found["TopicArn"] == alerts["topic_arn"]
    assert found["Subject"] == "test alert"


def test_queue_is_subscribed_without_raw_delivery(
    aws: Callable[[str], Any], resources: Dict[str, Any]
) -> None:
    sns = aws("sns")
    alerts = resources["alerts"]
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=alerts["topic_arn"])["Subscriptions"]
    (subscription,) = [s for s in subscriptions if s["Endpoint"] == alerts["inbox_queue_arn"]]
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])[
        "Attributes"
    ]
    assert attributes.get("RawMessageDelivery", "false") == "false"


def test_cloudwatch_accepts_a_metric(aws: Callable[[str], Any]) -> None:
    cloudwatch = aws("cloudwatch")
    namespace = f"recsys/localstack-suite/{uuid.uuid4().hex[:8]}"
    cloudwatch.put_metric_data(
        Namespace=namespace,
        MetricData=[{"MetricName": "precision_at_10", "Value": 0.123, "Unit": "None"}],
    )
    metrics = cloudwatch.list_metrics(Namespace=namespace)["Metrics"]
    assert [m["MetricName"] for m in metrics] == ["precision_at_10"]


def test_sts_and_iam_answer_with_the_local_account(
    aws: Callable[[str], Any], resources: Dict[str, Any]
) -> None:
    assert aws("sts").get_caller_identity()["Account"] == resources["account_id"]
    assert "Roles" in aws("iam").list_roles()


def test_servers_listen_on_loopback_only(local_stack: Any) -> None:
    """Every listening socket on the stack's three ports (LocalStack, local EMR, local DynamoDB) is bound
    to 127.0.0.1, whichever checkout started the stack; when this checkout started it, those sockets
    belong to the PIDs it recorded."""
    import psutil

    ports = {local_stack.localstack_port, local_stack.emr_port, local_stack.dynamodb_port}
    listening = [
        conn
        for conn in psutil.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port in ports
    ]
    assert {conn.laddr.port for conn in listening} == ports, "not all of the stack's ports listen"
    assert {conn.laddr.ip for conn in listening} == {"127.0.0.1"}
    recorded = {
        int(local_stack.pid_file(name).read_text())
        for name in ("localstack", "local-emr", "local-dynamodb")
        if local_stack.pid_file(name).exists()
    }
    if recorded:
        owners = set()
        for conn in listening:
            process = psutil.Process(conn.pid)
            owners |= {process.pid, *(parent.pid for parent in process.parents())}
        assert recorded <= owners, "the listening sockets are not the recorded stack processes'"
