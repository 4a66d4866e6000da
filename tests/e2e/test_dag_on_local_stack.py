"""The real DAG, unchanged, against the local stack: LocalStack S3/SNS/SQS and the local EMR endpoint
whose steps really spark-submit the deployed jobs. Only endpoints and config differ from production."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from recsys_dag.locations import JOBS

from serving import pointer as serving_pointer
from serving.client import Recommender
from spark_jobs.common.published import local_pointer
from tests.e2e.conftest import ROOT, Scenario, alerts_about, client, new_scenario
from tests.polling import wait_for
from tools.datagen.clickstream import generate
from tools.local.run_chain import run_chain

pytestmark = pytest.mark.e2e

DS = "2024-01-31"
SERVED_COLUMNS = ["user_id", "rank", "item_id", "source"]  # what two runs' served lists must agree on


def upload_day(scenario: Scenario, raw_root: Path, ds: str = DS) -> None:
    s3 = client("s3")
    prefix = scenario.key("raw_prefix", f"dt={ds}")
    for path in sorted((raw_root / f"dt={ds}").iterdir()):
        s3.upload_file(str(path), scenario.lake, f"{prefix}/{path.name}")
    s3.put_object(Bucket=scenario.lake, Key=f"{prefix}/_SUCCESS", Body=b"")


def read_parquet(scenario: Scenario, bucket: str, prefix: str) -> pd.DataFrame:
    s3 = client("s3")
    tables = [
        pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        for key in scenario.keys(bucket, prefix)
        if key.endswith(".parquet")
    ]
    import pyarrow as pa

    return pa.concat_tables(tables).to_pandas()


def set_production(scenario: Scenario, **params) -> str:
    """A live production model from an earlier date whose recorded configuration is ``params``."""
    from spark_jobs.common.engines import TrainParams

    version = "2024-01-01_j-EARLIER"
    root = f"s3://{scenario.arts}/{scenario.key('registry_prefix', 'versions', version)}"
    latest = {
        "version": version,
        "ds": "2024-01-01",
        "model": f"{root}/model",
        "recommendations": f"{root}/recommendations",
        "params": TrainParams(**params).as_dict(),
        "metrics": {"k": 10, "model": {"ndcg@10": 0.5}},  # a stored number the gate must not use
    }
    client("s3").put_object(
        Bucket=scenario.arts, Key=scenario.key("registry_prefix", "latest.json"), Body=json.dumps(latest)
    )
    # ... and what applications read: its (tiny) lists loaded and live in the scenario's serving table.
    from serving.load import finish_load, load_lists, user_list

    dynamodb, table, expires = client("dynamodb"), serving_table(scenario), int(time.time()) + 86400
    lists = [user_list("u0", [1], ["i0"], [1.0], "model")]
    written = load_lists(dynamodb, table, version, lists, expires_at=expires, max_items=10).written
    popular = user_list("-", [1], ["i0"], [1.0], "popularity").ranked
    finish_load(
        dynamodb,
        table,
        version,
        popularity=popular,
        lists_written=written,
        lists_expected=1,
        expires_at=expires,
    )
    assert serving_pointer.switch(dynamodb, table, version, now_epoch=int(time.time())).moved
    return version


def scenario_endpoint(name: str) -> str:
    from tools.local.run import RESOURCES

    return RESOURCES["endpoints"][name]


def serving_table(scenario: Scenario) -> str:
    return str(scenario.config["serving_table"])


def serving_live(scenario: Scenario) -> str:
    live = serving_pointer.read_pointer(client("dynamodb"), serving_table(scenario))
    return live.version if live else None


def local_cli(module: str, *args: str) -> subprocess.CompletedProcess:
    """``python -m <module> ...`` as an operator runs it against the local stack (make rollback,
    make recommend): the local stack's test credentials from the environment."""
    from tools.local.run import RESOURCES

    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": RESOURCES["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": RESOURCES["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": RESOURCES["region"],
    }
    env.pop("AWS_PROFILE", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def assert_run_metrics_in_cloudwatch(scenario: Scenario) -> None:
    """run.json's cost estimate, and each of its metrics read back from LocalStack's CloudWatch."""
    import datetime as dt

    record = scenario.read_json(scenario.arts, scenario.key("runs_prefix", f"dt={DS}", "run.json"))
    assert record["cost"]["state"] == "TERMINATED" and record["cost"]["minutes"] > 0
    assert record["cost"]["usd"] > 0 and "estimate" in record["cost"]["estimate"]
    gate = scenario.read_json(scenario.arts, scenario.key("runs_prefix", f"dt={DS}", "gate.json"))
    assert gate["cost"] == record["cost"]  # beside the decision it paid for
    names = set(record["metrics"])
    assert names >= {
        "LinesRead", "LinesAccepted", "LinesRejected", "RejectRatio", "Users", "Items", "Interactions",
        "FitSeconds", "CandidateNdcg", "PopularityNdcg", "ProductionNdcg", "ModelPromoted",
        "ClusterMinutes", "EstimatedCostUSD",
    }  # fmt: skip
    at = dt.datetime.fromisoformat(record["metrics_sent"]["at"]).replace(second=0, microsecond=0)
    queries = [
        {
            "Id": f"m{index}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "Recsys/Pipeline",
                    "MetricName": name,
                    "Dimensions": [{"Name": "Pipeline", "Value": "recsys_training"}],
                },
                "Period": 60,
                "Stat": stat,
            },
        }
        for index, (name, stat) in enumerate((n, s) for n in sorted(names) for s in ("Minimum", "Maximum"))
    ]
    found = {}
    cloudwatch = client("cloudwatch")
    for start in range(0, len(queries), 100):
        result = cloudwatch.get_metric_data(
            MetricDataQueries=queries[start : start + 100],
            StartTime=at - dt.timedelta(minutes=1),
            EndTime=at + dt.timedelta(minutes=2),
        )
        for item in result["MetricDataResults"]:
            found[item["Id"]] = item["Values"]
    by_name = {}
    for query in queries:
        by_name.setdefault(query["MetricStat"]["Metric"]["MetricName"], []).extend(found.get(query["Id"], []))
    for name in names:  # another scenario's run may share the minute: ours is then its min or max
        assert any(abs(v - record["metrics"][name]) < 1e-9 for v in by_name[name]), (name, by_name[name])


