"""The EMR requests Airflow renders for a logical date, checked against what EMR and the jobs accept."""

from __future__ import annotations

import importlib
import json

import pytest

from tests.dags.conftest import load_dag_module

pytestmark = pytest.mark.dag

DS = "2024-01-31"
RUN_ID = "scheduled__2024-01-31T02:00:00+00:00"
CLUSTER_ID = "j-2AB3XYZ"  # create_cluster's XCom: the version load_serving loads is named after it


class ResolvedParams:
    """Stands in for the task instance in the template context: resolve_params' XCom as the DAG's own
    config yields it (without params_from_tuning it reads nothing)."""

    def __init__(self, cfg):
        from recsys_dag import tuned_params

        self.value = tuned_params.resolve(cfg.as_dict(), False, "", lambda uri: None)

    def xcom_pull(self, task_ids: str, key: str = "return_value"):
        assert key == "return_value" and task_ids in ("resolve_params", "create_cluster")
        return self.value if task_ids == "resolve_params" else CLUSTER_ID


@pytest.fixture(scope="module")
def rendered():
    monkeypatch = pytest.MonkeyPatch()
    module = load_dag_module(
        monkeypatch,
        data_bucket="lake",
        artifact_bucket="arts",
        code_version="1.2.3",
        idle_timeout_seconds=900,
        region_name="eu-west-1",
    )
    dag = module.dag
    context = {"ds": DS, "run_id": RUN_ID, "dag": dag, "ti": ResolvedParams(module.cfg)}
    env = dag.get_template_env()
    cluster = dag.task_dict["create_cluster"].render_template("cluster.json", context, jinja_env=env)
    steps = dag.task_dict["add_steps"].render_template("steps.json", context, jinja_env=env)
    monkeypatch.undo()
    return json.loads(cluster), json.loads(steps)


def test_cluster_request(rendered):
    cluster, _ = rendered
    assert cluster["Name"] == "recsys-training-2024-01-31"
    assert cluster["ReleaseLabel"].startswith("emr-7.")
    assert cluster["LogUri"] == "s3://arts/emr-logs/"
    assert cluster["AutoTerminationPolicy"] == {"IdleTimeout": 900}
    assert cluster["Instances"]["KeepJobFlowAliveWhenNoSteps"] is True
    tags = {tag["Key"]: tag["Value"] for tag in cluster["Tags"]}
    assert tags == {"dag_id": "recsys_training", "run_id": RUN_ID, "owner": "ml-platform", "logical_date": DS}
    (bootstrap,) = cluster["BootstrapActions"]
    assert (
        bootstrap["ScriptBootstrapAction"]["Path"] == "s3://arts/code/1.2.3/bootstrap/install_python_deps.sh"
    )
    assert bootstrap["ScriptBootstrapAction"]["Args"] == [
        "s3://arts/code/1.2.3/bootstrap/requirements-emr.txt",
        "s3://arts/code/1.2.3/wheels/x86_64/",  # m5: the wheels make deploy uploaded for x86_64
    ]
    classifications = {c["Classification"] for c in cluster["Configurations"]}
    assert classifications == {"spark-defaults", "spark-env"}
    assert "Ec2SubnetId" not in cluster["Instances"]
    assert cluster["JobFlowRole"] == "recsys-emr-instance-profile"  # not EMR_EC2_DefaultRole's s3:*
    assert "SecurityConfiguration" not in cluster  # none unless the deployment names one


def test_graviton_instance_types_get_aarch64_wheels_and_mixed_ones_are_refused():
    from recsys_dag.config import architecture, config_from_mapping
    from recsys_dag.locations import code_locations

    assert [
        architecture(t) for t in ("m5.xlarge", "m6g.2xlarge", "r7gd.xlarge", "c7gn.large", "m6i.large")
    ] == [
        "x86_64",
        "aarch64",
        "aarch64",
        "aarch64",
        "x86_64",
    ]
    graviton = config_from_mapping(
        {"primary_instance_type": "m6g.xlarge", "core_instance_type": "r6g.2xlarge"}
    )
    assert code_locations(graviton)["bootstrap_wheels"].endswith("/wheels/aarch64/")
    with pytest.raises(ValueError, match="mix CPU architectures"):
        config_from_mapping({"core_instance_type": "m6g.2xlarge"})


