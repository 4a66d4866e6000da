"""recsys_tuning runs with ``dag.test()`` against in-process moto, and the nightly fed by its result.

EMR cannot run here: moto stands in for its API, the test decides each step's final state
(test_dag_runs.StepScript) and, for a configuration step that COMPLETED, writes the result its
tune_trial job would have written (at the ``--output`` of the step's own arguments). Everything else
is the DAGs' real behaviour: the metadata DB, dynamic task mapping, the provider operators and sensors,
S3 documents and SNS -> SQS alerts.
"""

# ruff: noqa: F811  (the ``world`` fixture is imported from test_dag_runs; tests take it as an argument)
from __future__ import annotations

import datetime as dt
import importlib
import json
import sys
from typing import Dict

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emr import models as emr_models
from moto.s3.models import s3_backends

from tests.dags.test_dag_runs import ARTS, DS, LAKE, LOGICAL_DATE, StepScript, World, run_dag, world  # noqa: F401

pytestmark = pytest.mark.dag

GRID = {"factors": [8, 16, 32]}
NAMES = ["t01_f8", "t02_f16", "t03_f32"]


class TrialResults:
    """What each configuration's tune_trial step writes when it completes: NDCG, its SE, fit seconds."""

    def __init__(self, scores: Dict[str, tuple]):
        self.scores = scores

    def install(self, monkeypatch) -> None:
        scripted = emr_models.ElasticMapReduceBackend.describe_step  # StepScript's, installed before
        scores = self.scores

        def describe_step(backend, cluster_id, step_id):
            step = scripted(backend, cluster_id, step_id)
            args = list(step.args)
            if step.state == "COMPLETED" and step.name in scores and "--output" in args:
                ndcg, se, fit = scores[step.name]
                result = {
                    "name": step.name,
                    "status": "ok",
                    "k": 10,
                    "metrics": {"ndcg@10": ndcg, "recall@10": ndcg * 1.5},
                    "standard_error": {"ndcg@10": se, "recall@10": se},
                    "popularity": {"ndcg@10": 0.05},
                    "validation": {"users": 50},
                    "seconds": {"fit": fit, "total": fit + 5},
                }
                bucket, key = args[args.index("--output") + 1][len("s3://") :].split("/", 1)
                s3_backends[DEFAULT_ACCOUNT_ID]["aws"].put_object(bucket, key, json.dumps(result).encode())
            return step

        monkeypatch.setattr(emr_models.ElasticMapReduceBackend, "describe_step", describe_step)


def tuning_config(world: World, **overrides) -> dict:
    return world.config(tuning_grid=GRID, tuning_parallelism=2, **overrides)


def run_tuning(monkeypatch, world: World, **overrides):
    """Import recsys_tuning with the scenario's config and run it for LOGICAL_DATE."""
    monkeypatch.setenv("AIRFLOW_VAR_RECSYS_TRAINING_CONFIG", json.dumps(tuning_config(world, **overrides)))
    sys.modules.pop("recsys_tuning", None)
    module = importlib.import_module("recsys_tuning")
    dag_run = module.dag.test(logical_date=LOGICAL_DATE)
    tis = dag_run.get_task_instances()
    return dag_run, tis


def published_day(world: World, ds: str = DS) -> None:
    """The nightly published ``ds``'s parsed events (what the sweep waits for)."""
    world.s3.put_object(Bucket=LAKE, Key=f"parsed/events/dt={ds}/_PUBLISHED.json", Body=b"{}")


def read(world: World, key: str):
    return json.loads(world.s3.get_object(Bucket=ARTS, Key=key)["Body"].read())


def states_of(tis, task_id: str) -> Dict[int, str]:
    return {ti.map_index: ti.state for ti in tis if ti.task_id == task_id}


