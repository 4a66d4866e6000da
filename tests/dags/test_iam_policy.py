"""The Airflow role's policy grants exactly the AWS actions the DAG uses, scoped to its resources."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.dags.iam_eval import allows

pytestmark = pytest.mark.dag

POLICY = Path(__file__).resolve().parents[2] / "emr_configs" / "iam" / "airflow-recsys-policy.json"
DAG_ACTIONS = {
    "elasticmapreduce:RunJobFlow",  # create_cluster
    "elasticmapreduce:AddTags",  # tags in the RunJobFlow request
    "elasticmapreduce:AddJobFlowSteps",  # add_steps
    "elasticmapreduce:ListSteps",  # idempotent add_steps
    "elasticmapreduce:DescribeStep",  # step sensors, alerts
    "elasticmapreduce:DescribeCluster",  # provider links, alerts (LogUri), cleanup (tags)
    "elasticmapreduce:TerminateJobFlows",  # terminate_cluster, cleanup
    "elasticmapreduce:ListClusters",  # cleanup: a timed-out run's and an earlier attempt's clusters
    "iam:PassRole",  # RunJobFlow passes the EMR roles
    "s3:ListBucket",  # sensors, registry copy
    "s3:GetObject",  # marker, metrics, latest.json, step logs
    "s3:PutObject",  # gate.json, registry
    "s3:DeleteObject",  # registry: leftovers of an unfinished version (delete_objects)
    "sns:Publish",  # alerts and summaries
    "cloudwatch:PutMetricData",  # record_run: the run's metrics, in the Recsys/Pipeline namespace only
    "dynamodb:GetItem",  # promote_model: the serving pointer and the version's loaded marker
    "dynamodb:PutItem",  # promote_model: the pointer and its history record (in one transaction)
    "dynamodb:ConditionCheckItem",  # promote_model: the loaded marker, in the same transaction
}


# Actions AWS cannot scope by resource or tag: they need Resource "*" without a tag condition.
UNSCOPABLE = {"elasticmapreduce:ListClusters", "cloudwatch:PutMetricData"}


def test_policy_is_valid_and_minimal():
    text = POLICY.read_text()
    policy = json.loads(text)
    actions = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        listed = statement["Action"]
        actions.update([listed] if isinstance(listed, str) else listed)
        assert "*" not in json.dumps(statement["Action"])
        if statement["Resource"] == "*":  # only where AWS cannot scope by ARN: then by request tag
            unscopable = set([listed] if isinstance(listed, str) else listed) <= UNSCOPABLE
            assert unscopable or "elasticmapreduce:RequestTag/dag_id" in json.dumps(statement["Condition"])
    assert actions == DAG_ACTIONS
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    assert placeholders == {
        "Region",
        "AccountId",
        "DataBucket",
        "ArtifactBucket",
        "AlertTopicArn",
        "EmrServiceRole",
        "EmrInstanceProfileRole",
        "ServingTable",
    }


def test_the_tuning_dags_clusters_and_documents_are_covered_and_nothing_beside():
    from recsys_dag.config import config_from_mapping
    from recsys_dag.locations import split_s3_uri, tuning_locations
    from recsys_dag.tuning_plan import sweep_plan, sweep_trials

    text = POLICY.read_text()
    for name, value in {"Region": "us-east-1", "AccountId": "123456789012", "DataBucket": "lake"}.items():
        text = text.replace("${" + name + "}", value)
    policy = json.loads(text.replace("${ArtifactBucket}", "arts"))
    cfg = config_from_mapping({"data_bucket": "lake", "artifact_bucket": "arts"})
    plan = sweep_plan(cfg, sweep_trials(cfg), "2024-01-31", "dt=2024-01-31/manual__x")
    cluster = "arn:aws:elasticmapreduce:us-east-1:123456789012:cluster/j-1"
    for dag_id in ("recsys_training", "recsys_tuning"):
        assert allows(policy, "elasticmapreduce:RunJobFlow", "*", {"dag_id": dag_id})
        assert allows(policy, "elasticmapreduce:AddJobFlowSteps", cluster, {"dag_id": dag_id})
    assert not allows(policy, "elasticmapreduce:RunJobFlow", "*", {"dag_id": "someone_else"})
    assert not allows(policy, "elasticmapreduce:TerminateJobFlows", cluster, {"dag_id": "someone_else"})
    # What the tuning DAG's Airflow tasks read and write (its Spark steps run under the cluster's role).
    written = [plan["locations"][key] for key in ("plan", "leaderboard", "leaderboard_md")]
    written.append(tuning_locations(cfg)["best"])
    read = [trial["result"] for trial in plan["trials"]] + [tuning_locations(cfg)["best"]]
    for action, uris in (("s3:PutObject", written), ("s3:GetObject", read)):
        for uri in uris:
            bucket, key = split_s3_uri(uri)
            assert allows(policy, action, f"arn:aws:s3:::{bucket}/{key}"), (action, uri)
    marker = f"arn:aws:s3:::lake/{plan['published_marker_key']}"
    assert allows(policy, "s3:GetObject", marker)
    assert allows(policy, "s3:ListBucket", "arn:aws:s3:::lake", prefix=plan["published_marker_key"])
    assert not allows(policy, "s3:GetObject", "arn:aws:s3:::lake/parsed/events/dt=2024-01-31/part-0.parquet")
    assert not allows(policy, "s3:PutObject", "arn:aws:s3:::lake/parsed/events/dt=2024-01-31/_PUBLISHED.json")
    assert not allows(policy, "s3:PutObject", "arn:aws:s3:::arts/code/0.1.0/jobs/tune_trial.py")


def test_metrics_go_only_to_the_pipelines_namespace():
    from recsys_dag.run_record import NAMESPACE

    (statement,) = [s for s in json.loads(POLICY.read_text())["Statement"] if s["Sid"] == "PipelineMetrics"]
    assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": NAMESPACE}}


def test_the_stale_model_alarm_is_managed_outside_airflow_and_only_that_alarm():
    """``make alarms`` runs as a deployer with its own policy: the Airflow role can neither create nor
    change the alarm that watches it (DAG_ACTIONS above has no alarm action)."""
    from recsys_dag.config import TRAINING_DAG_ID
    from recsys_dag.stale_model_alarm import alarm_name

    from tools.release import apply_alarms

    deployer = POLICY.parent / "alarms-deployer-policy.json"
    text = deployer.read_text().replace("${Region}", "us-east-1").replace("${AccountId}", "123456789012")
    policy = json.loads(text)
    alarm = f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm_name(TRAINING_DAG_ID)}"
    used = set(re.findall(r"cloudwatch\.(\w+)\(", Path(apply_alarms.__file__).read_text()))
    assert used == {"put_metric_alarm", "describe_alarms"}
    for action in ("cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms"):
        assert allows(policy, action, alarm)
        assert not allows(policy, action, alarm.replace("stale-model", "other"))
    airflow = json.loads(POLICY.read_text())
    assert "PutMetricAlarm" not in json.dumps(airflow)


def test_airflow_moves_the_serving_pointer_and_never_touches_a_users_list():
    """What serving.pointer.switch sends, key by key, is allowed; a list item, or any other table, not."""
    text = POLICY.read_text()
    for name, value in {"Region": "us-east-1", "AccountId": "123456789012", "ServingTable": "serve"}.items():
        text = text.replace("${" + name + "}", value)
    policy = json.loads(text)
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/serve"
    version = "2024-01-31_j-1"
    assert allows(policy, "dynamodb:GetItem", table, leading_keys=["@pointer"])
    assert allows(policy, "dynamodb:GetItem", table, leading_keys=[f"{version}@loaded"])
    assert allows(policy, "dynamodb:ConditionCheckItem", table, leading_keys=[f"{version}@loaded"])
    assert allows(policy, "dynamodb:PutItem", table, leading_keys=["@pointer", "@pointer#000000000007"])
    for refused in ([f"{version}#42"], [f"{version}@popularity"], ["@pointer", f"{version}#42"]):
        assert not allows(policy, "dynamodb:PutItem", table, leading_keys=refused), refused
    assert not allows(policy, "dynamodb:BatchWriteItem", table, leading_keys=[f"{version}#42"])
    assert not allows(policy, "dynamodb:GetItem", table.replace("serve", "other"), leading_keys=["@pointer"])