@pytest.fixture(scope="module")
def raw_day(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    generate(root, events=30000, days=1, end_date=DS, users=800, items=400, groups=8, seed=5, quiet=True)
    return root


@pytest.fixture(scope="module")
def promoted_day(deployed_code, migrated_airflow, raw_day):
    """One nightly run shared by the next two tests: production's configuration is worse (refitted on
    today's split it loses, so the candidate wins the paired comparison; production's stored 0.5 is
    another day's number and plays no part). Returns (scenario, the run's process, production's version)."""
    scenario = new_scenario(deployed_code)
    upload_day(scenario, raw_day)
    old = set_production(scenario, factors=2, iterations=1)
    return scenario, scenario.run_dag(DS), old


def test_full_dag_matches_a_direct_spark_submit_chain_and_replaces_a_worse_model(
    promoted_day, raw_day, tmp_path, spark_env
):
    scenario, proc, old = promoted_day
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    states = scenario.task_states(DS)
    assert states["terminate_cluster"] == "success" and states["promote_model"] == "success", states
    latest = scenario.read_json(scenario.arts, scenario.key("registry_prefix", "latest.json"))
    assert latest["version"].startswith(f"{DS}_j-") and latest["ds"] == DS
    dag_metrics = scenario.read_json(
        scenario.arts, scenario.key("runs_prefix", f"dt={DS}", "evaluation", "metrics.json")
    )
    production = dag_metrics.pop("production")
    assert production["status"] == "refit" and production["version"] == old
    assert production["paired"]["users"] == dag_metrics["users_evaluated"]
    assert production["paired"]["mean_difference"]["ndcg@10"] > 0

    # The same steps (steps.json rendered with this scenario's config), spark-submitted by hand.
    cfg = scenario.effective_config()
    chain = run_chain(raw_day, tmp_path / "chain", DS, config=scenario.config, per_day=True)
    chain_metrics = dict(chain.metrics["implicit"])
    assert chain_metrics.pop("production")["status"] == "none"  # the chain's own registry is empty
    assert dag_metrics == chain_metrics

    # Both through the day's pointer: only the published attempt counts.
    pointer = scenario.read_json(scenario.lake, scenario.key("parsed_prefix", f"dt={DS}", "_PUBLISHED.json"))
    dag_events = read_parquet(scenario, scenario.lake, pointer["events"][len(f"s3://{scenario.lake}/") :])
    local_events = pd.read_parquet(local_pointer(chain.location("parsed"))["events"])
    key = ["event_id"]
    pd.testing.assert_frame_equal(
        dag_events.sort_values(key).reset_index(drop=True),
        local_events.sort_values(key).reset_index(drop=True),
    )
    # What is served: the promoted version's lists, the chain's lists, and nothing the user already has.
    columns = SERVED_COLUMNS
    registry_root = f"s3://{scenario.arts}/"
    served = read_parquet(scenario, scenario.arts, latest["recommendations"][len(registry_root) :])
    served = served.sort_values(["user_id", "rank"]).reset_index(drop=True)
    local_served = pd.read_parquet(chain.location("recommendations"))
    pd.testing.assert_frame_equal(
        served[columns], local_served.sort_values(["user_id", "rank"]).reset_index(drop=True)[columns]
    )
    window = read_parquet(
        scenario, scenario.arts, scenario.key("runs_prefix", f"dt={DS}", "features", "window")
    )
    assert served.merge(window, on=["user_id", "item_id"]).empty
    assert set(served["user_id"]) == set(window["user_id"])  # every user of the window has a list
    assert served.groupby("user_id").size().max() == cfg.serve_k
    (summary,) = alerts_about(f"recsys_training {DS}: promoted")
    assert "ndcg@10=" in summary and f"paired vs production {old} +" in summary
    assert "estimated USD" in summary  # the cost line, once the cluster had ended
    assert_run_metrics_in_cloudwatch(scenario)

    # What applications read: the serving table's pointer moved from production to the promoted
    # version, whose every list load_serving wrote (reconciled) and which answers as the registry does.
    assert serving_live(scenario) == latest["version"]
    assert serving_pointer.read_pointer(client("dynamodb"), serving_table(scenario)).previous == old
    loaded = scenario.read_json(scenario.arts, scenario.key("runs_prefix", f"dt={DS}", "serving_load.json"))
    assert loaded["version"] == latest["version"]
    assert loaded["lists_written"] == loaded["users"] == served["user_id"].nunique()
    recommender = Recommender(serving_table(scenario), client=client("dynamodb"), pointer_ttl_s=0)
    for user in sorted(served["user_id"].unique())[:5]:
        answer = recommender.recommend(user, n=cfg.serve_k)
        mine = served[served["user_id"] == user]
        assert answer.version == latest["version"] and answer.source == mine["source"].iloc[0]
        assert [entry.item_id for entry in answer.items] == list(mine["item_id"])
    assert recommender.recommend("nobody-knows-me", n=10).source == "popularity"


def test_a_killed_airflow_leaves_no_cluster_after_the_idle_timeout_and_a_clean_rerun_can_be_rolled_back(
    promoted_day,
):
    scenario, proc, _ = promoted_day
    assert proc.returncode == 0  # the day's first version is live
    first = scenario.read_json(scenario.arts, scenario.key("registry_prefix", "latest.json"))
    columns = SERVED_COLUMNS
    registry_root = f"s3://{scenario.arts}/"
    served = read_parquet(scenario, scenario.arts, first["recommendations"][len(registry_root) :])
    served = served.sort_values(["user_id", "rank"]).reset_index(drop=True)
    emr = client("emr")
    ours = lambda: [  # noqa: E731 - this date's active clusters (earlier runs' have ended)
        c["Id"]
        for c in emr.list_clusters(ClusterStates=["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"])[
            "Clusters"
        ]
        if c["Name"] == f"recsys-training-{DS}"
    ]
    # EMR's smallest IdleTimeout, 60 s, is what ends a cluster nobody terminates.
    killed = scenario.start_dag(DS, idle_timeout_seconds=60)
    try:
        (orphan,) = wait_for("a running step", lambda: [
            c for c in ours()
            if any(s["Status"]["State"] == "RUNNING" for s in emr.list_steps(ClusterId=c)["Steps"])
        ], timeout_s=180, interval_s=2)  # fmt: skip
    finally:
        os.killpg(killed.pid, signal.SIGKILL)  # Airflow dies mid-step: no teardown, no callback
        killed.wait()

    # The cluster finishes the steps it was given, then ends on its own once idle for 60 s.
    ended = wait_for(
        "the orphaned cluster to end",
        lambda: emr.describe_cluster(ClusterId=orphan)["Cluster"]["Status"]["State"].startswith("TERMINATED"),
        timeout_s=600,
        interval_s=2,
    )
    assert ended and ours() == []
    status = emr.describe_cluster(ClusterId=orphan)["Cluster"]["Status"]
    assert "auto-termination" in status["StateChangeReason"]["Message"]
    # Nobody promoted the orphan's model: the registry and the serving pointer are as they were.
    assert scenario.read_json(scenario.arts, scenario.key("registry_prefix", "latest.json")) == first
    assert serving_live(scenario) == first["version"]

    # A rerun of the date trains on a new cluster, each step once, and is compared with the first version.
    again = scenario.run_dag(DS)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    rerun = scenario.read_json(scenario.arts, scenario.key("registry_prefix", "latest.json"))
    assert rerun["version"] != first["version"] and rerun["ds"] == DS
    assert rerun["version"].split("_", 1)[1] != orphan
    rerun_metrics = scenario.read_json(
        scenario.arts, scenario.key("runs_prefix", f"dt={DS}", "evaluation", "metrics.json")
    )
    assert rerun_metrics["production"]["status"] == "same_config"
    assert rerun_metrics["production"]["version"] == first["version"]
    versions = scenario.keys(scenario.arts, scenario.key("registry_prefix", "versions"))
    # Both versions are complete (a manifest each), and nothing else, the orphan's included, is there.
    assert {
        key.split("/versions/")[1].split("/")[0] for key in versions if key.endswith("_manifest.json")
    } == {first["version"], rerun["version"]}
    assert {key.split("/versions/")[1].split("/")[0] for key in versions} == {
        first["version"],
        rerun["version"],
    }
    rerun_served = read_parquet(scenario, scenario.arts, rerun["recommendations"][len(registry_root) :])
    pd.testing.assert_frame_equal(  # same data, same seed: the same lists
        rerun_served.sort_values(["user_id", "rank"]).reset_index(drop=True)[columns], served[columns]
    )
    for version in (first["version"], rerun["version"]):  # one cluster per training, no step twice
        steps = emr.list_steps(ClusterId=version.split("_", 1)[1])["Steps"]
        assert sorted(step["Name"] for step in steps) == sorted(JOBS)
    (rerun_summary,) = alerts_about(f"recsys_training {DS}: promoted version {rerun['version']}")
    assert "(same configuration)" not in rerun_summary and "+0.0000" in rerun_summary
    assert serving_live(scenario) == rerun["version"]
    # The day's events: the rerun's attempt is the published one, and at most it and the orphan's remain.
    pointer = scenario.read_json(scenario.lake, scenario.key("parsed_prefix", f"dt={DS}", "_PUBLISHED.json"))
    attempts = {
        key.split("/_attempts/")[1].split("/")[0]
        for key in scenario.keys(scenario.lake, scenario.key("parsed_prefix", f"dt={DS}", "_attempts"))
    }
    assert pointer["attempt"] in attempts and len(attempts) <= 2

    # make rollback: latest.json and the serving pointer back to the first version; the CLI follows.
    endpoints = {"s3": scenario_endpoint("localstack"), "dynamodb": scenario_endpoint("dynamodb")}
    back = local_cli(
        "tools.ops.registry_cli", "rollback", "--registry", f"s3://{scenario.arts}/{scenario.key('registry_prefix')}",
        "--endpoint-url", endpoints["s3"], "--serving-table", serving_table(scenario),
        "--dynamodb-endpoint-url", endpoints["dynamodb"], "--version", first["version"], "--reason", "e2e",
    )  # fmt: skip
    assert back.returncode == 0, back.stderr
    moved = f"pointer moved to {first['version']} (was {rerun['version']})"
    assert back.stdout.splitlines()[1] == f"serving table {serving_table(scenario)}: {moved}"
    assert serving_live(scenario) == first["version"]
    user = served["user_id"].iloc[0]
    shown = local_cli(
        "serving.cli", "recommend", "--table", serving_table(scenario),
        "--endpoint-url", endpoints["dynamodb"], "--user", user,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"version {first['version']}  user {user}  ")
    assert len(shown.stdout.splitlines()) == 2 + 10


def test_a_step_that_really_fails_alerts_with_the_jobs_own_reason_before_its_logs_ship(scenario, tmp_path):
    raw = tmp_path / "raw"
    generate(
        raw, events=2000, days=1, end_date=DS, users=100, items=50, malformed_ratio=0.3, seed=9, quiet=True
    )
    upload_day(scenario, raw)

    proc = scenario.run_dag(DS)

    assert proc.returncode != 0
    states = scenario.task_states(DS)
    assert states["watch_parse_logs"] == "failed"
    assert states["watch_build_features"] == "upstream_failed"
    assert states["terminate_cluster"] == "success"
    assert scenario.read_json(scenario.arts, scenario.key("registry_prefix", "latest.json")) is None
    emr = client("emr")
    tagged = [
        c for c in emr.list_clusters()["Clusters"]
        if c["Status"]["State"] not in ("TERMINATED", "TERMINATED_WITH_ERRORS")
    ]  # fmt: skip
    assert tagged == []
    (alert,) = alerts_about("task: watch_parse_logs")
    assert "step: parse_logs" in alert and "state FAILED" in alert
    # In cluster mode the step log is the launcher's; the job's own line is in the driver's container
    # log, which (as on EMR) is not in S3 yet when the alert goes out. The outcome record has it.
    outcome = f"s3://{scenario.arts}/{scenario.key('runs_prefix', f'dt={DS}', 'outcomes', 'parse_logs.json')}"
    assert f"cause (from the job's outcome record {outcome}):\n  FAILED parse_logs: reject ratio" in alert
    assert "finished with failed status" in alert  # the launcher's step stderr tail
    cluster = re.search(r"^cluster: (j-\w+)$", alert, re.MULTILINE).group(1)
    log_prefix = scenario.effective_config().emr_log_prefix
    assert scenario.keys(scenario.arts, f"{log_prefix}/{cluster}/steps")  # the step logs are there
    assert scenario.keys(scenario.arts, f"{log_prefix}/{cluster}/containers") == []  # the driver's not yet
    # The rejected day was not published: build_features would not read it.
    assert (
        scenario.read_json(scenario.lake, scenario.key("parsed_prefix", f"dt={DS}", "_PUBLISHED.json"))
        is None
    )


@pytest.fixture(scope="module")
def held_day(deployed_code, migrated_airflow, raw_day):
    """One nightly run shared by the next two tests: deferrable sensors, a candidate worse than the live
    production model (held), and the day's parsed events published for the sweep."""
    scenario = new_scenario(deployed_code)
    upload_day(scenario, raw_day)
    cfg = scenario.effective_config()
    old = set_production(scenario, factors=cfg.factors, iterations=cfg.iterations)
    # The candidate's configuration is the worse one now; any paired loss holds it.
    proc = scenario.run_dag(DS, deferrable=True, factors=2, iterations=1, max_regression_vs_production=0.0)
    return scenario, proc, old


def test_deferrable_sensors_and_a_better_production_model_is_kept(held_day):
    scenario, proc, old = held_day
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    states = scenario.task_states(DS)
    assert states["hold_model"] == "success" and states["promote_model"] == "skipped"
    assert all(states[f"watch_{job}"] == "success" for job in JOBS)
    latest = scenario.read_json(scenario.arts, scenario.key("registry_prefix", "latest.json"))
    assert latest["version"] == old
    assert scenario.keys(scenario.arts, scenario.key("registry_prefix", "versions")) == []
    # The held version's lists were loaded (they expire by TTL) but the pointer stayed on production.
    loaded = scenario.read_json(scenario.arts, scenario.key("runs_prefix", f"dt={DS}", "serving_load.json"))
    marker = serving_pointer.read_loaded(client("dynamodb"), serving_table(scenario), loaded["version"])
    assert marker is not None and marker.lists == loaded["lists_written"]
    assert serving_live(scenario) == old
    (summary,) = alerts_about(f"recsys_training {DS}: held")
    assert f"paired change vs production {old} -" in summary


def test_a_sweep_runs_two_configurations_at_once_and_feeds_the_next_nightly(held_day):
    scenario, proc, _ = held_day
    assert proc.returncode == 0  # the day is published
    alerts_about("")
    sweep = {"tuning_grid": {"factors": [4, 8, 16]}, "tuning_parallelism": 2, "iterations": 5}

    tuned = scenario.run_dag(DS, dag_id="recsys_tuning", **sweep)

    assert tuned.returncode == 0, tuned.stdout[-3000:] + tuned.stderr[-3000:]
    states = scenario.task_states(DS, dag_id="recsys_tuning")
    assert [states[f"watch_trial[{index}]"] for index in range(3)] == ["success"] * 3
    assert states["terminate_cluster"] == "success" and states["publish_best"] == "success"
    best = scenario.read_json(scenario.arts, scenario.key("tuning_prefix", "best.json"))
    board = scenario.read_json(scenario.arts, scenario.key("tuning_prefix", best["run"], "leaderboard.json"))
    assert sorted(row["name"] for row in board["configurations"]) == ["t01_f4", "t02_f8", "t03_f16"]
    assert board["failed"] == [] and best["configuration"] == board["winner"]
    for row in board["configurations"]:
        assert 0 < row["metrics"]["ndcg@10"] <= 1 and row["standard_error"]["ndcg@10"] > 0
        assert row["validation_users"] > 0 and row["step_seconds"] > 0 and row["cost_usd"] > 0
    # EMR's own timelines: the configuration steps ran two at a time, never three.
    emr = client("emr")
    steps = emr.list_steps(ClusterId=board["cluster_id"])["Steps"]
    spans = [
        (step["Status"]["Timeline"]["StartDateTime"], step["Status"]["Timeline"]["EndDateTime"])
        for step in steps
        if step["Name"].startswith("t0")
    ]
    overlaps = [sum(start <= moment < end for start, end in spans) for moment, _ in spans]
    assert max(overlaps) == 2, spans
    assert emr.describe_cluster(ClusterId=board["cluster_id"])["Cluster"]["Status"]["State"] == "TERMINATED"
    (summary,) = alerts_about("recsys_tuning")
    assert f"winner {best['configuration']}" in summary

    nightly = scenario.run_dag(DS, params_from_tuning=True)

    assert nightly.returncode == 0, nightly.stdout[-3000:] + nightly.stderr[-3000:]
    gate = scenario.read_json(scenario.arts, scenario.key("runs_prefix", f"dt={DS}", "gate.json"))
    assert gate["params"]["source"]["from"] == "tuning" and gate["params"]["source"]["run"] == best["run"]
    assert gate["params"]["values"]["factors"] == best["values"]["factors"]
    trained = scenario.read_json(
        scenario.arts, scenario.key("runs_prefix", f"dt={DS}", "model/model/params.json")
    )
    assert trained["params"]["factors"] == best["values"]["factors"]
    assert trained["params_source"]["configuration"] == best["configuration"]


@pytest.fixture(scope="module")
def spark_env():
    """PATH and Spark settings for the direct spark-submit chain (as the integration suite uses)."""
    import os
    import sys

    saved = dict(os.environ)
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    os.environ["SPARK_CONF_DIR"] = str(ROOT / "emr_configs" / "local-spark")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    yield
    os.environ.clear()
    os.environ.update(saved)
