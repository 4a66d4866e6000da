"""Whole DAG runs with ``dag.test()`` against in-process moto (S3, SNS, SQS, EMR, DynamoDB).

EMR itself cannot run here, so moto stands in for its API and the test decides each step's state
(moto never advances steps on its own). What the Spark steps would write (model objects and
metrics.json on S3; for load_serving, its summary and the version's loaded marker in the serving table)
is put in place by the test; everything else is the DAG's real behaviour: real Airflow metadata DB, real
provider operators and sensors, real SNS -> SQS delivery of alerts, the real pointer switch.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.models import dynamodb_backends
from moto.emr import models as emr_models
from moto.s3.models import s3_backends
from recsys_dag.config import PipelineConfig
from recsys_dag.locations import JOBS

from serving import pointer
from serving.table import (
    Loaded,
    RankedList,
    check_version,
    encode_list,
    encode_loaded,
    ensure_table,
    popularity_key,
)
from tests.dags.conftest import REGION, load_dag_module

pytestmark = pytest.mark.dag

DS = "2024-01-31"
LOGICAL_DATE = dt.datetime(2024, 1, 31, 2, 0, tzinfo=dt.timezone.utc)
LAKE, ARTS = "test-lake", "test-arts"
SERVING_TABLE = PipelineConfig().serving_table
SERVED_USERS = 120  # the users steps_wrote_outputs' params.json says have lists
ACTIVE_CLUSTER_STATES = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING", "TERMINATING"]


@dataclass
class StepScript:
    """How moto's EMR should report steps: the final state per step name (default COMPLETED), reached
    after ``running_polls`` DescribeStep calls per step that still say RUNNING. API faults are injected
    over HTTP instead (test_emr_failure_paths.py)."""

    outcomes: Dict[str, str] = field(default_factory=dict)
    running_polls: int = 0
    polls: Dict[str, int] = field(default_factory=dict)

    def install(self, monkeypatch) -> None:
        original = emr_models.ElasticMapReduceBackend.describe_step
        script = self

        def describe_step(backend, cluster_id, step_id):
            step = original(backend, cluster_id, step_id)
            script.polls[step_id] = script.polls.get(step_id, 0) + 1
            if script.polls[step_id] <= script.running_polls:
                step.state = "RUNNING"
                return step
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
            if state == "COMPLETED" and step.name == "load_serving":
                step_loaded(list(step.args))
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


def step_loaded(args: List[str]) -> None:
    """What a completed load_serving step leaves behind (spark_jobs/load_serving.py): its summary on S3
    and, in the serving table, the version's popularity list and loaded marker (the user lists
    themselves are not written: the DAG never reads them)."""
    version, table = args[args.index("--version") + 1], args[args.index("--table") + 1]
    expires_at = int(time.time()) + 30 * 86400
    popular = RankedList(("i1", "i2"), (9.0, 8.0), "popularity")
    marker = Loaded(
        version, check_version(version), SERVED_USERS, 2, "2024-01-31T03:00:00.000000Z", expires_at
    )
    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION]
    backend.put_item(table, encode_list(popularity_key(version), popular, expires_at))
    backend.put_item(table, encode_loaded(marker))
    summary = {"version": version, "table": table, "users": SERVED_USERS, "lists_written": SERVED_USERS}
    bucket, key = args[args.index("--summary") + 1][len("s3://") :].split("/", 1)
    s3_backends[DEFAULT_ACCOUNT_ID]["aws"].put_object(bucket, key, json.dumps(summary).encode())


def scored(version: str, difference: float, production_ndcg: float = 0.20) -> dict:
    """evaluate's production block: production's configuration scored on the same users."""
    return {
        "status": "refit",
        "version": version,
        "ds": version[:10],
        "reason": "production's configuration refitted on today's split",
        "model": {"ndcg@10": production_ndcg, "coverage": 0.3},
        "paired": {
            "users": 100,
            "mean_difference": {"ndcg@10": difference},
            "standard_error": {"ndcg@10": 0.004},
            "users_better": 40,
            "users_worse": 30,
        },
    }


class World:
    """The mocked AWS account the DAG runs against, with helpers to arrange and inspect it."""

    def __init__(self, endpoint_url: Optional[str] = None):
        """In-process moto (``mock_aws``), or moto's HTTP server at ``endpoint_url``."""
        clients = {"region_name": REGION, "endpoint_url": endpoint_url}
        self.s3 = boto3.client("s3", **clients)
        self.sns = boto3.client("sns", **clients)
        self.sqs = boto3.client("sqs", **clients)
        self.emr = boto3.client("emr", **clients)
        self.dynamodb = boto3.client("dynamodb", **clients)
        ensure_table(self.dynamodb, SERVING_TABLE, wait_delay_s=1)
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
            "step_sensor_retry_delay_seconds": 1,
            "step_transient_backoff_seconds": 0.01,
            "step_transient_backoff_max_seconds": 0.05,
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

    def steps_wrote_outputs(
        self,
        ndcg: float,
        popularity: float = 0.10,
        ds: str = DS,
        production: Optional[dict] = None,
        users: int = 100,
    ) -> None:
        """What build_features, train_cf and evaluate would have written for ``ds``.

        ``production``: evaluate's production block, e.g. :func:`scored` (default: no production yet).
        """
        run = f"runs/dt={ds}"
        for key in (
            "model/model/user_factors/part-0.parquet",
            "model/model/item_factors/part-0.parquet",
            "model/recommendations/part-0.parquet",
            "model/evaluation/recommendations/part-0.parquet",
        ):
            self.s3.put_object(Bucket=ARTS, Key=f"{run}/{key}", Body=b"parquet bytes")
        training = {
            "engine": "implicit",
            "params": {"engine": "implicit", "algorithm": "als", "factors": 64},
            "serve_k": 100,
            "served_lists": {"users": 120, "model_users": 100, "popularity_users": 20, "rows": 12000},
        }
        self.s3.put_object(Bucket=ARTS, Key=f"{run}/model/model/params.json", Body=json.dumps(training))
        manifest = {"partitions_read": [f"s3://{LAKE}/parsed/events/dt={ds}"], "partitions_missing": []}
        self.s3.put_object(Bucket=ARTS, Key=f"{run}/features/manifest.json", Body=json.dumps(manifest))
        metrics = {
            "k": 10,
            "model": {"ndcg@10": ndcg, "precision@10": 0.1, "coverage": 0.3},
            "popularity": {"ndcg@10": popularity, "precision@10": 0.05, "coverage": 0.01},
            "users_evaluated": users,
            "production": production or {"status": "none", "version": None, "reason": "no production"},
        }
        self.s3.put_object(Bucket=ARTS, Key=f"{run}/evaluation/metrics.json", Body=json.dumps(metrics))

    def production(self, version: str, ndcg: float, ds: Optional[str] = None) -> None:
        """A live production model (a pointer in the current layout) whose stored NDCG is ``ndcg``."""
        latest = {
            "version": version,
            "ds": ds or version[:10],
            "model": f"s3://{ARTS}/registry/versions/{version}/model",
            "recommendations": f"s3://{ARTS}/registry/versions/{version}/recommendations",
            "metrics": {"k": 10, "model": {"ndcg@10": ndcg}},
        }
        self.s3.put_object(Bucket=ARTS, Key="registry/latest.json", Body=json.dumps(latest))

    def serving_live(self) -> Optional[str]:
        """The version the serving table's pointer names, or None."""
        live = pointer.read_pointer(self.dynamodb, SERVING_TABLE)
        return live.version if live else None

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


