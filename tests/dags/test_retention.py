"""The lifecycle rules follow the config, cover what the pipeline writes and never the registry."""

from __future__ import annotations

import pytest
from recsys_dag.config import config_from_mapping
from recsys_dag.retention import lifecycle_rules, merged

pytestmark = pytest.mark.unit


def test_rules_cover_rejects_runs_logs_and_sweeps_with_the_configured_days():
    cfg = config_from_mapping(
        {"data_bucket": "lake", "artifact_bucket": "arts", "retention_rejects_days": 14}
    )
    rules = lifecycle_rules(cfg)
    by_prefix = {
        (bucket, rule["Filter"]["Prefix"]): rule["Expiration"]["Days"]
        for bucket, rs in rules.items()
        for rule in rs
    }
    assert by_prefix == {
        ("lake", "rejects/events/"): 14,
        ("arts", "runs/"): 90,
        ("arts", "emr-logs/"): 30,
        ("arts", "tuning/dt="): 180,
    }  # the rejects' days as configured, the others' defaults
    days = {"retention_runs_days": 45, "retention_emr_logs_days": 21, "retention_tuning_days": 200}
    every = lifecycle_rules(config_from_mapping({"data_bucket": "lake", "artifact_bucket": "arts", **days}))
    assert {
        (bucket, rule["Filter"]["Prefix"]): rule["Expiration"]["Days"]
        for bucket, rs in every.items()
        for rule in rs
    } == {
        ("lake", "rejects/events/"): 30,
        ("arts", "runs/"): 45,
        ("arts", "emr-logs/"): 21,
        ("arts", "tuning/dt="): 200,
    }
    for bucket_rules in rules.values():
        for rule in bucket_rules:
            assert rule["ID"].startswith("recsys-") and rule["Status"] == "Enabled"
            assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    # The product and its inputs are never expired.
    for kept in ("registry/latest.json", "tuning/best.json", "code/0.1.0/spark_jobs.zip"):
        assert not any(kept.startswith(prefix) for (bucket, prefix) in by_prefix if bucket == "arts"), kept
    assert not any(
        key.startswith(prefix)
        for key in ("raw/events/dt=2024-01-31/x", "parsed/events/dt=2024-01-31/_PUBLISHED.json")
        for (bucket, prefix) in by_prefix
        if bucket == "lake"
    )


def test_applying_replaces_only_the_pipelines_rules():
    theirs = {
        "ID": "team-archive",
        "Filter": {"Prefix": "archive/"},
        "Status": "Enabled",
        "Expiration": {"Days": 7},
    }
    old_ours = {
        "ID": "recsys-runs",
        "Filter": {"Prefix": "runs/"},
        "Status": "Enabled",
        "Expiration": {"Days": 1},
    }
    new = lifecycle_rules(config_from_mapping({}))["recsys-artifacts"]
    assert merged([theirs, old_ours], new) == [theirs, *new]
    assert merged(merged([theirs], new), new) == [theirs, *new]  # idempotent


@pytest.mark.parametrize(
    "key",
    ["retention_runs_days", "retention_rejects_days", "retention_emr_logs_days", "retention_tuning_days"],
)
def test_retention_days_must_be_positive(key):
    with pytest.raises(ValueError, match=f"{key} must be > 0"):
        config_from_mapping({key: 0})
