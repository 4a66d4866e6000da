"""The sweep's pure parts: the grid, the plan's time budget, the selection rule, the leaderboard, cost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from recsys_dag import cost, tuned_params, tuning_results
from recsys_dag.config import PipelineConfig, config_from_mapping
from recsys_dag.tuning_grid import expand_grid, feature_sets
from recsys_dag.tuning_plan import check_tuning_time_budget, sweep_plan, sweep_trials

pytestmark = pytest.mark.unit

BASE = PipelineConfig().as_dict()
PRICES = Path(__file__).resolve().parents[2] / "emr_configs" / "prices.json"


def test_a_product_expands_in_written_order_with_names_from_the_varied_keys():
    trials = expand_grid({"factors": [32, 64], "half_life_days": [7, 14.0]}, BASE, 32)
    assert [t.name for t in trials] == ["t01_f32_hl7", "t02_f32_hl14", "t03_f64_hl7", "t04_f64_hl14"]
    assert trials[0].values == {
        **{k: BASE[k] for k in trials[0].values},
        "factors": 32,
        "half_life_days": 7.0,
    }
    assert isinstance(trials[0].values["factors"], int) and isinstance(
        trials[0].values["half_life_days"], float
    )
    assert feature_sets(trials) == {"hl7": {"half_life_days": 7.0}, "hl14": {"half_life_days": 14.0}}
    assert [t.features for t in trials] == ["hl7", "hl14", "hl7", "hl14"]


def test_an_explicit_list_takes_unset_keys_from_the_nightly_config():
    trials = expand_grid([{"factors": 16}, {"engine": "spark-als", "regularization": 0.1}], BASE, 32)
    assert [t.name for t in trials] == ["t01_implicit_f16_regdefault", "t02_spark-als_f64_reg0p1"]
    assert trials[1].values["engine"] == "spark-als" and trials[1].values["factors"] == BASE["factors"]


@pytest.mark.parametrize(
    "grid,message",
    [
        ({"factorz": [1]}, "'factorz' cannot be tuned"),
        ({"factors": []}, "factors must be a non-empty list"),
        ({"factors": [0]}, "factors must be a positive integer"),
        ({"alpha": [-1]}, "alpha must be >= 0"),
        ({"regularization": ["x"]}, "regularization must be a number or null"),
        ({"engine": ["spark-als"], "algorithm": ["bpr"]}, "engine 'spark-als' does not implement"),
        ([{"factors": 8}, {"factors": 8.0}], "configurations 1 and 2 are the same"),
        ({}, "tuning_grid is empty"),
        ("factors=8", "must be an object of lists or a list of objects"),
        ({"factors": list(range(1, 34))}, "33 configurations, more than tuning_max_configs 32"),
    ],
)
def test_a_bad_grid_is_refused_naming_what_is_wrong(grid, message):
    with pytest.raises(ValueError, match=message):
        expand_grid(grid, BASE, 32)


def test_the_default_grid_is_eight_configurations_within_the_time_budget():
    cfg = config_from_mapping({})
    trials = sweep_trials(cfg)
    assert len(trials) == 8 and len(feature_sets(trials)) == 1
    assert check_tuning_time_budget(cfg, len(trials), 1) <= cfg.tuning_dagrun_timeout_seconds
    with pytest.raises(ValueError, match=r"16 waves of 32 configurations at 2 at once"):
        check_tuning_time_budget(cfg, 32, 1)


def test_the_plan_names_every_location_under_the_runs_folder():
    cfg = config_from_mapping({"artifact_bucket": "arts", "data_bucket": "lake"})
    trials = expand_grid({"half_life_days": [7, 14]}, cfg.as_dict(), 32)
    plan = sweep_plan(cfg, trials, "2024-01-31", "dt=2024-01-31/manual__x")
    root = "s3://arts/tuning/dt=2024-01-31/manual__x"
    assert [b["uri"] for b in plan["feature_builds"]] == [f"{root}/features/hl7", f"{root}/features/hl14"]
    assert plan["trials"][1]["features_uri"] == f"{root}/features/hl14"
    assert plan["trials"][0]["result"] == f"{root}/trials/t01_hl7.json"
    # Every location of the run's own, builds' and trials' included; only the shared ones are outside.
    locations = plan["locations"]
    assert locations["run"] == root
    assert {key for key, uri in locations.items() if not uri.startswith(root)} == {"tuning_root", "best"}
    own = [uri for key, uri in locations.items() if key not in ("tuning_root", "best", "run")]
    own += [build[key] for build in plan["feature_builds"] for key in ("uri", "outcome")]
    own += [trial[key] for trial in plan["trials"] for key in ("features_uri", "result", "outcome")]
    assert len(own) == 6 + 2 * 2 + 2 * 3 and all(uri.startswith(f"{root}/") for uri in own), own
    assert plan["published_marker_key"] == "parsed/events/dt=2024-01-31/_PUBLISHED.json"  # the input's
    assert json.loads(json.dumps(plan)) == plan  # an XCom


def row(name, index, ndcg, se, fit, status="ok"):
    trial = {
        "name": name,
        "index": index,
        "values": {"factors": index},
        "features": "hl14",
        "result": "s3://b/k",
    }
    result = {
        "status": "ok",
        "metrics": {"ndcg@10": ndcg},
        "standard_error": {"ndcg@10": se},
        "seconds": {"fit": fit},
    }
    step = {"state": "COMPLETED" if status == "ok" else "FAILED", "seconds": 100.0, "reason": None}
    return tuning_results.trial_row(trial, result if status == "ok" else None, step, 10)


def test_ties_within_one_standard_error_go_to_the_cheaper_fit():
    rows = [row("a", 1, 0.200, 0.010, 9.0), row("b", 2, 0.191, 0.002, 3.0), row("c", 3, 0.189, 0.001, 1.0)]
    assert tuning_results.select(rows, 10) == ("b", "a", ["a", "b"])
    # Outside one SE of the best the cheaper one loses; an exact NDCG tie goes to the earlier one.
    assert tuning_results.select([row("a", 1, 0.2, 0.0, 9.0), row("b", 2, 0.19, 0.0, 1.0)], 10)[0] == "a"
    assert tuning_results.select([row("a", 1, 0.2, 0.0, 5.0), row("b", 2, 0.2, 0.0, 5.0)], 10)[0] == "a"
    assert tuning_results.select([row("a", 1, 0.2, 0.0, 1.0, status="failed")], 10) == (None, None, [])


def test_a_result_counts_only_if_its_step_completed_on_this_cluster():
    trial = {"name": "a", "index": 1, "values": {}, "features": "hl14", "result": "s3://b/a.json"}
    good = {"status": "ok", "metrics": {"ndcg@10": 0.2}, "standard_error": {"ndcg@10": 0.01}}
    assert tuning_results.trial_row(trial, good, None, 10)["reason"].startswith("its step was never added")
    failed = tuning_results.trial_row(trial, good, {"state": "FAILED", "reason": "Unknown Error."}, 10)
    assert (failed["status"], failed["reason"]) == ("failed", "step FAILED: Unknown Error.")
    missing = tuning_results.trial_row(trial, None, {"state": "COMPLETED"}, 10)
    assert "wrote no result at s3://b/a.json" in missing["reason"]
    nan = {**good, "standard_error": {"ndcg@10": float("nan")}}
    assert "malformed result" in tuning_results.trial_row(trial, nan, {"state": "COMPLETED"}, 10)["reason"]


def test_the_leaderboard_ranks_prices_and_renders():
    plan = {
        "run": "r",
        "date": "2024-01-31",
        "k": 10,
        "rule": "R",
        "validation_fraction": 0.2,
        "parallelism": 2,
    }
    rows = [row("a", 1, 0.1, 0.01, 1.0), row("b", 2, 0.2, 0.01, 2.0), row("c", 3, 0, 0, 0, status="failed")]
    price = cost.cluster_hourly(cost.load_prices(PRICES), [("m5.xlarge", 1), ("m5.2xlarge", 2)], "us-east-1")
    assert price["usd_per_hour"] == pytest.approx(0.24 + 2 * 0.48)
    board = tuning_results.leaderboard(plan, rows, price, {"dag_run_id": "x", "cluster_id": "j-1"})
    assert [(r["name"], r["rank"]) for r in board["configurations"]] == [("b", 1), ("a", 2), ("c", 3)]
    assert board["winner"] == "b" and board["failed"] == ["c"]
    assert board["configurations"][0]["cost_usd"] == pytest.approx(100 / 3600 * 1.2 / 2, rel=1e-4)
    page = tuning_results.markdown(board)
    assert "| 1 | b | 2 | 0.2000 ± 0.0100 |" in page and "step FAILED" in page and "Winner: **b**" in page
    best = tuning_results.best_document(board, "s3://arts/tuning/r/leaderboard.json", "now")
    assert (best["configuration"], best["values"], best["rule"]) == ("b", {"factors": 2}, "R")


def test_an_unknown_instance_type_has_no_price_and_says_so():
    price = cost.cluster_hourly(cost.load_prices(PRICES), [("x9.huge", 1)], "eu-west-1")
    assert price["usd_per_hour"] is None
    assert "no price for x9.huge" in price["note"] and "runs in eu-west-1" in price["note"]
    assert cost.share_of_cluster(None, 1.0, 2) is None


def test_the_nightly_takes_the_tuned_values_or_says_why_not():
    best = {"run": "r", "date": "d", "configuration": "t02", "values": {"factors": 16}, "metric": "ndcg@10"}
    resolved = tuned_params.resolve(BASE, True, "s3://a/tuning/best.json", lambda uri: best)
    assert resolved["values"]["factors"] == 16 and resolved["values"]["alpha"] == BASE["alpha"]
    assert resolved["source"]["from"] == "tuning" and resolved["source"]["configuration"] == "t02"
    assert (
        tuned_params.resolve(BASE, False, "s3://x", lambda uri: best)["values"]["factors"] == BASE["factors"]
    )
    absent = tuned_params.resolve(BASE, True, "s3://a/tuning/best.json", lambda uri: None)
    assert absent["source"]["from"] == "config" and "does not exist yet" in absent["source"]["reason"]
    with pytest.raises(ValueError, match="not a usable tuning result"):
        tuned_params.resolve(BASE, True, "s3://x", lambda uri: {"values": {"factors": -1}})