def test_a_configured_security_configuration_reaches_run_job_flow():
    cluster = _render("create_cluster", "cluster.json", security_configuration="recsys-encrypted")
    assert cluster["SecurityConfiguration"] == "recsys-encrypted"


def test_steps_are_the_nightly_jobs_in_order(rendered):
    from recsys_dag.locations import JOBS

    _, steps = rendered
    assert [step["Name"] for step in steps] == list(JOBS)
    for step in steps:
        assert step["ActionOnFailure"] == "CANCEL_AND_WAIT"
        assert step["HadoopJarStep"]["Jar"] == "command-runner.jar"
        args = step["HadoopJarStep"]["Args"]
        assert args[:3] == ["spark-submit", "--deploy-mode", "cluster"]
        entry = _entry_index(args)
        assert args[entry - 2 : entry + 1] == [
            "--py-files",
            "s3://arts/code/1.2.3/spark_jobs.zip",
            f"s3://arts/code/1.2.3/jobs/{step['Name']}.py",
        ]


def _entry_index(args):
    """Position of the job's entry point: the first .py after spark-submit's own options."""
    return next(i for i, arg in enumerate(args) if arg.endswith(".py"))


def _job_args(steps, name):
    step = next(s for s in steps if s["Name"] == name)
    args = step["HadoopJarStep"]["Args"]
    module = importlib.import_module(f"spark_jobs.{name}")
    return module.parse_args(args[_entry_index(args) + 1 :])  # exits on anything it would not accept


def test_the_train_step_driver_is_sized_for_the_fit(rendered):
    _, steps = rendered
    args = next(s for s in steps if s["Name"] == "train_cf")["HadoopJarStep"]["Args"]
    options = args[: _entry_index(args)]
    assert options[options.index("--driver-cores") + 1] == "4"
    assert options[options.index("--driver-memory") + 1] == "12g"
    assert "spark.driver.maxResultSize=4g" in options
    assert _job_args(steps, "train_cf").num_threads == 4  # implicit's threads = the driver's cores
    for name in ("parse_logs", "build_features", "evaluate"):  # the others keep the cluster's defaults
        other = next(s for s in steps if s["Name"] == name)["HadoopJarStep"]["Args"]
        assert "--driver-memory" not in other


def test_driver_sizes_are_validated():
    from recsys_dag.config import config_from_mapping

    with pytest.raises(ValueError, match="below train_driver_memory_gb"):
        config_from_mapping({"train_driver_memory_gb": 4, "train_max_result_size_gb": 4})
    with pytest.raises(ValueError, match="train_driver_cores must be >= 1"):
        config_from_mapping({"train_driver_cores": 0})


def test_step_arguments_parse_with_the_jobs_own_parsers(rendered):
    _, steps = rendered
    parse = _job_args(steps, "parse_logs")
    assert parse.input == "s3://lake/raw/events/dt=2024-01-31"
    assert parse.output == "s3://lake/parsed/events/dt=2024-01-31"
    assert parse.rejects == "s3://lake/rejects/events/dt=2024-01-31"
    assert parse.max_reject_ratio == 0.05
    from recsys_dag.locations import JOBS

    for job in JOBS:  # every step writes its outcome record
        assert _job_args(steps, job).outcome == f"s3://arts/runs/dt=2024-01-31/outcomes/{job}.json"

    features = _job_args(steps, "build_features")
    assert features.events == "s3://lake/parsed/events"
    assert features.run_date.isoformat() == DS
    assert features.output == "s3://arts/runs/dt=2024-01-31/features"
    assert features.lookback_days == 30 and features.half_life_days == 14.0
    assert features.min_window_share == 0.8

    train = _job_args(steps, "train_cf")
    assert train.features == features.output
    assert train.output == "s3://arts/runs/dt=2024-01-31/model"
    assert (train.engine, train.algorithm, train.factors, train.iterations, train.k, train.serve_k) == (
        "implicit",
        "als",
        64,
        15,
        10,
        100,
    )
    assert train.production_pointer == "s3://arts/registry/latest.json"
    assert train.run_date.isoformat() == DS

    evaluate = _job_args(steps, "evaluate")
    assert evaluate.features == features.output
    assert evaluate.recommendations == "s3://arts/runs/dt=2024-01-31/model/evaluation/recommendations"
    assert evaluate.production == "s3://arts/runs/dt=2024-01-31/model/production"
    assert evaluate.output == "s3://arts/runs/dt=2024-01-31/evaluation"
    assert evaluate.k == 10

    load = _job_args(steps, "load_serving")
    assert load.recommendations == "s3://arts/runs/dt=2024-01-31/model/recommendations"  # the served lists
    assert load.features == features.output
    assert load.version == f"{DS}_{CLUSTER_ID}"  # what promote_model registers (registry.version_id)
    assert (load.table, load.region, load.ttl_days, load.max_items, load.threads) == (
        "recsys-serving",
        "eu-west-1",
        30,
        100,
        4,
    )
    assert load.summary == "s3://arts/runs/dt=2024-01-31/serving_load.json"
    assert load.endpoint_url is None and not load.ensure_table  # the real table, made by its own target


