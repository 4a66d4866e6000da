"""Whole DAG runs with ``dag.test()`` against in-process moto (S3, SNS, SQS, EMR).

EMR itself cannot run here, so moto stands in for its API and the test decides each step's state
(moto never advances steps on its own). What the Spark steps would write to S3 (model objects and
metrics.json) is put in place by the test; everything else is the DAG's real behaviour: real Airflow
metadata DB, real provider operators and sensors, real SNS -> SQS delivery of alerts.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.exceptions import JsonRESTError
from moto.emr import models as emr_models
from moto.s3.models import s3_backends

from tests.dags.conftest import REGION, load_dag_module

pytestmark = pytest.mark.dag

DS = "2024-01-31"
LOGICAL_DATE = dt.datetime(2024, 1, 31, 2, 0, tzinfo=dt.timezone.utc)
LAKE, ARTS = "test-lake", "test-arts"
JOBS = ("parse_logs", "build_features", "train_cf", "evaluate")
ACTIVE_CLUSTER_STATES = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING", "TERMINATING"]


@dataclass
class StepScript:
    """How moto's EMR should report steps: final state per step name, and throttled DescribeStep calls."""

    outcomes: Dict[str, str] = field(default_factory=dict)
    throttles: int = 0
    throttled: int = 0

    def install(self, monkeypatch) -> None:
        original = emr_models.ElasticMapReduceBackend.describe_step
        script = self

        def describe_step(backend, cluster_id, step_id):
            if script.throttles > 0:
                script.throttles -= 1
                script.throttled += 1
                raise JsonRESTError("ThrottlingException", "Rate exceeded")
            step = original(backend, cluster_id, step_id)
            state = script.outcomes.get(step.name, "COMPLETED")
            if state == "FAILED" and step.state != "FAILED":
                log_uri = backend.clusters[cluster_id].log_uri
                log_file = f"{log_uri.rstrip('/')}/{cluster_id}/steps/{step_id}/stderr.gz"
                step.failure_details = {
                    "Reason": "Unknown Error.",
                    "Message": f"Step {step.name} exited with code 2",
                    "LogFile": log_file,
                }
                bucket, key = log_file[len("s3://") :].split("/", 1)
                stderr = (
                    f"INFO starting {step.name}\nTraceback (most recent call last):\nboom in {step.name}\n"
                )
                s3_backends[DEFAULT_ACCOUNT_ID]["aws"].put_object(bucket, key, gzip.compress(stderr.encode()))
            step.state = state
            return step

        def status(step):
            out = {
                "State": step.state,
                "StateChangeReason": {"Message": getattr(step, "last_state_change_reason", None)},
                "Timeline": {
                    "CreationDateTime": step.creation_date_time,
                    "EndDateTime": step.end_date_time,
                    "StartDateTime": step.start_date_time,
                },
            }
            if getattr(step, "failure_details", None):
                out["FailureDetails"] = step.failure_details
            return out

        monkeypatch.setattr(emr_models.ElasticMapReduceBackend, "describe_step", describe_step)
        monkeypatch.setattr(emr_models.Step, "status", property(status))


