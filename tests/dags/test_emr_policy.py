"""The EMR instance profile's policy allows every S3 location the rendered steps of both DAGs touch, and
nothing beside: no other prefix, no other bucket, no other service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest
from recsys_dag.config import config_from_mapping
from recsys_dag.emr_policy import instance_profile_policy, placeholder_config
from recsys_dag.locations import code_locations, run_locations, split_s3_uri
from recsys_dag.tuning_plan import sweep_plan

from tests.dags.conftest import load_dag_module
from tests.dags.iam_eval import allows
from tests.dags.test_rendering import DS, RUN_ID, ResolvedParams

pytestmark = pytest.mark.dag

COMMITTED = Path(__file__).resolve().parents[2] / "emr_configs" / "iam" / "emr-instance-profile-policy.json"
BUCKETS = {"data_bucket": "lake", "artifact_bucket": "arts"}
# How each job option uses its S3 URI. Anything else that names s3:// makes the test fail: a new option
# must be classified here, and so be checked against the policy.
READS = {
    "--input",
    "--events",
    "--features",
    "--recommendations",
    "--production",
    "--production-pointer",
    "--py-files",
}
WRITES = {"--output", "--rejects", "--outcome", "--stats", "--summary"}


@pytest.fixture(scope="module")
def rendered_steps() -> List[dict]:
    """Every step both DAGs send for one date, rendered by Airflow's template environment."""
    monkeypatch = pytest.MonkeyPatch()
    try:
        nightly = load_dag_module(monkeypatch, **BUCKETS)
        dag = nightly.dag
        context = {"ds": DS, "run_id": RUN_ID, "dag": dag, "ti": ResolvedParams(nightly.cfg)}
        steps = json.loads(
            dag.task_dict["add_steps"].render_template(
                "steps.json", context, jinja_env=dag.get_template_env()
            )
        )
        monkeypatch.setenv(
            "AIRFLOW_VAR_RECSYS_TRAINING_CONFIG",
            json.dumps({**BUCKETS, "tuning_grid": {"half_life_days": [7, 14]}}),
        )
        import importlib
        import sys

        sys.modules.pop("recsys_tuning", None)
        tuning = importlib.import_module("recsys_tuning")
        plan = sweep_plan(tuning.cfg, tuning.TRIALS, DS, f"dt={DS}/manual__x")
        template = tuning.dag.get_template_env().get_template("tuning_steps.json")
        sweep = json.loads(template.render(ds=DS, run_id=RUN_ID, dag=tuning.dag, plan=plan))
    finally:
        monkeypatch.undo()
    return steps + sweep["features"] + [step for single in sweep["trials"] for step in single]


def touched(steps: List[dict]) -> Iterator[Tuple[str, str, str]]:
    """(step, "read" | "write", s3 URI) for every S3 URI in the steps' arguments."""
    for step in steps:
        args = step["HadoopJarStep"]["Args"]
        for index, arg in enumerate(args):
            if not arg.startswith("s3://"):
                continue
            option = args[index - 1] if index else ""
            if option in READS or arg.endswith(".py"):
                yield step["Name"], "read", arg
            elif option in WRITES:
                yield step["Name"], "write", arg
            else:
                raise AssertionError(f"{step['Name']}: unclassified S3 argument {option} {arg}")


def violations(policy: dict, uses: List[Tuple[str, str, str]]) -> List[str]:
    """What the policy would refuse of ``uses``: objects under each URI, and listing it."""
    out = []
    for step, kind, uri in uses:
        bucket, key = split_s3_uri(uri)
        key = key.rstrip("/")
        objects = [f"arn:aws:s3:::{bucket}/{key}", f"arn:aws:s3:::{bucket}/{key}/part-0.parquet"]
        if uri.endswith(".json") or uri.endswith(".py") or uri.endswith(".zip"):
            objects = objects[:1]
        actions = {
            "read": ["s3:GetObject"],
            "write": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "log": ["s3:PutObject"],
        }[kind]
        for action in actions:
            for resource in objects:
                if not allows(policy, action, resource):
                    out.append(f"{step}: {action} {resource}")
        if not allows(policy, "s3:ListBucket", f"arn:aws:s3:::{bucket}", prefix=key + "/"):
            out.append(f"{step}: s3:ListBucket {bucket} prefix {key}/")
    return out


ACCOUNT = "123456789012"


def policy_for(cfg) -> dict:
    return instance_profile_policy(cfg, region="us-east-1", account=ACCOUNT)


def test_every_location_the_steps_of_both_dags_touch_is_allowed(rendered_steps):
    cfg = config_from_mapping(BUCKETS)
    uses = list(touched(rendered_steps))
    assert {name for name, _, _ in uses} >= {"parse_logs", "train_cf", "features_hl7", "t02_hl14"}
    assert violations(policy_for(cfg), uses) == []


