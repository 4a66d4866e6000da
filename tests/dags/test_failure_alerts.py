"""The failure alert's cause, source by source, against moto's real HTTP endpoint (S3 and EMR).

moto stands in for EMR (nothing runs steps here): the test writes what a step would have left behind
(its outcome record, step log, container log) and sets the step's state through moto's in-process
backend, the one mocked part. Everything the alert reads goes over HTTP.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emr.models import emr_backends
from moto.server import ThreadedMotoServer
from recsys_dag.alerts import SNS_MESSAGE_LIMIT_BYTES, describe_failed_step, fit_message

pytestmark = pytest.mark.dag

REGION = "us-east-1"
BUCKET = "arts"
LOG_URI = f"s3://{BUCKET}/emr-logs/"
OUTCOME = f"s3://{BUCKET}/runs/dt=2024-01-31/outcomes/parse_logs.json"
APP = "application_1706659200000_0001"
JOB_LINE = "FAILED parse_logs: reject ratio 0.3000 (600/2000 lines) exceeds --max-reject-ratio 0.05"


@pytest.fixture(scope="module")
def endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def clients(endpoint, aws_env):
    make = lambda service: boto3.client(service, endpoint_url=endpoint, region_name=REGION)  # noqa: E731
    s3, emr = make("s3"), make("emr")
    s3.create_bucket(Bucket=BUCKET)
    yield s3, emr
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    s3.delete_bucket(Bucket=BUCKET)


def failed_step(emr, started: dt.datetime):
    cluster = emr.run_job_flow(
        Name="t",
        ReleaseLabel="emr-7.5.0",
        LogUri=LOG_URI,
        Instances={
            "InstanceCount": 1,
            "KeepJobFlowAliveWhenNoSteps": True,
            "MasterInstanceType": "m5.xlarge",
        },
        Steps=[
            {
                "Name": "parse_logs",
                "ActionOnFailure": "CANCEL_AND_WAIT",
                "HadoopJarStep": {
                    "Jar": "command-runner.jar",
                    "Args": ["spark-submit", "--deploy-mode", "cluster", "job.py", "--outcome", OUTCOME],
                },
            }
        ],
        JobFlowRole="r",
        ServiceRole="s",
    )["JobFlowId"]
    (step,) = emr_backends[DEFAULT_ACCOUNT_ID][REGION].clusters[cluster].steps
    step.state, step.start_date_time = "FAILED", started
    return cluster, step.id


def put(s3, key: str, body: bytes, gz: bool = False):
    s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(body) if gz else body)


def launcher_log(cluster: str, step: str) -> tuple:
    text = (
        f"INFO Client: Submitted application {APP}\n"
        f"INFO Client: Application report for {APP} (state: FAILED)\n"
        'Exception in thread "main" org.apache.spark.SparkException: '
        f"Application {APP} finished with failed status\n"
    )
    return f"emr-logs/{cluster}/steps/{step}/stderr.gz", text.encode()


def record(ended: dt.datetime, reason=JOB_LINE, error=None) -> bytes:
    return json.dumps(
        {"job": "parse_logs", "status": "failed", "reason": reason, "error": error, "exit_code": 2,
         "application_id": APP, "ended_at": ended.isoformat()}
    ).encode()  # fmt: skip


NOW = dt.datetime(2024, 1, 31, 3, 0, tzinfo=dt.timezone.utc)


def test_the_outcome_record_gives_the_cause_before_any_log_is_shipped(clients):
    s3, emr = clients
    cluster, step = failed_step(emr, NOW)
    put(s3, OUTCOME.split(f"{BUCKET}/", 1)[1], record(NOW + dt.timedelta(minutes=2)))
    text = "\n".join(describe_failed_step(emr, s3, cluster, step))
    assert f"cause (from the job's outcome record {OUTCOME}):\n  {JOB_LINE}" in text
    assert "not yet delivered to S3" in text  # the step log is not there either: said, not hidden


def test_without_a_record_the_driver_container_log_is_read(clients):
    s3, emr = clients
    cluster, step = failed_step(emr, NOW)
    key, body = launcher_log(cluster, step)
    put(s3, key, body, gz=True)
    text = "\n".join(describe_failed_step(emr, s3, cluster, step))
    assert f"outcome record: none at {OUTCOME}" in text
    assert f"driver log: not yet in s3://{BUCKET}/emr-logs/{cluster}/containers/{APP}/" in text
    assert "finished with failed status" in text  # the launcher's step log tail is still there

    container = f"emr-logs/{cluster}/containers/{APP}/container_1706659200000_0001_01_000001"
    put(
        s3,
        f"{container}/stderr.gz",
        f"INFO starting\nERROR recsys.parse_logs: {JOB_LINE}\n".encode(),
        gz=True,
    )
    put(s3, f"{container}/stdout.gz", b"", gz=True)
    text = "\n".join(describe_failed_step(emr, s3, cluster, step))
    assert f"--- driver stderr (s3://{BUCKET}/{container}/stderr.gz, last 40 lines) ---" in text
    assert JOB_LINE in text


def test_a_record_of_an_earlier_attempt_is_not_taken_as_the_cause(clients):
    s3, emr = clients
    cluster, step = failed_step(emr, NOW)
    put(
        s3,
        OUTCOME.split(f"{BUCKET}/", 1)[1],
        record(NOW - dt.timedelta(hours=3), reason="FAILED parse_logs: old"),
    )
    text = "\n".join(describe_failed_step(emr, s3, cluster, step))
    assert "is from an earlier attempt" in text and "FAILED parse_logs: old" not in text
    assert "driver log: no application id" in text  # the stale record's id is not this attempt's


def test_an_unexpected_exception_carries_its_traceback(clients):
    s3, emr = clients
    cluster, step = failed_step(emr, NOW)
    error = {"type": "KeyError", "message": "'user_idx'", "traceback": "Traceback …\nKeyError: 'user_idx'"}
    put(s3, OUTCOME.split(f"{BUCKET}/", 1)[1], record(NOW, "FAILED parse_logs: KeyError: 'user_idx'", error))
    text = "\n".join(describe_failed_step(emr, s3, cluster, step))
    assert "--- traceback (from the outcome record) ---\nTraceback …\nKeyError: 'user_idx'" in text


@pytest.mark.unit
def test_messages_are_cut_to_fit_sns():
    huge = "é" * SNS_MESSAGE_LIMIT_BYTES
    cut = fit_message(huge)
    assert len(cut.encode("utf-8")) <= SNS_MESSAGE_LIMIT_BYTES and cut.endswith("-byte limit)")
    assert fit_message("short") == "short"
