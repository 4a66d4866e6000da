"""A real Spark step on the local EMR endpoint: s3:// code, input and output, all on LocalStack.

The step is shaped like the DAG's (``spark-submit --deploy-mode cluster --master yarn --py-files
s3://…zip s3://…py --input s3://… --output s3://…``); the runner rewrites it for local Spark and maps
``s3://`` to S3A. The job is a tiny PySpark script of this suite, uploaded to LocalStack with its
helper module zipped as py-files, so the test also proves spark-submit fetches both through S3A.

Both steps ask for cluster mode, so their logs are laid out as on EMR: the step's stderr holds the
spark-submit launcher's YARN output, the driver's own output is in the application master's container
log, which arrives later. The test runs them on a private endpoint whose container-log delay is 10 s.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Dict, Iterable

import boto3
import pyarrow.parquet as pq
import pytest
from local_aws.http import get_json
from local_aws.settings import Settings
from local_emr.step_logs import split_s3_uri
from stack_helpers import STEP_ENDED, cluster_request, command_step, private_emr_endpoint, wait_until

pytestmark = pytest.mark.localstack

JOB = '''\
"""Count events per (normalised) type: JSON lines in, Parquet out."""
import argparse

from pyspark.sql import SparkSession

from suite_helpers import normalised_type


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    spark = SparkSession.builder.appName("localstack-suite-count").getOrCreate()
    counts = spark.read.json(args.input).groupBy(normalised_type("event_type").alias("event_type")).count()
    counts.coalesce(1).write.mode("overwrite").parquet(args.output)
    print("wrote %d event types to %s" % (counts.count(), args.output))
    spark.stop()


if __name__ == "__main__":
    main()
'''

HELPERS = """\
from pyspark.sql import functions as F


def normalised_type(column):
    return F.lower(F.trim(F.col(column)))
