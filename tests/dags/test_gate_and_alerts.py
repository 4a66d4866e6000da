"""Pure pieces behind the gate and the alerts, with exact values."""

from __future__ import annotations

import gzip

import pytest
from recsys_dag.alerts import step_log_uri, tail_lines
from recsys_dag.config import PipelineConfig
from recsys_dag.locations import registry_locations, run_locations, split_s3_uri
from recsys_dag.quality_gate import decide

pytestmark = pytest.mark.unit

CFG = PipelineConfig(
    min_ndcg=0.05,
    min_margin_over_popularity=0.01,
    max_regression_vs_production=0.02,
    min_users_evaluated=100,
    min_coverage=0.02,
)
DS = "2024-01-31"
PRODUCTION = {"version": "2024-01-30_j-1", "ds": "2024-01-30"}


def metrics(ndcg, popularity, k=10, users=500, coverage=0.2, paired=None, status="refit", version=None):
    doc = {
        "k": k,
        "model": {f"ndcg@{k}": ndcg, "coverage": coverage},
        "popularity": {f"ndcg@{k}": popularity, "coverage": 0.01},
        "users_evaluated": users,
    }
    if paired is not None:
        doc["production"] = {
            "status": status,
            "version": version or PRODUCTION["version"],
            "reason": "r",
            "model": {f"ndcg@{k}": ndcg - paired},
            "paired": {
                "users": users,
                "mean_difference": {f"ndcg@{k}": paired},
                "standard_error": {f"ndcg@{k}": 0.01},
            },
        }
    return doc


@pytest.mark.parametrize(
    "candidate,production,promote,failing",
    [
        (metrics(0.20, 0.10), None, True, []),
        (metrics(0.04, 0.01), None, False, ["ndcg@10 0.0400 vs floor"]),
        (metrics(0.105, 0.10), None, False, ["margin over popularity +0.0050"]),
        (metrics(0.20, 0.10, users=99), None, False, ["users evaluated 99 vs minimum 100"]),
        (metrics(0.20, 0.10, coverage=0.019), None, False, ["catalogue coverage 0.0190 vs minimum 0.0200"]),
        (metrics(0.20, 0.10, paired=-0.02), PRODUCTION, True, []),  # 0.02 worse: within tolerance
        (metrics(0.20, 0.10, paired=-0.03), PRODUCTION, False, ["paired change vs production"]),
        (metrics(0.20, 0.10, paired=0.0, status="same_config"), PRODUCTION, True, []),
        (metrics(0.20, 0.10), PRODUCTION, False, ["no comparison with production 2024-01-30_j-1"]),
        (
            metrics(0.20, 0.10, paired=0.0, status="unavailable"),
            PRODUCTION,
            False,
            ["production 2024-01-30_j-1 was not scored (unavailable)"],
        ),
        (
            metrics(0.20, 0.10, paired=0.0, version="2024-01-29_j-0"),
            PRODUCTION,
            False,
            ["the run scored production 2024-01-29_j-0, but latest.json now names 2024-01-30_j-1"],
        ),
        (metrics(0.03, 0.10, paired=-0.3), PRODUCTION, False, ["vs floor", "margin", "paired change"]),
    ],
)
def test_gate_rules(candidate, production, promote, failing):
    decision = decide(candidate, production, DS, CFG)
    assert decision.promote is promote and decision.make_live is promote
    failed = [r for r in decision.reasons if r.startswith("FAIL")]
    assert len(failed) == len(failing), decision.reasons
    for reason, expected in zip(failed, failing):
        assert expected in reason
    assert len(decision.reasons) == 5


