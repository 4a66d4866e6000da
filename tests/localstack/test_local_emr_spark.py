"""A real Spark step on the local EMR endpoint: s3:// code, input and output, all on LocalStack.

The step is shaped like the DAG's (``spark-submit --deploy-mode cluster --master yarn --py-files
s3://…zip s3://…py --input s3://… --output s3://…``); the runner rewrites it for local Spark and maps
``s3://`` to S3A. The job is a tiny PySpark script of this suite, uploaded to LocalStack with its
helper module zipped as py-files, so the test also proves spark-submit fetches both through S3A.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from typing import Any, Callable, Dict

import pyarrow.parquet as pq
import pytest
from stack_helpers import command_step

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

FAILING_JOB = 'raise ValueError("bad input: demo of a failing Spark step")\n'

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


def test_real_spark_step_reads_and_writes_parquet_on_localstack(
    s3: Any,
    resources: Dict[str, Any],
    test_prefix: str,
    make_cluster: Callable[..., str],
    wait_steps_ended: Callable[..., Dict[str, Any]],
    record_property: Callable[[str, Any], None],
) -> None:
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

    cluster_id = make_cluster(
        [spark_step("count_events", "count_events.py"), spark_step("failing", "failing.py")]
    )
    steps = wait_steps_ended(cluster_id, timeout_s=300)

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

    # A Spark step that raises: FAILED, with the Python exception as the message and stderr in the LogUri.
    failed = steps["failing"]["Status"]
    assert failed["State"] == "FAILED"
    assert failed["FailureDetails"]["Message"] == "ValueError: bad input: demo of a failing Spark step"
    assert failed["FailureDetails"]["LogFile"].endswith(
        f"/{cluster_id}/steps/{steps['failing']['Id']}/stderr.gz"
    )