def test_the_load_step_takes_the_region_of_the_aws_connection_when_the_config_names_none(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", "extra": {"region_name": "ap-south-1"}})
    )
    steps = _render("add_steps", "steps.json", region_name=None)
    args = steps[-1]["HadoopJarStep"]["Args"]
    assert args[args.index("--region") + 1] == "ap-south-1"


def _render(task_id: str, template: str, **overrides):
    """``template`` as ``task_id`` renders it for DS with config ``overrides`` (buckets lake/arts), parsed."""
    monkeypatch = pytest.MonkeyPatch()
    try:
        module = load_dag_module(monkeypatch, data_bucket="lake", artifact_bucket="arts", **overrides)
        dag = module.dag
        context = {"ds": DS, "run_id": RUN_ID, "dag": dag, "ti": ResolvedParams(module.cfg)}
        text = dag.task_dict[task_id].render_template(template, context, jinja_env=dag.get_template_env())
    finally:
        monkeypatch.undo()
    return json.loads(text)


def _render_steps(**overrides):
    return _render("add_steps", "steps.json", **overrides)


@pytest.mark.parametrize(
    "engine,algorithm,regularization",
    [("implicit", "als", 30.0), ("implicit", "bpr", 0.01), ("spark-als", "als", 0.01)],
)
def test_each_engine_trains_with_its_own_defaults(engine, algorithm, regularization):
    """Unset in config, regularization and learning rate are not passed: the job's per-engine default
    applies, so choosing bpr or spark-als never trains with implicit ALS's 30."""
    from spark_jobs.common.engines import TrainParams

    steps = _render_steps(engine=engine, algorithm=algorithm)
    args = next(s for s in steps if s["Name"] == "train_cf")["HadoopJarStep"]["Args"]
    assert "--regularization" not in args and "--learning-rate" not in args
    train = _job_args(steps, "train_cf")
    assert (train.engine, train.algorithm, train.regularization) == (engine, algorithm, None)
    params = TrainParams(engine=train.engine, algorithm=train.algorithm, regularization=train.regularization)
    assert params.regularization == regularization


def test_engine_parameters_set_in_config_reach_the_jobs():
    steps = _render_steps(
        engine="implicit", algorithm="bpr", regularization=0.05, learning_rate=0.02, event_weights="view=0.5"
    )
    train = _job_args(steps, "train_cf")
    assert (train.regularization, train.learning_rate) == (0.05, 0.02)
    assert _job_args(steps, "build_features").weights["view"] == 0.5


def test_config_rejects_unknown_keys_and_wrong_types(monkeypatch):
    from recsys_dag.config import load_config

    with pytest.raises(ValueError, match="unknown recsys config keys"):
        load_config({"AIRFLOW_VAR_RECSYS_TRAINING_CONFIG": '{"data_buckit": "x"}'})
    with pytest.raises(ValueError, match="core_instance_count must be of type int"):
        load_config({"AIRFLOW_VAR_RECSYS_TRAINING_CONFIG": '{"core_instance_count": "4"}'})
    with pytest.raises(ValueError, match="not valid JSON"):
        load_config({"AIRFLOW_VAR_RECSYS_TRAINING_CONFIG": "{"})
    assert load_config({}).data_bucket == "recsys-data-lake"