"""

# Fails as the project's jobs do: their own "FAILED <job>: <reason>" line, then exit status 1.
FAILING_JOB = 'import sys\nprint("FAILED demo: no input for 2024-01-01", file=sys.stderr)\nsys.exit(1)\n'

EVENTS = [
    {"event_id": "e1", "event_type": "view"},
    {"event_id": "e2", "event_type": " VIEW "},
    {"event_id": "e3", "event_type": "click"},
    {"event_id": "e4", "event_type": "purchase"},
    {"event_id": "e5", "event_type": "View"},
]


def _zip(name: str, text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, text)
    return buffer.getvalue()


# The delay before a container log reaches S3, on this test's own endpoint: long enough to see that
# it is not there at once, short enough to wait for (EMR's, and the shared endpoint's: 300 s).
CONTAINER_LOG_DELAY_S = 10


def _read_gz(s3: Any, bucket: str, key: str) -> str:
    return gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).decode()


@pytest.fixture
def private_emr(local_stack: Settings, resources: Dict[str, Any], tmp_path: Path) -> Iterable[Any]:
    """A boto3 EMR client for a private endpoint with a short container-log delay (same LocalStack)."""
    env = {"LOCAL_EMR_CONTAINER_LOG_DELAY_S": str(CONTAINER_LOG_DELAY_S)}
    with private_emr_endpoint(local_stack, tmp_path / "private-emr", env) as private:
        health = get_json(f"{private.emr_url}/_local_emr/health") or {}
        assert health.get("container_log_delay_s") == CONTAINER_LOG_DELAY_S
        yield boto3.client(
            "emr",
            endpoint_url=private.emr_url,
            region_name=resources["region"],
            aws_access_key_id=resources["aws_access_key_id"],
            aws_secret_access_key=resources["aws_secret_access_key"],
        )


def test_real_spark_step_reads_and_writes_parquet_on_localstack(
    private_emr: Any,
    s3: Any,
    resources: Dict[str, Any],
    test_prefix: str,
    record_property: Callable[[str, Any], None],
) -> None:
    emr = private_emr
    lake, artifacts = resources["buckets"]["data_lake"], resources["buckets"]["artifacts"]
    code = f"s3://{artifacts}/{test_prefix}/code"
    s3.put_object(Bucket=artifacts, Key=f"{test_prefix}/code/count_events.py", Body=JOB.encode())
    s3.put_object(Bucket=artifacts, Key=f"{test_prefix}/code/failing.py", Body=FAILING_JOB.encode())
    s3.put_object(
        Bucket=artifacts, Key=f"{test_prefix}/code/helpers.zip", Body=_zip("suite_helpers.py", HELPERS)
    )
    body = "\n".join(json.dumps(event) for event in EVENTS) + "\n"
    s3.put_object(Bucket=lake, Key=f"{test_prefix}/raw/dt=2024-01-01/part-0.json", Body=body.encode())
    output = f"s3://{lake}/{test_prefix}/counts/dt=2024-01-01"

    def spark_step(name: str, script: str) -> Dict[str, Any]:
        args = [
            "spark-submit",
            "--deploy-mode",
            "cluster",
            "--master",
            "yarn",
            "--py-files",
            f"{code}/helpers.zip",
        ]
        app_args = ["--input", f"s3://{lake}/{test_prefix}/raw/dt=2024-01-01/", "--output", output]
        return command_step(name, [*args, f"{code}/{script}", *app_args], "CONTINUE")

    steps_request = [spark_step("count_events", "count_events.py"), spark_step("failing", "failing.py")]
    cluster_id = emr.run_job_flow(**cluster_request(resources, steps_request))["JobFlowId"]
    try:
        _check_cluster_mode_steps(emr, s3, resources, test_prefix, cluster_id, record_property)
    finally:
        emr.terminate_job_flows(JobFlowIds=[cluster_id])


def _check_cluster_mode_steps(
    emr: Any,
    s3: Any,
    resources: Dict[str, Any],
    test_prefix: str,
    cluster_id: str,
    record_property: Callable[[str, Any], None],
) -> None:
    lake = resources["buckets"]["data_lake"]

    def ended() -> Dict[str, Any]:
        steps = {step["Name"]: step for step in emr.list_steps(ClusterId=cluster_id)["Steps"]}
        return steps if all(s["Status"]["State"] in STEP_ENDED for s in steps.values()) else {}

    steps = wait_until(ended, 300, "the Spark steps to end")
    ok = steps["count_events"]["Status"]
    assert ok["State"] == "COMPLETED", ok
    seconds = (ok["Timeline"]["EndDateTime"] - ok["Timeline"]["StartDateTime"]) / timedelta(seconds=1)
    record_property("spark_step_seconds", round(seconds, 1))
    print(f"real Spark step: {seconds:.1f} s wall time")

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=lake, Prefix=f"{test_prefix}/counts/")["Contents"]]
    assert f"{test_prefix}/counts/dt=2024-01-01/_SUCCESS" in keys
    parts = [key for key in keys if key.endswith(".parquet")]
    assert len(parts) == 1
    table = pq.read_table(io.BytesIO(s3.get_object(Bucket=lake, Key=parts[0])["Body"].read()))
    counts = dict(zip(table.column("event_type").to_pylist(), table.column("count").to_pylist()))
    assert counts == {"view": 3, "click": 1, "purchase": 1}

    # A failing cluster-mode step, as EMR reports it: the launcher's exception, not the job's own line.
    failed = steps["failing"]["Status"]
    assert failed["State"] == "FAILED"
    details = failed["FailureDetails"]
    log_bucket, step_prefix = split_s3_uri(details["LogFile"].rsplit("/", 1)[0] + "/")
    assert details["LogFile"].endswith(f"/{cluster_id}/steps/{steps['failing']['Id']}/stderr.gz")
    launcher = _read_gz(s3, log_bucket, f"{step_prefix}stderr.gz")
    applications = re.findall(r"Submitted application (application_(\d+)_(\d{4}))", launcher)
    assert len(applications) == 1, launcher
    app_id, epoch_ms, sequence = applications[0]
    created = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["Timeline"]["CreationDateTime"]
    assert abs(int(epoch_ms) / 1000 - created.timestamp()) < 2  # the RM started with the cluster
    assert sequence == "0002"  # count_events ran first: application 0001
    assert f"Application report for {app_id} (state: RUNNING)" in launcher
    assert details["Message"] == (
        f'Exception in thread "main" org.apache.spark.SparkException: Application {app_id} finished with '
        "failed status"
    )
    assert details["Reason"] == "Unknown Error"
    step_logs = [_read_gz(s3, log_bucket, f"{step_prefix}{name}.gz") for name in ("stdout", "controller")]
    assert "FAILED demo" not in "".join([launcher, *step_logs, json.dumps(details)])

    # The driver's output is in its container log, delivered CONTAINER_LOG_DELAY_S after the step ended.
    log_prefix = split_s3_uri(resources["emr_log_uri"].rstrip("/") + "/")[1]
    driver = f"{log_prefix}{cluster_id}/containers/{app_id}/container_{epoch_ms}_{sequence}_01_000001/"
    delivered = wait_until(
        lambda: s3.list_objects_v2(Bucket=log_bucket, Prefix=driver).get("Contents"),
        CONTAINER_LOG_DELAY_S + 30,
        "the driver's container log",
    )
    assert sorted(item["Key"][len(driver) :] for item in delivered) == ["stderr.gz", "stdout.gz"]
    # Never before the delay had passed since the final state (S3 keeps whole seconds).
    earliest = failed["Timeline"]["EndDateTime"] + timedelta(seconds=CONTAINER_LOG_DELAY_S - 1)
    assert all(item["LastModified"] >= earliest for item in delivered), (delivered, earliest)
    driver_output = _read_gz(s3, log_bucket, f"{driver}stdout.gz") + _read_gz(
        s3, log_bucket, f"{driver}stderr.gz"
    )
    assert "FAILED demo: no input for 2024-01-01" in driver_output
