"""Fixtures of the end-to-end suite: the running local stack, deployed code, and real DAG runs.

Each test gets its own S3 prefixes (raw, parsed, runs, registry) and serving table so runs never see
each other's data, while sharing one stack, one deployed code version and one Airflow metadata DB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import boto3
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "localstack"))  # local_aws (the stack's own package; never named localstack)

from local_aws.settings import load_settings  # noqa: E402

from tests.localstack.stack_helpers import stack_for_session  # noqa: E402
from tools.local.run import RESOURCES, airflow_env, local_config, task_rows  # noqa: E402

DAG_ID = "recsys_training"
CODE_VERSION = "0.0.0-e2e"


@pytest.fixture(scope="session")
def e2e_stack():
    """The local stack, started for this session if it is not running (and then stopped again)."""
    with stack_for_session(load_settings()) as settings:
        yield settings


def client(service: str):
    endpoints = RESOURCES["endpoints"]  # EMR and DynamoDB have local endpoints of their own
    endpoint = endpoints.get(service, endpoints["localstack"])
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=RESOURCES["region"],
        aws_access_key_id=RESOURCES["aws_access_key_id"],
        aws_secret_access_key=RESOURCES["aws_secret_access_key"],
        config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture(scope="session")
def deployed_code(e2e_stack) -> str:
    """Package the jobs and deploy them to the local artefact bucket, as make deploy does."""
    from tools.release.deploy_code import deploy
    from tools.release.package_jobs import build

    out = ROOT / "var" / "e2e" / "code"
    build(CODE_VERSION, out)
    deploy(
        client("s3"), RESOURCES["buckets"]["artifacts"], "code", CODE_VERSION, out / CODE_VERSION, force=True
    )
    return CODE_VERSION


@pytest.fixture(scope="session")
def migrated_airflow(e2e_stack) -> None:
    env = dict(os.environ)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True
    )


@dataclass
class Scenario:
    """One test's isolated corner of the local data lake and registry."""

    tag: str
    config: Dict[str, object]

    @property
    def lake(self) -> str:
        return RESOURCES["buckets"]["data_lake"]

    @property
    def arts(self) -> str:
        return RESOURCES["buckets"]["artifacts"]

    def effective_config(self):
        """The PipelineConfig the DAG sees for this scenario (defaults + overrides)."""
        from recsys_dag.config import config_from_mapping

        return config_from_mapping(self.config)

    def key(self, name: str, *parts: str) -> str:
        return "/".join([str(self.config[name]).strip("/"), *parts])

    def run_dag(self, ds: str, dag_id: str = DAG_ID, **overrides) -> subprocess.CompletedProcess:
        """``airflow dags test`` for real: the DAG file unchanged, only config and connection differ."""
        config = {**self.config, **overrides}
        env = airflow_env(config)
        env["AIRFLOW_HOME"] = os.environ["AIRFLOW_HOME"]  # the suite's throw-away metadata DB
        log_dir = ROOT / "var" / "e2e" / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [sys.executable, "-m", "airflow", "dags", "test", dag_id, ds],
            env=env, cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        (log_dir / f"{self.tag}-{dag_id}-{ds}.log").write_text(proc.stdout + proc.stderr)
        return proc

    def start_dag(self, ds: str, **overrides) -> subprocess.Popen:
        """:meth:`run_dag` without waiting: the process leads its own session (so a test can kill the
        whole of it, as a dying worker would go) and writes to the same log file."""
        env = airflow_env({**self.config, **overrides})
        env["AIRFLOW_HOME"] = os.environ["AIRFLOW_HOME"]
        log_dir = ROOT / "var" / "e2e" / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / f"{self.tag}-{ds}-killed.log", "w") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "airflow", "dags", "test", DAG_ID, ds],
                env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def task_states(self, ds: str, dag_id: str = DAG_ID) -> Dict[str, str]:
        """Task id -> state of the latest run; a mapped task's instances as ``task[map_index]``."""
        env = airflow_env(self.config)
        env["AIRFLOW_HOME"] = os.environ["AIRFLOW_HOME"]
        rows = task_rows(env, ds, dag_id)
        return {
            row["task_id"] + (f"[{row['map_index']}]" if row.get("map_index") else ""): row["state"]
            for row in rows
        }

    def keys(self, bucket: str, prefix: str) -> List[str]:
        s3 = client("s3")
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/")
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def read_json(self, bucket: str, key: str) -> Optional[dict]:
        s3 = client("s3")
        try:
            return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None


@pytest.fixture
def scenario(deployed_code, migrated_airflow) -> Scenario:
    return new_scenario(deployed_code)


def new_scenario(deployed_code: str) -> Scenario:
    """A scenario under fresh prefixes and its own serving table, with an empty alert inbox."""
    from serving.table import ensure_table

    tag = f"e2e-{uuid.uuid4().hex[:8]}"
    ensure_table(client("dynamodb"), f"{tag}-serving", wait_delay_s=1)
    config = local_config(
        deployed_code,
        raw_prefix=f"{tag}/raw/events",
        parsed_prefix=f"{tag}/parsed/events",
        rejects_prefix=f"{tag}/rejects/events",
        runs_prefix=f"{tag}/runs",
        registry_prefix=f"{tag}/registry",
        tuning_prefix=f"{tag}/tuning",
        serving_table=f"{tag}-serving",
        half_life_days=7.0,
        factors=32,
        iterations=10,
        min_ndcg=0.01,
        min_margin_over_popularity=0.0,
    )
    alerts_about("")  # start from an empty alert inbox: alerts of earlier runs are not this test's
    return Scenario(tag=tag, config=config)


def alerts_about(text: str) -> List[str]:
    """Drain the alert queue and return the SNS messages that mention ``text``."""
    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName=RESOURCES["alerts"]["inbox_queue_name"])["QueueUrl"]
    found = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        if not batch:
            return found
        for message in batch:
            body = json.loads(message["Body"])
            text_ = body.get("Message", message["Body"])
            if text in text_:
                found.append(text_)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
