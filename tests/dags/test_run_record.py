# ruff: noqa: F811  (the ``world`` fixture is imported from test_dag_runs; tests take it as an argument)
"""The run record: the cluster's timeline and cost estimate, the run's numbers as CloudWatch metrics
(moto's CloudWatch in the DAG runs), and a metrics outage that alerts but never fails the run."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from moto.cloudwatch import models as cloudwatch_models
from recsys_dag import cost, run_record

from tests.dags.test_dag_runs import ARTS, DS, StepScript, run_dag, world  # noqa: F401

PRICES = cost.load_prices(Path(__file__).resolve().parents[2] / "emr_configs" / "prices.json")
T0 = dt.datetime(2024, 1, 31, 2, 0, tzinfo=dt.timezone.utc)


@pytest.mark.unit
def test_the_cost_is_ready_to_end_times_the_instances_price_and_says_it_is_an_estimate():
    cluster = {
        "Id": "j-1",
        "Status": {
            "State": "TERMINATED",
            "Timeline": {
                "CreationDateTime": T0,
                "ReadyDateTime": T0 + dt.timedelta(minutes=12),
                "EndDateTime": T0 + dt.timedelta(minutes=72),
            },
        },
    }
    estimate = run_record.cluster_cost(cluster, [("m5.xlarge", 1), ("m5.2xlarge", 2)], PRICES, "us-east-1")
    assert estimate["minutes"] == 60.0 and estimate["provisioning_minutes"] == 12.0
    assert estimate["usd_per_hour"] == pytest.approx(0.24 + 2 * 0.48)
    assert estimate["usd"] == pytest.approx(1.2)
    assert "estimate" in estimate["estimate"] and "prices" in estimate["note"]
    running = {**cluster, "Status": {"State": "TERMINATING", "Timeline": {"CreationDateTime": T0}}}
    assert run_record.cluster_cost(running, [("m5.xlarge", 1)], PRICES, None)["usd"] is None
    assert "unknown" in run_record.cost_line(run_record.cluster_cost(running, [], PRICES, None))


@pytest.mark.unit
def test_metrics_leave_out_what_a_failed_run_never_reached_and_always_say_promoted():
    stats = {"lines": 100, "accepted": 97, "rejected": 3, "reject_ratio": 0.03}
    metrics = dict((n, v) for n, v, _ in run_record.run_metrics(stats, None, None, None, False, {}))
    assert metrics == {
        "LinesRead": 100,
        "LinesAccepted": 97,
        "LinesRejected": 3,
        "RejectRatio": 0.03,
        "ModelPromoted": 0,
    }
    data = run_record.metric_data([("ModelPromoted", 1.0, "Count")], "recsys_training", T0)
    assert data[0]["Dimensions"] == [{"Name": "Pipeline", "Value": "recsys_training"}]  # no run id


def cloudwatch_values(world, name: str):
    import boto3

    client = boto3.client("cloudwatch", region_name="us-east-1")
    result = client.get_metric_statistics(
        Namespace=run_record.NAMESPACE,
        MetricName=name,
        Dimensions=[{"Name": "Pipeline", "Value": "recsys_training"}],
        StartTime=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1),
        EndTime=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1),
        Period=3600,
        Statistics=["Sum"],
    )
    return [point["Sum"] for point in result["Datapoints"]]


@pytest.mark.dag
def test_a_promoted_run_records_its_cost_and_sends_its_metrics(monkeypatch, world):
    StepScript().install(monkeypatch)
    world.day_arrives()
    world.steps_wrote_outputs(ndcg=0.20)
    stats = {"lines": 1000, "accepted": 990, "rejected": 10, "reject_ratio": 0.01}
    world.s3.put_object(Bucket=ARTS, Key=f"runs/dt={DS}/parse_logs_stats.json", Body=json.dumps(stats))

    dag_run, states = run_dag(monkeypatch, world)

    assert dag_run.state == "success" and states["record_run"] == "success"
    record = json.loads(world.s3.get_object(Bucket=ARTS, Key=f"runs/dt={DS}/run.json")["Body"].read())
    (cluster,) = world.clusters()
    assert record["cost"]["cluster_id"] == cluster["Id"] and record["cost"]["state"] == "TERMINATED"
    assert record["cost"]["usd"] is not None and record["promoted"] is True
    assert record["metrics"]["CandidateNdcg"] == 0.20 and record["metrics"]["RejectRatio"] == 0.01
    assert record["metrics_sent"]["count"] == len(record["metrics"])
    gate = json.loads(world.s3.get_object(Bucket=ARTS, Key=f"runs/dt={DS}/gate.json")["Body"].read())
    assert gate["cost"] == record["cost"] and gate["make_live"] is True  # the decision kept, cost added
    assert cloudwatch_values(world, "ModelPromoted") == [1.0]
    assert cloudwatch_values(world, "LinesRejected") == [10.0]
    (summary,) = world.messages()
    assert "estimated USD" in summary and "on-demand list prices" in summary


@pytest.mark.dag
def test_metrics_that_cannot_be_sent_alert_and_never_fail_the_run(monkeypatch, world):
    StepScript().install(monkeypatch)
    world.day_arrives()
    world.steps_wrote_outputs(ndcg=0.20)

    def refuse(*args, **kwargs):
        raise RuntimeError("CloudWatch is down")

    monkeypatch.setattr(cloudwatch_models.CloudWatchBackend, "put_metric_data", refuse)
    dag_run, states = run_dag(monkeypatch, world)

    assert dag_run.state == "success" and states["promote_model"] == "success"
    record = json.loads(world.s3.get_object(Bucket=ARTS, Key=f"runs/dt={DS}/run.json")["Body"].read())
    assert "CloudWatch is down" in record["metrics_sent"]["error"]
    messages = world.messages()
    assert any("METRICS NOT SENT" in m or "put_metric_data failed" in m for m in messages), messages