def test_one_mapped_step_per_configuration_the_rule_picks_the_cheaper_of_a_tie(monkeypatch, world):
    StepScript().install(monkeypatch)
    # t03 scores best; t02 is within one standard error of it and fits faster: t02 wins.
    TrialResults(
        {"t01_f8": (0.10, 0.005, 1.0), "t02_f16": (0.195, 0.01, 2.0), "t03_f32": (0.20, 0.01, 4.0)}
    ).install(monkeypatch)
    published_day(world)

    dag_run, tis = run_tuning(monkeypatch, world)

    assert dag_run.state == "success"
    assert states_of(tis, "add_trial_step") == {0: "success", 1: "success", 2: "success"}
    assert states_of(tis, "watch_trial") == {0: "success", 1: "success", 2: "success"}
    assert {ti.rendered_map_index for ti in tis if ti.task_id == "watch_trial"} == set(NAMES)
    (cluster,) = world.clusters()
    assert cluster["Status"]["State"] == "TERMINATED"
    detail = world.emr.describe_cluster(ClusterId=cluster["Id"])["Cluster"]
    assert detail["StepConcurrencyLevel"] == 2 and detail["Name"] == f"recsys-tuning-{DS}"
    steps = world.emr.list_steps(ClusterId=cluster["Id"])["Steps"]
    assert sorted(step["Name"] for step in steps) == sorted(["features_hl14", *NAMES])
    assert {step["ActionOnFailure"] for step in steps} == {"CONTINUE"}

    best = read(world, "tuning/best.json")
    assert best["configuration"] == "t02_f16" and best["values"]["factors"] == 16
    assert "within one standard error" in best["rule"]
    board = read(world, best["leaderboard"][len(f"s3://{ARTS}/") :])
    assert [row["name"] for row in board["configurations"]] == ["t03_f32", "t02_f16", "t01_f8"]
    assert board["winner"] == "t02_f16" and board["best_by_metric"] == "t03_f32"
    assert board["tied_with_best"] == ["t02_f16", "t03_f32"] and board["failed"] == []
    assert board["price"]["usd_per_hour"] == pytest.approx(0.24 + 2 * 0.48)
    assert all(row["cost_usd"] is not None or row["step_seconds"] is None for row in board["configurations"])
    markdown = world.s3.get_object(Bucket=ARTS, Key=f"tuning/{board['run']}/leaderboard.md")
    assert "| 1 | t03_f32 |" in markdown["Body"].read().decode()
    (summary,) = world.messages()
    assert summary.startswith(f"recsys_tuning {DS}") and "winner t02_f16" in summary
    # Each configuration's step scores on the validation split of one features build.
    plan = read(world, f"tuning/{board['run']}/plan.json")
    (build,) = plan["steps"]["features"]
    assert "--validation-fraction" in build["HadoopJarStep"]["Args"]


def test_a_failed_configuration_is_reported_and_the_winner_still_chosen(monkeypatch, world):
    StepScript(outcomes={"t03_f32": "FAILED"}).install(monkeypatch)
    TrialResults({"t01_f8": (0.10, 0.005, 1.0), "t02_f16": (0.15, 0.01, 2.0)}).install(monkeypatch)
    published_day(world)

    dag_run, tis = run_tuning(monkeypatch, world)

    assert dag_run.state == "success"
    assert states_of(tis, "watch_trial") == {0: "success", 1: "success", 2: "failed"}
    assert states_of(tis, "terminate_cluster") == {-1: "success"}
    (cluster,) = world.clusters()
    assert cluster["Status"]["State"] == "TERMINATED"
    best = read(world, "tuning/best.json")
    assert best["configuration"] == "t02_f16"
    board = read(world, best["leaderboard"][len(f"s3://{ARTS}/") :])
    assert board["failed"] == ["t03_f32"]
    (failed,) = [row for row in board["configurations"] if row["status"] == "failed"]
    assert failed["rank"] == 3 and "FAILED" in failed["reason"]
    alert, summary = world.messages()
    assert "task: watch_trial" in alert and "step: t03_f32 (s-" in alert and "state FAILED" in alert
    assert "failed: t03_f32" in summary


def test_no_configuration_succeeding_fails_the_sweep_and_keeps_the_published_best(monkeypatch, world):
    StepScript(outcomes={name: "FAILED" for name in NAMES}).install(monkeypatch)
    published_day(world)
    world.s3.put_object(Bucket=ARTS, Key="tuning/best.json", Body=b'{"configuration": "earlier"}')

    dag_run, tis = run_tuning(monkeypatch, world)

    assert dag_run.state == "failed"
    assert states_of(tis, "select_winner") == {-1: "failed"}
    assert states_of(tis, "publish_best") == {-1: "upstream_failed"}
    (cluster,) = world.clusters()
    assert cluster["Status"]["State"] == "TERMINATED"
    assert read(world, "tuning/best.json") == {"configuration": "earlier"}
    alerts = world.messages()
    assert len(alerts) == 4  # three configurations and the sweep
    assert "no configuration succeeded" in alerts[-1] and "t01_f8: step FAILED" in alerts[-1]