def test_the_gate_judges_the_paired_difference_not_the_stored_number():
    # Production's old stored NDCG (latest.json's metrics) is irrelevant: only today's paired difference
    # counts. Stored 0.12, which the candidate's 0.20 "beats": held all the same.
    stored = {**PRODUCTION, "metrics": {"k": 10, "model": {"ndcg@10": 0.12}}}
    decision = decide(metrics(0.20, 0.10, paired=-0.05), stored, DS, CFG)
    assert not decision.promote
    assert decision.numbers["paired_ndcg_difference"] == -0.05
    assert decision.numbers["production_ndcg"] == pytest.approx(0.25)
    assert (
        "paired change vs production 2024-01-30_j-1 -0.0500 (production 0.2500, se 0.0100"
        in (decision.reasons[-1])
    )
    # Stored 0.50, far above the candidate: promoted all the same, on a paired gain.
    better = decide(
        metrics(0.20, 0.10, paired=0.03), {**stored, "metrics": {"model": {"ndcg@10": 0.5}}}, DS, CFG
    )
    assert better.promote and better.numbers["production_ndcg"] == pytest.approx(0.17)


def test_a_backfill_is_registered_but_not_made_live():
    later = {"version": "2024-02-03_j-9", "ds": "2024-02-03"}
    decision = decide(metrics(0.20, 0.10), later, DS, CFG)
    assert decision.promote is True and decision.make_live is False
    assert decision.reasons[-1].startswith("SKIP paired check: production 2024-02-03_j-9 is for 2024-02-03")


@pytest.mark.parametrize(
    "broken,message",
    [
        ({"k": 10, "model": {}, "popularity": {}}, "lacks model.ndcg@10"),
        ({"model": {}}, "no valid k"),
        ({**metrics(0.2, 0.1), "users_evaluated": None}, "users_evaluated is not a finite number"),
        ({**metrics(0.2, 0.1), "model": {"ndcg@10": float("nan"), "coverage": 0.2}}, "not a finite number"),
        (metrics(0.2, 0.1) | {"model": {"ndcg@10": 0.2}}, "lacks model.coverage"),
    ],
)
def test_gate_refuses_missing_or_malformed_metrics(broken, message):
    with pytest.raises(ValueError, match=message):
        decide(broken, None, DS, CFG)


def test_locations_for_a_date():
    cfg = PipelineConfig(data_bucket="lake", artifact_bucket="arts")
    run = run_locations(cfg, "2024-01-31")
    assert run["raw"] == "s3://lake/raw/events/dt=2024-01-31"
    assert run["raw_key_prefix"] == "raw/events/dt=2024-01-31/"
    assert run["metrics"] == "s3://arts/runs/dt=2024-01-31/evaluation/metrics.json"
    assert run["serving_model"] == "s3://arts/runs/dt=2024-01-31/model/model"
    assert run["recommendations"] == "s3://arts/runs/dt=2024-01-31/model/recommendations"
    assert run["production"] == "s3://arts/runs/dt=2024-01-31/model/production"
    assert registry_locations(cfg, "2024-01-31_j-1") == {
        "registry_root": "s3://arts/registry",
        "latest": "s3://arts/registry/latest.json",
        "version": "s3://arts/registry/versions/2024-01-31_j-1",
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
    with pytest.raises(ValueError, match="schedule must be a str or null"):
        config_from_mapping({"schedule": 2})


@pytest.mark.parametrize(
    "promoted,outcome",
    [
        (
            {"version": "v2", "registered": True, "live": True, "already_live": False, "note": ""},
            "promoted version v2",
        ),
        (
            {"version": "v2", "registered": False, "live": False, "already_live": True, "note": "x"},
            "version v2 already live (retry)",
        ),
        (
            {"version": "v2", "registered": True, "live": False, "already_live": False, "note": "SKIP later"},
            "registered version v2, not live: SKIP later",
        ),
        (None, "held: FAIL floor"),
    ],
)
def test_summary_line_names_the_outcome(promoted, outcome):
    from recsys_dag.promotion import summary_line

    decision = {
        "k": 10,
        "ndcg": 0.2,
        "popularity_ndcg": 0.1,
        "users_evaluated": 500,
        "reasons": ["PASS margin", "FAIL floor"],
        "paired_ndcg_difference": None,
    }
    assert summary_line("recsys_training", DS, decision, promoted).startswith(
        f"recsys_training {DS}: {outcome}; ndcg@10=0.2000 popularity=0.1000 users=500"
    )
