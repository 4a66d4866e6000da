"""The Airflow role's policy grants exactly the AWS actions the DAG uses, scoped to its resources."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

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
}


# Actions AWS cannot scope by resource or tag: they need Resource "*" without a tag condition.
UNSCOPABLE = {"elasticmapreduce:ListClusters"}


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
    }
