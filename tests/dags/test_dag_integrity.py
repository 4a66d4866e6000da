"""DAG integrity: imports cleanly and cheaply, every task is owned, retried and time-boxed, and the
structure is the one the on-call doc describes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from recsys_dag.locations import JOBS

from tests.dags.conftest import DAGS

pytestmark = pytest.mark.dag

HEAVY_MODULES = ("pyspark", "implicit", "scipy", "sklearn", "torch")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@pytest.fixture(scope="module")
def dag(dagbag):
    return dagbag.dags["recsys_training"]


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "recsys_training" in dagbag.dag_ids


def test_no_heavy_imports_at_module_level():
    code = (
        f"import sys, time; sys.path.insert(0, {str(DAGS)!r}); import airflow.sdk; t = time.perf_counter();"
        "import recsys_training; print('cold-import-ms', round((time.perf_counter() - t) * 1000));"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY_MODULES!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    print(out)
    assert out.strip().splitlines()[-1] == "[]"


def test_schedule_and_run_limits(dag):
    assert dag.schedule == "0 2 * * *" or str(dag.timetable.summary) == "0 2 * * *"
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.dagrun_timeout is not None
    assert set(dag.tags) >= {"recsys", "emr"}
    assert "on call" in dag.doc_md.lower() or "on-call" in dag.doc_md.lower()


def test_every_task_has_owner_retries_timeout_and_alerting(dag):
    for task in dag.tasks:
        assert task.owner == "ml-platform", task.task_id
        assert task.execution_timeout is not None, task.task_id
        assert task.on_failure_callback, task.task_id
        # Step sensors too: a worker restart or an API outage is retried (a FAILED step is not: it
        # raises AirflowFailException, see test_emr_failure_paths.py).
        assert task.retries >= 1 and task.retry_delay.total_seconds() > 0, task.task_id


def test_structure(dag):
    ids = lambda tasks: sorted(t.task_id for t in tasks)  # noqa: E731
    t = dag.task_dict
    assert ids(t["wait_for_data"].downstream_list) == ["resolve_params"]
    assert ids(t["resolve_params"].downstream_list) == ["create_cluster"]
    assert t["create_cluster"].is_setup and t["terminate_cluster"].is_teardown
    assert "create_cluster" in t["terminate_cluster"].upstream_task_ids
    order = ["add_steps", *(f"watch_{job}" for job in JOBS)]
    for upstream, downstream in zip(order, order[1:]):
        assert downstream in t[upstream].downstream_task_ids
    # The gate judges only a version whose lists are all in the serving table.
    assert "terminate_cluster" in t["watch_load_serving"].downstream_task_ids
    assert ids(t["quality_gate"].upstream_list) == ["watch_load_serving"]
    assert ids(t["quality_gate"].downstream_list) == ["hold_model", "promote_model"]
    assert ids(t["announce"].upstream_list) == ["hold_model", "promote_model", "record_run"]
    assert ids(t["record_run"].upstream_list) == ["hold_model", "promote_model", "terminate_cluster"]
    assert t["record_run"].trigger_rule == "all_done"  # failed runs get their record and metrics too
    assert t["announce"].trigger_rule == "none_failed_min_one_success"
    # Only terminate_cluster is a teardown: a failed step must fail the run.
    assert [task.task_id for task in dag.tasks if task.is_teardown] == ["terminate_cluster"]
    # An alias: the model asset gets an event only when latest.json actually moved.
    (alias,) = t["promote_model"].outlets
    assert type(alias).__name__ == "AssetAlias" and alias.name == "recsys_model_updates"


def test_step_sensors_name_the_steps(dag):
    sensors = [t for t in dag.tasks if t.task_id.startswith("watch_")]
    assert [s.task_id for s in sensors] == [
        "watch_parse_logs",
        "watch_build_features",
        "watch_train_cf",
        "watch_evaluate",
        "watch_load_serving",
    ]
    for index, sensor in enumerate(sensors):
        assert f"[{index}]" in sensor.step_id
        assert type(sensor).__name__ == "ResilientEmrStepSensor"


def test_the_time_budget_matches_the_dag(dag):
    """config.time_budget counts BUDGET_STEPS sensors and BUDGET_RETRIED_TASKS retried tasks on the
    critical path, and the step timeouts the DAG really sets."""
    from recsys_dag.config import BUDGET_RETRIED_TASKS, BUDGET_STEPS, PipelineConfig, check_time_budget

    cfg = PipelineConfig()
    sensors = [t for t in dag.tasks if t.task_id.startswith("watch_")]
    assert len(sensors) == BUDGET_STEPS
    path = {
        "wait_for_data",
        "resolve_params",
        "create_cluster",
        "add_steps",
        "quality_gate",
        "promote_model",
        "record_run",
        "announce",
    }
    assert path <= set(dag.task_dict) and len(path) == BUDGET_RETRIED_TASKS  # hold_model: promote's twin
    first, *rest = sensors
    assert first.timeout == cfg.step_timeout_seconds + cfg.cluster_start_timeout_seconds
    assert all(sensor.timeout == cfg.step_timeout_seconds for sensor in rest)
    assert all(sensor.max_step_runtime_seconds == cfg.step_timeout_seconds for sensor in sensors)
    assert dag.task_dict["wait_for_data"].timeout == cfg.data_wait_timeout_seconds
    assert check_time_budget(cfg) <= dag.dagrun_timeout.total_seconds() < 24 * 3600
    assert dag.on_failure_callback is not None  # cleans up after a timed-out run


def test_sensor_modes_avoid_the_reschedule_race(dag):
    """Step sensors poke in-process; only the data sensor uses reschedule mode."""
    t = dag.task_dict
    assert t["wait_for_data"].mode == "reschedule" and t["wait_for_data"].retries >= 1
    for job in JOBS:
        assert t[f"watch_{job}"].mode == "poke"


def test_the_tuning_dag_maps_one_step_per_configuration_and_always_tears_down(dagbag):
    """recsys_tuning: manual by default, every task owned, time-boxed and alerting, the configuration
    steps and sensors mapped (not a loop of operators), the cluster a setup with its teardown."""
    dag = dagbag.dags["recsys_tuning"]
    assert dag.schedule is None and dag.max_active_runs == 1 and dag.dagrun_timeout is not None
    assert dag.on_failure_callback is not None and "on call" in dag.doc_md.lower()
    for task in dag.tasks:
        assert task.owner == "ml-platform", task.task_id
        assert task.execution_timeout is not None and task.on_failure_callback, task.task_id
        assert task.retries >= 1, task.task_id
    mapped = sorted(task.task_id for task in dag.tasks if type(task).__name__ == "MappedOperator")
    assert mapped == ["add_trial_step", "watch_features", "watch_trial"]
    t = dag.task_dict
    assert t["create_cluster"].is_setup and t["terminate_cluster"].is_teardown
    assert [task.task_id for task in dag.tasks if task.is_teardown] == ["terminate_cluster"]
    assert t["select_winner"].trigger_rule == "all_done"
    # A failed configuration must not fail the run by itself: watch_trial has a non-teardown downstream.
    assert {"terminate_cluster", "select_winner"} <= t["watch_trial"].downstream_task_ids
    (best,) = t["publish_best"].outlets  # identified by URI: prefixes may differ between deployments
    assert best.uri.endswith("/tuning/best.json") and best.name == best.uri