class World:
    """The mocked AWS account the DAG runs against, with helpers to arrange and inspect it."""

    def __init__(self):
        self.s3 = boto3.client("s3", region_name=REGION)
        self.sns = boto3.client("sns", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.emr = boto3.client("emr", region_name=REGION)
        for bucket in (LAKE, ARTS):
            self.s3.create_bucket(Bucket=bucket)
        self.topic_arn = self.sns.create_topic(Name="recsys-alerts")["TopicArn"]
        self.queue_url = self.sqs.create_queue(QueueName="recsys-alerts-inbox")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        self.sns.subscribe(
            TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"]
        )

    def config(self, **overrides) -> dict:
        base = {
            "aws_conn_id": None,
            "region_name": REGION,
            "data_bucket": LAKE,
            "artifact_bucket": ARTS,
            "alert_topic_arn": self.topic_arn,
            "retries": 0,
            "retry_delay_seconds": 1,
            "data_poke_interval_seconds": 1,
            "step_poke_interval_seconds": 1,
            "min_ndcg": 0.05,
            "min_margin_over_popularity": 0.01,
            "max_regression_vs_production": 0.02,
        }
        return {**base, **overrides}

    def day_arrives(self, ds: str = DS) -> None:
        self.s3.put_object(Bucket=LAKE, Key=f"raw/events/dt={ds}/part-0.jsonl", Body=b"{}\n")
        self.s3.put_object(Bucket=LAKE, Key=f"raw/events/dt={ds}/_SUCCESS", Body=b"")

    def steps_wrote_outputs(self, ndcg: float, popularity: float = 0.10, ds: str = DS) -> None:
        """What train_cf and evaluate would have written for ``ds``."""
        for key in ("model/user_factors/part-0.parquet", "model/recommendations/part-0.parquet"):
            self.s3.put_object(Bucket=ARTS, Key=f"runs/dt={ds}/{key}", Body=b"parquet bytes")
        metrics = {
            "k": 10,
            "model": {
                "precision@10": 0.1,
                "recall@10": 0.1,
                "ndcg@10": ndcg,
                "map@10": 0.05,
                "coverage": 0.3,
            },
            "popularity": {
                "precision@10": 0.05,
                "recall@10": 0.05,
                "ndcg@10": popularity,
                "map@10": 0.02,
                "coverage": 0.01,
            },
            "users_evaluated": 100,
        }
        self.s3.put_object(Bucket=ARTS, Key=f"runs/dt={ds}/evaluation/metrics.json", Body=json.dumps(metrics))

    def production(self, version: str, ndcg: float) -> None:
        latest = {"version": version, "metrics": {"k": 10, "model": {"ndcg@10": ndcg}}}
        self.s3.put_object(Bucket=ARTS, Key="registry/latest.json", Body=json.dumps(latest))

    def latest(self) -> Optional[dict]:
        try:
            return json.loads(self.s3.get_object(Bucket=ARTS, Key="registry/latest.json")["Body"].read())
        except self.s3.exceptions.NoSuchKey:
            return None

    def keys(self, bucket: str, prefix: str = "") -> List[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def messages(self) -> List[str]:
        out = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            batch = got.get("Messages", [])
            if not batch:
                return out
            for message in batch:
                out.append(json.loads(message["Body"])["Message"])
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def clusters(self, states=None) -> List[dict]:
        kwargs = {"ClusterStates": states} if states else {}
        return self.emr.list_clusters(**kwargs)["Clusters"]


@pytest.fixture
def world(airflow_db, aws_env):
    with mock_aws():
        world = World()
        yield world
        # Whatever happened in the scenario, no cluster may be left running.
        assert world.clusters(ACTIVE_CLUSTER_STATES) == []


def run_dag(monkeypatch, world: World, **overrides):
    """Import the DAG with the scenario's config and run it for LOGICAL_DATE; returns (dag_run, states)."""
    module = load_dag_module(monkeypatch, **world.config(**overrides))
    dag_run = module.dag.test(logical_date=LOGICAL_DATE)
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    return dag_run, states


def test_happy_path_promotes_and_summarises(monkeypatch, world):
    StepScript().install(monkeypatch)
    world.day_arrives()
    world.steps_wrote_outputs(ndcg=0.20)

    dag_run, states = run_dag(monkeypatch, world)

    assert dag_run.state == "success"
    assert all(states[f"watch_{job}"] == "success" for job in JOBS)
    assert states["terminate_cluster"] == "success" and states["hold_model"] == "skipped"
    (cluster,) = world.clusters()
    assert cluster["Status"]["State"] == "TERMINATED"
    steps = world.emr.list_steps(ClusterId=cluster["Id"])["Steps"]
    assert sorted(step["Name"] for step in steps) == sorted(JOBS)
    latest = world.latest()
    assert latest["version"] == DS and latest["metrics"]["model"]["ndcg@10"] == 0.20
    assert world.keys(ARTS, f"registry/versions/{DS}/") == [
        f"registry/versions/{DS}/_manifest.json",
        f"registry/versions/{DS}/metrics.json",
        f"registry/versions/{DS}/model/recommendations/part-0.parquet",
        f"registry/versions/{DS}/model/user_factors/part-0.parquet",
    ]
    gate = json.loads(world.s3.get_object(Bucket=ARTS, Key=f"runs/dt={DS}/gate.json")["Body"].read())
    assert gate["promote"] is True and all(reason.startswith("PASS") for reason in gate["reasons"])
    (summary,) = world.messages()
    assert summary.startswith(f"recsys_training {DS}: promoted version {DS}; ndcg@10=0.2000")


@pytest.mark.parametrize("failing", JOBS)
def test_a_failed_step_fails_the_run_terminates_and_alerts(monkeypatch, world, failing):
    later = JOBS[JOBS.index(failing) + 1 :]
    StepScript(outcomes={failing: "FAILED", **{job: "CANCELLED" for job in later}}).install(monkeypatch)
    world.day_arrives()
    world.steps_wrote_outputs(ndcg=0.20)  # even if outputs exist, a failed run must not promote

    dag_run, states = run_dag(monkeypatch, world)

    assert dag_run.state == "failed"
    assert states[f"watch_{failing}"] == "failed"
    for job in later:
        assert states[f"watch_{job}"] == "upstream_failed"
    assert states["quality_gate"] == "upstream_failed" and states["promote_model"] == "upstream_failed"
    assert states["terminate_cluster"] == "success"
    (cluster,) = world.clusters()
    assert cluster["Status"]["State"] == "TERMINATED"
    assert world.latest() is None
    (alert,) = world.messages()
    assert f"task: watch_{failing}" in alert
    assert f"cluster: {cluster['Id']}" in alert
    assert f"step: {failing} (s-" in alert and "state FAILED" in alert
    assert f"Step {failing} exited with code 2" in alert
    assert f"boom in {failing}" in alert  # the stderr tail from the LogUri
    assert f"run: {dag_run.run_id}" in alert


def test_cluster_creation_failure_leaves_nothing_running_and_alerts(monkeypatch, world):
    def refuse(*args, **kwargs):
        raise JsonRESTError("ValidationException", "Instance type m5.2xlarge is not supported in this AZ")

    monkeypatch.setattr(emr_models.ElasticMapReduceBackend, "run_job_flow", refuse)
    world.day_arrives()

    dag_run, states = run_dag(monkeypatch, world)

    assert dag_run.state == "failed"
    assert states["create_cluster"] == "failed"
    assert states["add_steps"] == "upstream_failed"
    assert world.clusters() == []
    (alert,) = world.messages()
    assert "task: create_cluster" in alert and "not supported in this AZ" in alert


def test_metrics_under_threshold_hold_the_model(monkeypatch, world):
    StepScript().install(monkeypatch)
    world.day_arrives()
    world.steps_wrote_outputs(ndcg=0.04, popularity=0.035)  # below the 0.05 floor
    world.production("2024-01-30", ndcg=0.21)
    before = world.s3.get_object(Bucket=ARTS, Key="registry/latest.json")["Body"].read()

    dag_run, states = run_dag(monkeypatch, world)

    assert dag_run.state == "success"  # holding a model is a decision, not a failure
    assert states["hold_model"] == "success" and states["promote_model"] == "skipped"
    assert world.s3.get_object(Bucket=ARTS, Key="registry/latest.json")["Body"].read() == before
    assert world.keys(ARTS, "registry/versions/") == []
    (summary,) = world.messages()
    assert "held: FAIL ndcg@10 0.0400 vs floor 0.0500" in summary


def test_regression_against_production_holds_the_model(monkeypatch, world):
    StepScript().install(monkeypatch)
    world.day_arrives()
    world.steps_wrote_outputs(ndcg=0.15, popularity=0.10)
    world.production("2024-01-30", ndcg=0.20)  # 0.05 worse than production, tolerance 0.02

    _, states = run_dag(monkeypatch, world)

    assert states["hold_model"] == "success" and world.latest()["version"] == "2024-01-30"
    assert "change vs production -0.0500" in world.messages()[0]


def test_throttled_describe_step_is_ridden_out(monkeypatch, world):
    script = StepScript(throttles=3)
    script.install(monkeypatch)
    world.day_arrives()
    world.steps_wrote_outputs(ndcg=0.20)

    dag_run, states = run_dag(monkeypatch, world)

    assert script.throttled == 3
    assert dag_run.state == "success" and states["watch_parse_logs"] == "success"


def test_rerun_of_the_same_date_is_idempotent(monkeypatch, world):
    StepScript().install(monkeypatch)
    world.day_arrives()
    world.steps_wrote_outputs(ndcg=0.20)

    first_run, _ = run_dag(monkeypatch, world)
    keys_after_first = world.keys(ARTS) + world.keys(LAKE)
    latest_after_first = world.s3.get_object(Bucket=ARTS, Key="registry/latest.json")
    world.messages()

    second_run, _ = run_dag(monkeypatch, world)

    assert first_run.state == second_run.state == "success"
    assert world.keys(ARTS) + world.keys(LAKE) == keys_after_first  # same keys, nothing added
    latest_after_second = world.s3.get_object(Bucket=ARTS, Key="registry/latest.json")
    assert latest_after_second["ETag"] == latest_after_first["ETag"]
    assert latest_after_second["LastModified"] == latest_after_first["LastModified"]  # not rewritten
    clusters = world.clusters()
    assert len(clusters) == 2  # one per run, both terminated
    for cluster in clusters:
        steps = world.emr.list_steps(ClusterId=cluster["Id"])["Steps"]
        assert sorted(step["Name"] for step in steps) == sorted(JOBS)  # no duplicated steps
    (summary,) = world.messages()
    assert f"version {DS} already promoted (rerun)" in summary


def test_retried_add_steps_does_not_add_them_twice(monkeypatch, world):
    module = load_dag_module(monkeypatch, **world.config())
    add_steps = module.dag.task_dict["add_steps"]
    cluster_id = world.emr.run_job_flow(
        Name="c", ReleaseLabel="emr-7.5.0", Instances={"KeepJobFlowAliveWhenNoSteps": True}
    )["JobFlowId"]
    steps = [
        {"Name": job, "ActionOnFailure": "CANCEL_AND_WAIT", "HadoopJarStep": {"Jar": "command-runner.jar"}}
        for job in JOBS
    ]
    operator = type(add_steps)(
        task_id="add_steps_probe", job_flow_id=cluster_id, steps=json.dumps(steps), aws_conn_id=None
    )
    context = {"ti": _NoXCom()}
    first = operator.execute(context)
    operator.steps = json.dumps(steps)  # a retry renders the template again
    second = operator.execute(context)
    assert first == second and len(first) == 4
    assert len(world.emr.list_steps(ClusterId=cluster_id)["Steps"]) == 4
    world.emr.terminate_job_flows(JobFlowIds=[cluster_id])


class _NoXCom:
    def xcom_push(self, key, value):
        pass
