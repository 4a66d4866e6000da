"""The lifecycle rules applied for real to LocalStack's S3 (two throw-away buckets of this test)."""

from __future__ import annotations

import uuid

import pytest
from recsys_dag.config import config_from_mapping
from recsys_dag.retention import lifecycle_rules

from tools.release.apply_retention import apply, current_rules

pytestmark = pytest.mark.localstack


@pytest.fixture
def buckets(s3):
    tag = uuid.uuid4().hex[:10]
    names = {"data_bucket": f"retention-lake-{tag}", "artifact_bucket": f"retention-arts-{tag}"}
    for name in names.values():
        s3.create_bucket(Bucket=name)
    yield names
    for name in names.values():
        for obj in s3.list_objects_v2(Bucket=name).get("Contents", []):
            s3.delete_object(Bucket=name, Key=obj["Key"])
        s3.delete_bucket(Bucket=name)


def test_rules_land_beside_a_teams_own_rule_and_reapplying_changes_nothing(s3, buckets):
    theirs = {
        "ID": "team-archive",
        "Filter": {"Prefix": "archive/"},
        "Status": "Enabled",
        "Expiration": {"Days": 7},
    }
    s3.put_bucket_lifecycle_configuration(
        Bucket=buckets["artifact_bucket"], LifecycleConfiguration={"Rules": [theirs]}
    )
    cfg = config_from_mapping(buckets)

    apply(s3, lifecycle_rules(cfg))
    applied = {name: current_rules(s3, name) for name in buckets.values()}
    again = apply(s3, lifecycle_rules(cfg))

    assert {name: current_rules(s3, name) for name in buckets.values()} == applied  # nothing changed
    arts = current_rules(s3, buckets["artifact_bucket"])
    assert [rule["ID"] for rule in arts] == [
        "team-archive",
        "recsys-runs",
        "recsys-emr-logs",
        "recsys-tuning-runs",
    ]
    assert arts == again[buckets["artifact_bucket"]]
    (rejects,) = current_rules(s3, buckets["data_bucket"])
    assert rejects["ID"] == "recsys-rejects" and rejects["Filter"] == {"Prefix": "rejects/events/"}
    assert rejects["Expiration"] == {"Days": cfg.retention_rejects_days}
    assert rejects["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_s3_dates_the_expiry_of_run_outputs_and_never_of_the_registry(s3, buckets):
    """S3's own answer (x-amz-expiration on HEAD) says which rule, if any, will expire an object."""
    apply(s3, lifecycle_rules(config_from_mapping(buckets)))
    arts, lake = buckets["artifact_bucket"], buckets["data_bucket"]
    expected = {
        (arts, "runs/dt=2024-01-31/gate.json"): "recsys-runs",
        (arts, "emr-logs/j-1/steps/s-1/stderr.gz"): "recsys-emr-logs",
        (arts, "tuning/dt=2024-01-31/manual__x/leaderboard.json"): "recsys-tuning-runs",
        (lake, "rejects/events/dt=2024-01-31/part-0.json"): "recsys-rejects",
        (arts, "registry/latest.json"): None,
        (arts, "tuning/best.json"): None,
        (arts, "code/0.1.0/spark_jobs.zip"): None,
        (lake, "parsed/events/dt=2024-01-31/_PUBLISHED.json"): None,
        (lake, "raw/events/dt=2024-01-31/part-0.jsonl"): None,
    }
    for (bucket, key), rule in expected.items():
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        expiration = s3.head_object(Bucket=bucket, Key=key).get("Expiration")
        if rule is None:
            assert expiration is None, (key, expiration)
        else:
            assert expiration and f'rule-id="{rule}"' in expiration, (key, expiration)