def test_a_failed_features_build_adds_no_configuration_and_terminates(monkeypatch, world):
    StepScript(outcomes={"features_hl14": "FAILED"}).install(monkeypatch)
    published_day(world)

    dag_run, tis = run_tuning(monkeypatch, world)

    assert dag_run.state == "failed"
    assert states_of(tis, "watch_features") == {0: "failed"}
    assert set(states_of(tis, "add_trial_step").values()) == {"upstream_failed"}
    (cluster,) = world.clusters()
    assert cluster["Status"]["State"] == "TERMINATED"
    steps = world.emr.list_steps(ClusterId=cluster["Id"])["Steps"]
    assert [step["Name"] for step in steps] == ["features_hl14"]


def test_the_grid_size_limit_is_a_clear_error_at_parse_time(monkeypatch, world):
    monkeypatch.setenv(
        "AIRFLOW_VAR_RECSYS_TRAINING_CONFIG", json.dumps(tuning_config(world, tuning_max_configs=2))
    )
    sys.modules.pop("recsys_tuning", None)
    with pytest.raises(ValueError, match="tuning_grid has 3 configurations, more than tuning_max_configs 2"):
        importlib.import_module("recsys_tuning")


def test_the_nightly_trains_with_the_published_best_and_records_it(monkeypatch, world):
    StepScript().install(monkeypatch)
    world.day_arrives()
    world.steps_wrote_outputs(ndcg=0.20)
    best = {
        "run": "dt=2024-01-30/manual__x",
        "date": "2024-01-30",
        "configuration": "t02_f16",
        "values": {"factors": 16, "alpha": 4.0, "half_life_days": 7.0, "regularization": 10.0},
        "metric": "ndcg@10",
        "metrics": {"ndcg@10": 0.195},
    }
    world.s3.put_object(Bucket=ARTS, Key="tuning/best.json", Body=json.dumps(best).encode())

    dag_run, _ = run_dag(monkeypatch, world, params_from_tuning=True)

    assert dag_run.state == "success"
    (cluster,) = world.clusters()
    steps = {
        step["Name"]: step["Config"]["Args"]
        for step in world.emr.list_steps(ClusterId=cluster["Id"])["Steps"]
    }
    train, features = steps["train_cf"], steps["build_features"]
    assert train[train.index("--factors") + 1] == "16" and train[train.index("--alpha") + 1] == "4.0"
    assert train[train.index("--regularization") + 1] == "10.0"
    assert features[features.index("--half-life-days") + 1] == "7.0"
    source = json.loads(train[train.index("--params-source") + 1])
    assert source["from"] == "tuning" and source["configuration"] == "t02_f16"
    gate = read(world, f"runs/dt={DS}/gate.json")
    assert gate["params"]["source"]["run"] == best["run"] and gate["params"]["values"]["factors"] == 16


def test_the_nightly_without_a_published_best_uses_its_config_and_says_so(monkeypatch, world):
    StepScript().install(monkeypatch)
    world.day_arrives()
    world.steps_wrote_outputs(ndcg=0.20)

    dag_run, _ = run_dag(monkeypatch, world, params_from_tuning=True, factors=24)

    assert dag_run.state == "success"
    gate = read(world, f"runs/dt={DS}/gate.json")
    assert gate["params"]["source"]["from"] == "config"
    assert "tuning/best.json does not exist yet" in gate["params"]["source"]["reason"]
    assert gate["params"]["values"]["factors"] == 24


def test_the_logical_date_or_the_date_param_names_the_window():
    from recsys_dag.tuning_plan import run_key, sweep_date

    assert sweep_date(None, DS) == DS and sweep_date("2024-01-02", DS) == "2024-01-02"
    with pytest.raises(ValueError, match="needs a date"):
        sweep_date(None, None)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        sweep_date("yesterday", None)
    assert run_key(DS, "manual__2024-01-31T02:00:00+00:00") == f"dt={DS}/manual__2024-01-31T02-00-00-00-00"
    assert dt.date.fromisoformat(DS)
