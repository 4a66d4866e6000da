"""Pure pieces behind the gate and the alerts, with exact values."""

from __future__ import annotations

import gzip

import pytest
from recsys_dag.alerts import step_log_uri, tail_lines
from recsys_dag.config import PipelineConfig
from recsys_dag.locations import registry_locations, run_locations, split_s3_uri
from recsys_dag.quality_gate import decide

pytestmark = pytest.mark.unit

CFG = PipelineConfig(min_ndcg=0.05, min_margin_over_popularity=0.01, max_regression_vs_production=0.02)


def metrics(ndcg, popularity, k=10):
    return {"k": k, "model": {f"ndcg@{k}": ndcg}, "popularity": {f"ndcg@{k}": popularity}}


@pytest.mark.parametrize(
    "candidate,production,promote,failing",
    [
        (metrics(0.20, 0.10), None, True, []),
        (metrics(0.04, 0.01), None, False, ["ndcg@10 0.0400 vs floor"]),
        (metrics(0.105, 0.10), None, False, ["margin over popularity +0.0050"]),
        (metrics(0.20, 0.10), metrics(0.22, 0.1), True, []),  # 0.02 worse: within tolerance
        (metrics(0.20, 0.10), metrics(0.23, 0.1), False, ["change vs production -0.0300"]),
        (metrics(0.03, 0.10), metrics(0.30, 0.1), False, ["vs floor", "margin", "change vs production"]),
    ],
)
def test_gate_rules(candidate, production, promote, failing):
    decision = decide(candidate, production, CFG)
    assert decision.promote is promote
    failed = [r for r in decision.reasons if r.startswith("FAIL")]
    assert len(failed) == len(failing)
    for reason, expected in zip(failed, failing):
        assert expected in reason
    assert len(decision.reasons) == 3


def test_gate_refuses_malformed_metrics():
    with pytest.raises(ValueError, match="lacks ndcg@10"):
        decide({"k": 10, "model": {}, "popularity": {}}, None, CFG)


def test_locations_for_a_date():
    cfg = PipelineConfig(data_bucket="lake", artifact_bucket="arts")
    run = run_locations(cfg, "2024-01-31")
    assert run["raw"] == "s3://lake/raw/events/dt=2024-01-31"
    assert run["raw_key_prefix"] == "raw/events/dt=2024-01-31/"
    assert run["metrics"] == "s3://arts/runs/dt=2024-01-31/evaluation/metrics.json"
    assert registry_locations(cfg, "2024-01-31") == {
        "registry_root": "s3://arts/registry",
        "latest": "s3://arts/registry/latest.json",
        "version": "s3://arts/registry/versions/2024-01-31",
    }
    assert split_s3_uri("s3://b/a/b.json") == ("b", "a/b.json")
    with pytest.raises(ValueError):
        split_s3_uri("/local/path")


def test_step_log_location_and_tail():
    assert step_log_uri("s3n://logs/emr/", "j-1", "s-2") == "s3://logs/emr/j-1/steps/s-2/"
    text = "\n".join(f"line {i}" for i in range(100)).encode()
    assert tail_lines(gzip.compress(text), 3) == "line 97\nline 98\nline 99"
    assert tail_lines(b"only\n", 3) == "only"


def test_start_date_is_configurable_and_validated():
    from recsys_dag.config import config_from_mapping

    assert (
        config_from_mapping({"start_date": "1998-01-01"}).start_datetime().isoformat()
        == "1998-01-01T00:00:00+00:00"
    )
    with pytest.raises(ValueError, match="start_date must be YYYY-MM-DD"):
        config_from_mapping({"start_date": "01/01/1998"})


def test_schedule_can_be_manual_only():
    from recsys_dag.config import config_from_mapping

    assert config_from_mapping({}).schedule == "0 2 * * *"
    assert config_from_mapping({"schedule": None}).schedule is None
    with pytest.raises(ValueError, match="schedule must be a string or null"):
        config_from_mapping({"schedule": 2})