def test_what_the_jobs_and_emr_touch_beyond_their_arguments_is_allowed():
    cfg = config_from_mapping(BUCKETS)
    policy = policy_for(cfg)
    run, code = run_locations(cfg, DS), code_locations(cfg)
    beyond = [
        ("bootstrap", "read", code["bootstrap_script"]),  # cluster.json's bootstrap action
        ("bootstrap", "read", code["bootstrap_requirements"]),
        ("emr", "log", run["emr_logs"] + "j-1/steps/s-1/stderr.gz"),  # EMR's log pusher, LogUri
        ("parse_logs", "write", run["parsed"] + "/_attempts/x/part-0.parquet"),  # attempts and pointer
        ("parse_logs", "write", run["parsed"] + "/_PUBLISHED.json"),
        ("build_features", "read", run["parsed_root"] + "/dt=2024-01-30/_PUBLISHED.json"),  # the window
        ("train_cf", "read", "s3://arts/registry/versions/2024-01-30_j-1/model/params.json"),  # production
    ]
    assert violations(policy, beyond) == []
    # The logs are write-only: a step cannot read another run's logs (or their secrets) back.
    assert not allows(policy, "s3:GetObject", "arn:aws:s3:::arts/emr-logs/j-1/steps/s-1/stderr.gz")


def test_a_step_touching_anything_else_is_refused(rendered_steps):
    cfg = config_from_mapping(BUCKETS)
    policy = policy_for(cfg)
    outside = [
        ("train_cf", "write", "s3://arts/registry/latest.json"),  # promotion is Airflow's, not the cluster's
        ("parse_logs", "write", "s3://lake/raw/events/dt=2024-01-31"),  # raw input is read-only
        ("evaluate", "write", "s3://arts/code/0.1.0/jobs/evaluate.py"),  # deployed code is read-only
        ("train_cf", "read", "s3://someone-elses-bucket/data"),
        ("evaluate", "write", "s3://arts/elsewhere/evaluation"),
    ]
    for use in outside:
        assert violations(policy, [use]), use
    steps = json.loads(json.dumps(rendered_steps))
    args = steps[-1]["HadoopJarStep"]["Args"]
    args[args.index("--output") + 1] = "s3://arts/not-a-pipeline-prefix/result.json"
    assert violations(policy, list(touched(steps))) == [
        f"{steps[-1]['Name']}: {action} arn:aws:s3:::arts/not-a-pipeline-prefix/result.json"
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
    ] + [f"{steps[-1]['Name']}: s3:ListBucket arts prefix not-a-pipeline-prefix/result.json/"]
    services = {action.split(":")[0] for s in policy["Statement"] for action in _actions(s)}
    assert services == {"s3", "dynamodb"}  # DynamoDB: the serving table only (the test below)
    assert "s3:*" not in {action for s in policy["Statement"] for action in _actions(s)}


def test_prefixes_follow_the_config_and_the_committed_document_is_the_defaults():
    moved = config_from_mapping({**BUCKETS, "runs_prefix": "ml/runs", "tuning_prefix": "ml/tuning"})
    policy = policy_for(moved)
    assert allows(policy, "s3:PutObject", "arn:aws:s3:::arts/ml/runs/dt=2024-01-31/gate.json")
    assert not allows(policy, "s3:PutObject", "arn:aws:s3:::arts/runs/dt=2024-01-31/gate.json")
    committed = json.loads(COMMITTED.read_text())
    assert committed == instance_profile_policy(placeholder_config(config_from_mapping({})))


def _actions(statement: Dict) -> List[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def test_the_load_step_writes_only_version_keyed_items_and_reads_only_the_pointer(rendered_steps):
    """What spark_jobs/load_serving.py sends (serving/load.py, serving/pointer.py), by key. One instance
    profile serves every run, so the policy cannot name the run's own version: items keyed by a version
    are writable, the pointer, its history and other tables are not."""
    cfg = config_from_mapping(BUCKETS)
    policy = policy_for(cfg)
    (load,) = [step for step in rendered_steps if step["Name"] == "load_serving"]
    args = load["HadoopJarStep"]["Args"]
    version, table_name = args[args.index("--version") + 1], args[args.index("--table") + 1]
    assert table_name == cfg.serving_table
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{table_name}"
    users = [f"{version}#{user}" for user in ("1", "42", "user#with#hashes")]
    assert allows(policy, "dynamodb:BatchWriteItem", table, leading_keys=users)
    assert allows(
        policy, "dynamodb:PutItem", table, leading_keys=[f"{version}@popularity", f"{version}@loaded"]
    )
    assert allows(policy, "dynamodb:GetItem", table, leading_keys=["@pointer"])
    assert allows(policy, "dynamodb:ConditionCheckItem", table, leading_keys=["@pointer"])
    # Never the pointer or its history (promotion's, in Airflow), never another table.
    for keys in (["@pointer"], ["@pointer#000000000001"], [*users, "@pointer"]):
        assert not allows(policy, "dynamodb:PutItem", table, leading_keys=keys), keys
        assert not allows(policy, "dynamodb:BatchWriteItem", table, leading_keys=keys), keys
    assert not allows(policy, "dynamodb:GetItem", table, leading_keys=users[:1])
    assert not allows(
        policy, "dynamodb:BatchWriteItem", table.replace(table_name, "other"), leading_keys=users
    )
    assert not allows(policy, "dynamodb:DeleteItem", table, leading_keys=users)
