"""The stale-model alarm on LocalStack's CloudWatch: with no promotion in its window it goes to ALARM and
its notification reaches the alert inbox through SNS; a promotion brings it back to OK.

LocalStack evaluates an alarm when it is put and then every Period x EvaluationPeriods, so this alarm has
a 20 s window of 10 s periods (the deployed one: hourly periods, ``stale_model_hours``), and its own
Pipeline dimension value, so that the DAG runs' ModelPromoted data on the same stack cannot decide it.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any, Callable, Dict, List

import pytest
from recsys_dag.run_record import NAMESPACE, PROMOTED, metric_data
from recsys_dag.stale_model_alarm import alarm_spec
from stack_helpers import wait_until

from tools.release.apply_alarms import apply

pytestmark = pytest.mark.localstack


def notifications_about(sqs: Any, queue_url: str, alarm: str, seen: List[Dict[str, Any]]) -> List[str]:
    """Append to ``seen`` the alarm's notifications now on the inbox (deleted once read); other messages
    are made visible again at once for the tests they belong to. Returns the states notified so far."""
    response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    for message in response.get("Messages", []):
        envelope = json.loads(message["Body"])
        try:
            body = json.loads(envelope.get("Message", ""))
        except ValueError:
            body = {}
        if isinstance(body, dict) and body.get("AlarmName") == alarm:
            seen.append({"subject": envelope.get("Subject"), **body})
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        else:
            sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
    return [n["NewStateValue"] for n in seen]


def test_alarm_fires_without_a_promotion_and_clears_after_one(
    aws: Callable[[str], Any], resources: Dict[str, Any]
) -> None:
    cloudwatch, sqs = aws("cloudwatch"), aws("sqs")
    alerts = resources["alerts"]
    queue_url = sqs.get_queue_url(QueueName=alerts["inbox_queue_name"])["QueueUrl"]
    pipeline = f"alarm-test-{uuid.uuid4().hex[:8]}"
    spec = alarm_spec(pipeline, alerts["topic_arn"], window_s=20, period_s=10)
    seen: List[Dict[str, Any]] = []
    try:
        apply(cloudwatch, spec)
        # Nothing was ever promoted under this dimension: missing data is breaching.
        wait_until(
            lambda: "ALARM" in notifications_about(sqs, queue_url, spec["AlarmName"], seen),
            timeout_s=60,
            what="the ALARM notification on the inbox",
        )
        (alarm,) = cloudwatch.describe_alarms(AlarmNames=[spec["AlarmName"]])["MetricAlarms"]
        assert alarm["StateValue"] == "ALARM"
        fired = next(n for n in seen if n["NewStateValue"] == "ALARM")
        assert fired["subject"].startswith("ALARM")
        assert fired["Trigger"]["MetricName"] == PROMOTED and fired["Trigger"]["Namespace"] == NAMESPACE

        # A run promotes: record_run's datum, as it sends it.
        promoted = metric_data([(PROMOTED, 1.0, "Count")], pipeline, dt.datetime.now(dt.timezone.utc))
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=promoted)
        wait_until(
            lambda: "OK" in notifications_about(sqs, queue_url, spec["AlarmName"], seen),
            timeout_s=60,
            what="the OK notification on the inbox",
        )
        (alarm,) = cloudwatch.describe_alarms(AlarmNames=[spec["AlarmName"]])["MetricAlarms"]
        assert alarm["StateValue"] == "OK"
    finally:
        # Left in place, the alarm would fire again once the datum ages out, into other tests' inbox.
        cloudwatch.delete_alarms(AlarmNames=[spec["AlarmName"]])