def asset_events() -> List[dict]:
    """Asset events in the metadata DB for the model pointer (any URI ending in registry/latest.json)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(AssetModel.uri, AssetEvent.extra).join(AssetEvent.asset)).all()
    return [{"uri": uri, "extra": extra} for uri, extra in rows if uri.endswith("registry/latest.json")]


def test_happy_path_promotes_and_summarises(monkeypatch, world):
    StepScript().install(monkeypatch)
    world.day_arrives()
    world.steps_wrote_outputs(ndcg=0.20)
    events_before = len(asset_events())

    dag_run, states = run_dag(monkeypatch, world)

    assert dag_run.state == "success"
    assert all(states[f"watch_{job}"] == "success" for job in JOBS)
    assert states["terminate_cluster"] == "success" and states["hold_model"] == "skipped"
    (cluster,) = world.clusters()
    assert cluster["Status"]["State"] == "TERMINATED"
    steps = world.emr.list_steps(ClusterId=cluster["Id"])["Steps"]
    assert sorted(step["Name"] for step in steps) == sorted(JOBS)
    version = f"{DS}_{cluster['Id']}"
    latest = world.latest()
    assert latest["version"] == version and latest["ds"] == DS and latest["run_id"] == dag_run.run_id
    assert latest["model"] == f"s3://{ARTS}/registry/versions/{version}/model"
    assert latest["recommendations"] == f"s3://{ARTS}/registry/versions/{version}/recommendations"
    assert latest["metrics"]["model"]["ndcg@10"] == 0.20 and latest["promoted_at"]
    assert latest["lineage"] == {
        "code_version": "0.1.0",
        "cluster_id": cluster["Id"],
        "partitions_read": [f"s3://{LAKE}/parsed/events/dt={DS}"],
        "partitions_missing": [],
        "window": None,
    }
    prefix = f"registry/versions/{version}/"
    assert world.keys(ARTS, prefix) == [
        prefix + key
        for key in (
            "_manifest.json",
            "gate.json",
            "metrics.json",
            "model/item_factors/part-0.parquet",
            "model/params.json",
            "model/user_factors/part-0.parquet",
            "recommendations/part-0.parquet",
        )
    ]
    gate = json.loads(world.s3.get_object(Bucket=ARTS, Key=f"runs/dt={DS}/gate.json")["Body"].read())
    assert gate["promote"] is True and all(reason.startswith("PASS") for reason in gate["reasons"])
    assert gate["users_evaluated"] == 100 and gate["coverage"] == 0.3
    (summary,) = world.messages()
    assert summary.startswith(f"recsys_training {DS}: promoted version {version}; ndcg@10=0.2000")
    assert "served lists: 120 users (100 model, 20 popularity)" in summary
    # The serving table follows latest.json: its pointer names the promoted version, moved once.
    assert world.serving_live() == version
    assert f"serving table {SERVING_TABLE} switched to {version}" in summary
    (move,) = pointer.history(world.dynamodb, SERVING_TABLE)
    assert (move.action, move.previous, move.lists, move.by) == (
        "switch",
        None,
        SERVED_USERS,
        f"recsys_training/{dag_run.run_id}",
    )
    events = asset_events()[events_before:]
    assert [event["extra"] for event in events] == [{"version": version}]  # latest.json changed once


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
    assert world.latest() is None and world.serving_live() is None
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
    # The held version was loaded (its lists expire by TTL) but is never live.
    (cluster,) = world.clusters()
    assert pointer.read_loaded(world.dynamodb, SERVING_TABLE, f"{DS}_{cluster['Id']}") is not None
    assert world.serving_live() is None


def test_the_paired_comparison_holds_a_worse_model_that_beats_the_stored_number(monkeypatch, world):
    StepScript().install(monkeypatch)
    world.day_arrives()
    # Production's stored NDCG (another day's data) is 0.12: the candidate's 0.20 "beats" it. Scored on
    # today's split, production's configuration reaches 0.25: the candidate is 0.05 worse.
    world.production("2024-01-30_j-OLD", ndcg=0.12)
    world.steps_wrote_outputs(ndcg=0.20, production=scored("2024-01-30_j-OLD", -0.05, 0.25))
    events_before = len(asset_events())

    _, states = run_dag(monkeypatch, world)

    assert states["hold_model"] == "success" and world.latest()["version"] == "2024-01-30_j-OLD"
    assert world.keys(ARTS, "registry/versions/") == []
    assert "paired change vs production 2024-01-30_j-OLD -0.0500 (production 0.2500" in world.messages()[0]
    gate = json.loads(world.s3.get_object(Bucket=ARTS, Key=f"runs/dt={DS}/gate.json")["Body"].read())
    assert gate["paired_ndcg_difference"] == -0.05 and gate["production_ndcg"] == 0.25
    assert len(asset_events()) == events_before


def test_a_comparison_with_a_production_that_since_moved_holds(monkeypatch, world):
    StepScript().install(monkeypatch)
    world.day_arrives()
    world.production("2024-01-30_j-NEW", ndcg=0.2)  # moved after train_cf scored j-OLD
    world.steps_wrote_outputs(ndcg=0.20, production=scored("2024-01-30_j-OLD", +0.01))

    _, states = run_dag(monkeypatch, world)

    assert states["hold_model"] == "success"
    assert (
        "the run scored production 2024-01-30_j-OLD, but latest.json now names 2024-01-30_j-NEW"
        in (world.messages()[0])
    )


def test_malformed_metrics_fail_the_gate_and_alert(monkeypatch, world):
    StepScript().install(monkeypatch)
    world.day_arrives()
    world.steps_wrote_outputs(ndcg=0.20)
    world.s3.put_object(Bucket=ARTS, Key=f"runs/dt={DS}/evaluation/metrics.json", Body=b'{"k": 10}')

    dag_run, states = run_dag(monkeypatch, world)

    assert dag_run.state == "failed" and states["quality_gate"] == "failed"
    assert states["promote_model"] == "upstream_failed" and world.latest() is None
    (alert,) = world.messages()
    assert "task: quality_gate" in alert and "metrics.json lacks model.ndcg@10" in alert


def test_a_backfill_is_registered_but_never_made_live(monkeypatch, world):
    StepScript().install(monkeypatch)
    world.day_arrives()
    world.production("2024-02-03_j-NEWER", ndcg=0.30)
    world.steps_wrote_outputs(
        ndcg=0.20, production={"status": "older_date", "version": "2024-02-03_j-NEWER", "reason": "later"}
    )
    before = world.s3.get_object(Bucket=ARTS, Key="registry/latest.json")["Body"].read()
    events_before = len(asset_events())

    _, states = run_dag(monkeypatch, world)

    assert states["promote_model"] == "success"
    assert world.s3.get_object(Bucket=ARTS, Key="registry/latest.json")["Body"].read() == before
    (cluster,) = world.clusters()
    assert f"registry/versions/{DS}_{cluster['Id']}/_manifest.json" in world.keys(ARTS, "registry/")
    (summary,) = world.messages()
    assert f"registered version {DS}_{cluster['Id']}, not live: SKIP paired check" in summary
    assert len(asset_events()) == events_before
    assert world.serving_live() is None  # a backfill never moves the serving pointer either


def test_a_rerun_after_a_fix_is_promoted_as_a_new_version(monkeypatch, world):
    StepScript().install(monkeypatch)
    world.day_arrives()
    world.steps_wrote_outputs(ndcg=0.20)

    first_run, _ = run_dag(monkeypatch, world)
    first = world.latest()
    world.messages()
    # The fixed rerun: evaluate compared it with the first version (same configuration, no change).
    world.steps_wrote_outputs(ndcg=0.21, production=scored(first["version"], 0.0))
    second_run, _ = run_dag(monkeypatch, world)

    assert first_run.state == second_run.state == "success"
    second = world.latest()
    assert second["version"] != first["version"] and second["ds"] == first["ds"] == DS
    assert second["metrics"]["model"]["ndcg@10"] == 0.21
    manifests = [key for key in world.keys(ARTS, "registry/versions/") if key.endswith("_manifest.json")]
    assert len(manifests) == 2  # both versions kept, neither overwritten
    clusters = world.clusters()
    assert len(clusters) == 2  # one per run, both terminated
    for cluster in clusters:
        steps = world.emr.list_steps(ClusterId=cluster["Id"])["Steps"]
        assert sorted(step["Name"] for step in steps) == sorted(JOBS)  # no duplicated steps
    (summary,) = world.messages()
    assert f"promoted version {second['version']}" in summary
    assert f"paired vs production {first['version']} +0.0000" in summary
    assert world.serving_live() == second["version"]  # same date: the rerun's version moves forward
    assert [move.previous for move in pointer.history(world.dynamodb, SERVING_TABLE)] == [
        first["version"],
        None,
    ]


def test_a_load_that_did_not_reconcile_is_never_made_live(monkeypatch, world):
    """load_serving's summary says fewer lists were written than users read: promote_model refuses
    before latest.json moves, so production and the serving table both stay where they were."""
    script = StepScript()
    script.install(monkeypatch)
    scripted = emr_models.ElasticMapReduceBackend.describe_step

    def short_load(backend, cluster_id, step_id):
        step = scripted(backend, cluster_id, step_id)
        if step.name == "load_serving" and step.state == "COMPLETED":
            args = list(step.args)
            uri = args[args.index("--summary") + 1]
            bucket, key = uri[len("s3://") :].split("/", 1)
            summary = {"version": args[args.index("--version") + 1], "users": 120, "lists_written": 119}
            s3_backends[DEFAULT_ACCOUNT_ID]["aws"].put_object(bucket, key, json.dumps(summary).encode())
        return step

    monkeypatch.setattr(emr_models.ElasticMapReduceBackend, "describe_step", short_load)
    world.day_arrives()
    world.steps_wrote_outputs(ndcg=0.20)

    dag_run, states = run_dag(monkeypatch, world)

    assert dag_run.state == "failed" and states["promote_model"] == "failed"
    assert world.latest() is None and world.serving_live() is None
    (alert,) = world.messages()
    assert "task: promote_model" in alert
    assert "the serving load did not reconcile: 119 lists written for 120 users" in alert


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
    assert first == second and len(first) == len(JOBS)
    assert len(world.emr.list_steps(ClusterId=cluster_id)["Steps"]) == len(JOBS)
    world.emr.terminate_job_flows(JobFlowIds=[cluster_id])


class _NoXCom:
    def xcom_push(self, key, value):
        pass
