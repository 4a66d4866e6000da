"""
# recsys_tuning: a hyperparameter sweep on one EMR cluster, feeding the nightly model

**What it does.** For a data date (the param `date`, else the run's logical date) it plans the sweep
from the configured grid (`tuning_grid`, at most `tuning_max_configs` configurations), waits for that
day's parsed events to be published by the nightly, creates one cluster whose StepConcurrencyLevel is
`tuning_parallelism`, builds the features once per distinct feature value (`half_life_days`) with a
**validation split** cut from the training split (each user's newest training items, never the
nightly's holdout), then, by dynamic task mapping, adds one `tune_trial` step per configuration (train
on the validation split's fit part, score on its held-out part) and watches each with its own sensor.
The cluster is always terminated (a teardown). `select_winner` ranks the configurations by the rule
written into the result, writes `tuning/<run>/leaderboard.json` and `.md`, and `publish_best` writes
`tuning/best.json` and updates the Asset whose URI is best.json's. A nightly configured with
`params_from_tuning: true` trains with best.json's values from its next run (recorded in its
`params.json` and `gate.json`).

With StepConcurrencyLevel above 1 EMR runs steps in any order and accepts only `ActionOnFailure:
CONTINUE`: so the configuration steps are added only after every features build succeeded, and each
configuration is a single step that trains and scores. Step names are the configurations' names.

**When it fails (on call).**
- One configuration failing does not sink the sweep: its `watch_trial` instance fails and alerts (the
  alert names the step, i.e. the configuration, and the job's own reason), the others finish, and the
  leaderboard marks it failed with its reason. The sweep fails only when no configuration succeeded
  (`select_winner` fails and alerts) or a features build failed (no configuration could run).
- Nothing here touches the model registry: a failed or abandoned sweep leaves `tuning/best.json` as it
  was, and the nightly keeps training with it.
- `wait_for_data` failing means the date's parsed events were never published (the nightly's
  parse_logs held or failed that day): pick another date with the param `date`.
- A bad grid is refused when the file is parsed (an import error of this DAG only; the nightly is
  unaffected), naming the configuration and the key.

**Configuration.** The nightly's: `AIRFLOW_VAR_RECSYS_TRAINING_CONFIG` (dags/recsys_dag/config.py, the
`tuning_*` keys and `params_from_tuning`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os

from airflow.providers.amazon.aws.operators.emr import EmrTerminateJobFlowOperator
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import DAG, Asset, Param, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException
from recsys_dag import cost, registry, tuning_results
from recsys_dag.alerts import FailureAlert, publish
from recsys_dag.cleanup import RunCleanup
from recsys_dag.config import load_config
from recsys_dag.emr_operators import EmrCreateJobFlowFromTemplateOperator, IdempotentEmrAddStepsOperator
from recsys_dag.emr_sensors import ResilientEmrStepSensor
from recsys_dag.locations import tuning_locations
from recsys_dag.step_macros import step_macros
from recsys_dag.tuning_grid import feature_sets
from recsys_dag.tuning_plan import (
    check_tuning_time_budget,
    run_key,
    sweep_date,
    sweep_plan,
    sweep_trials,
    waves,
)

DAG_ID = "recsys_tuning"
log = logging.getLogger(__name__)
EMR_CONFIGS = os.environ.get("RECSYS_EMR_CONFIGS_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), os.pardir, "emr_configs"
)

cfg = load_config()
TRIALS = sweep_trials(cfg)  # a bad grid fails here, at parse time, naming what is wrong
FEATURE_BUILDS = len(feature_sets(TRIALS))
check_tuning_time_budget(cfg, len(TRIALS), FEATURE_BUILDS)
# Identified by its URI alone, as the nightly's model asset: a fixed name over a config-dependent URI makes
# the asset inactive (and publish_best fail) as soon as a deployment changes its bucket or tuning prefix.
BEST_ASSET = Asset(uri=tuning_locations(cfg)["best"], group="recsys_tuning")
aws = {"aws_conn_id": cfg.aws_conn_id, "region_name": cfg.region_name}
task_timeout = dt.timedelta(seconds=cfg.task_timeout_seconds)
step_sensor = {
    "poke_interval": cfg.step_poke_interval_seconds,
    "max_step_runtime_seconds": cfg.step_timeout_seconds,
    "transient_retries": cfg.step_transient_retries,
    "transient_backoff_seconds": cfg.step_transient_backoff_seconds,
    "transient_backoff_max_seconds": cfg.step_transient_backoff_max_seconds,
    "retries": cfg.step_sensor_retries,
    "retry_delay": dt.timedelta(seconds=cfg.step_sensor_retry_delay_seconds),
    "deferrable": cfg.deferrable,
    "mode": "poke",
    **aws,
}


# A mapped instance's label in the UI: its configuration's name.
TRIAL_NAME = "{{ ti.xcom_pull(task_ids='plan_sweep', key='plan')['trials'][ti.map_index]['name'] }}"


def sensor_timeout(steps: int, first: bool) -> int:
    """Seconds a step sensor may wait: its stage's waves of step timeouts (steps queue behind each other
    at `tuning_parallelism` at once), plus the cluster's start for the first stage."""
    return waves(steps, cfg.tuning_parallelism) * cfg.step_timeout_seconds + (
        cfg.cluster_start_timeout_seconds if first else 0
    )


def read_result(s3, uri: str):
    """A configuration's result document; a body that is not JSON reads as malformed, never crashes."""
    try:
        return registry.read_json(s3, uri)
    except ValueError:
        return {"status": "unreadable"}


def only_step(step_ids: list) -> str:
    """add_trial_step adds one step per mapped instance: its id."""
    return step_ids[0]


with DAG(
    dag_id=DAG_ID,
    description="Hyperparameter sweep on one EMR cluster (dynamic task mapping); feeds the nightly model",
    schedule=cfg.tuning_schedule,
    start_date=cfg.start_datetime(),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(seconds=cfg.tuning_dagrun_timeout_seconds),
    on_failure_callback=RunCleanup(
        DAG_ID, cfg.aws_conn_id, cfg.region_name, cfg.alert_topic_arn, cfg.tuning_dagrun_timeout_seconds
    ),
    params={
        "date": Param(
            None,
            type=["null", "string"],
            description="last day of the features window (YYYY-MM-DD); empty = the run's logical date",
        )
    },
    default_args={
        "owner": cfg.owner,
        "retries": cfg.retries,
        "retry_delay": dt.timedelta(seconds=cfg.retry_delay_seconds),
        "execution_timeout": task_timeout,
        "on_failure_callback": [FailureAlert(cfg.aws_conn_id, cfg.region_name, cfg.alert_topic_arn)],
    },
    tags=["recsys", "emr", "ml", "tuning"],
    template_searchpath=[os.path.abspath(EMR_CONFIGS)],
    user_defined_macros=step_macros(cfg),
    doc_md=__doc__,
) as dag:

    @task(task_id="plan_sweep")
    def plan_sweep(params=None, ds=None, run_id=None, ti=None) -> list:
        """The sweep's plan (tuning/<run>/plan.json; XCom key "plan") and its EMR steps, rendered from
        tuning_steps.json: the features builds (key "feature_steps") and, as the return value that
        add_trial_step maps over, one single-step list per configuration."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        try:
            date = sweep_date((params or {}).get("date"), ds)
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        plan = sweep_plan(cfg, TRIALS, date, run_key(date, run_id))
        context = get_current_context()
        template = dag.get_template_env().get_template("tuning_steps.json")
        steps = json.loads(template.render(**context, plan=plan))
        registry.write_json(S3Hook(**aws).get_conn(), plan["locations"]["plan"], {**plan, "steps": steps})
        ti.xcom_push(key="plan", value=plan)
        ti.xcom_push(key="feature_steps", value=steps["features"])
        return steps["trials"]

    trial_steps = plan_sweep()

    wait_for_data = S3KeySensor(
        task_id="wait_for_data",
        bucket_name=cfg.data_bucket,
        bucket_key="{{ ti.xcom_pull(task_ids='plan_sweep', key='plan')['published_marker_key'] }}",
        poke_interval=cfg.data_poke_interval_seconds,
        timeout=cfg.tuning_data_wait_timeout_seconds,
        execution_timeout=dt.timedelta(seconds=cfg.tuning_data_wait_timeout_seconds + 600),
        mode="reschedule",
        **aws,
    )

    create_cluster = EmrCreateJobFlowFromTemplateOperator(
        task_id="create_cluster", job_flow_overrides="tuning_cluster.json", emr_conn_id=None, **aws
    )

    add_feature_steps = IdempotentEmrAddStepsOperator(
        task_id="add_feature_steps",
        job_flow_id=create_cluster.output,
        steps=trial_steps["feature_steps"],
        **aws,
    )

    watch_features = ResilientEmrStepSensor.partial(
        task_id="watch_features",
        job_flow_id=create_cluster.output,
        timeout=sensor_timeout(FEATURE_BUILDS, first=True),
        execution_timeout=dt.timedelta(seconds=sensor_timeout(FEATURE_BUILDS, first=True) + 600),
        **step_sensor,
    ).expand(step_id=add_feature_steps.output)

    # One mapped instance per configuration: the count follows the plan's grid at run time.
    add_trial_step = IdempotentEmrAddStepsOperator.partial(
        task_id="add_trial_step",
        job_flow_id=create_cluster.output,
        map_index_template="{{ task.steps[0]['Name'] }}",
        **aws,
    ).expand(steps=trial_steps)

    watch_trial = ResilientEmrStepSensor.partial(
        task_id="watch_trial",
        job_flow_id=create_cluster.output,
        map_index_template=TRIAL_NAME,
        timeout=sensor_timeout(len(TRIALS), first=False),
        execution_timeout=dt.timedelta(seconds=sensor_timeout(len(TRIALS), first=False) + 600),
        **step_sensor,
    ).expand(step_id=add_trial_step.output.map(only_step))

    terminate_cluster = EmrTerminateJobFlowOperator(
        task_id="terminate_cluster", job_flow_id=create_cluster.output, **aws
    ).as_teardown(setups=create_cluster)

    @task(task_id="select_winner", trigger_rule="all_done")
    def select_winner(run_id=None, ti=None) -> dict:
        """Rank every configuration (failed ones too) and pick the winner by the plan's rule; writes the
        leaderboard (JSON and Markdown). Fails only when no configuration succeeded."""
        from airflow.providers.amazon.aws.hooks.emr import EmrHook
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        plan = ti.xcom_pull(task_ids="plan_sweep", key="plan")
        if not plan:
            raise AirflowFailException("no sweep plan: plan_sweep failed, nothing ran")
        cluster_id = ti.xcom_pull(task_ids="create_cluster")
        s3 = S3Hook(**aws).get_conn()
        steps = {}
        if cluster_id:
            emr = EmrHook(emr_conn_id=None, **aws).conn
            steps = tuning_results.steps_by_name(
                page["Steps"] for page in emr.get_paginator("list_steps").paginate(ClusterId=cluster_id)
            )
        rows = [
            tuning_results.trial_row(
                trial, read_result(s3, trial["result"]), steps.get(trial["name"]), plan["k"]
            )
            for trial in plan["trials"]
        ]
        price = cost.cluster_hourly(
            cost.load_prices(os.path.join(EMR_CONFIGS, "prices.json")),
            [(cfg.primary_instance_type, 1), (cfg.core_instance_type, cfg.core_instance_count)],
            cfg.region_name,
        )
        board = tuning_results.leaderboard(
            plan, rows, price, {"dag_run_id": run_id, "cluster_id": cluster_id}
        )
        where = plan["locations"]
        registry.write_json(s3, where["leaderboard"], board)
        registry.write_text(s3, where["leaderboard_md"], tuning_results.markdown(board), "text/markdown")
        if board["winner"] is None:
            reasons = "; ".join(f"{row['name']}: {row['reason']}" for row in board["configurations"])
            raise AirflowFailException(f"no configuration succeeded ({reasons}); see {where['leaderboard']}")
        if board["failed"]:
            log.warning("configurations that failed: %s", ", ".join(board["failed"]))
        return board

    @task(task_id="publish_best", outlets=[BEST_ASSET])
    def publish_best(ti=None, outlet_events=None) -> dict:
        """Write tuning/best.json (the winner's values and evidence) and tell the alert topic."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        board = ti.xcom_pull(task_ids="select_winner")
        where = tuning_locations(cfg)
        published_at = dt.datetime.now(dt.timezone.utc).isoformat()
        best = tuning_results.best_document(
            board, tuning_locations(cfg, board["run"])["leaderboard"], published_at
        )
        registry.write_json(S3Hook(**aws).get_conn(), where["best"], best)
        outlet_events[BEST_ASSET].extra = {"run": best["run"], "configuration": best["configuration"]}
        summary = tuning_results.summary_line(board, best)
        publish(
            cfg.aws_conn_id,
            cfg.region_name,
            cfg.alert_topic_arn,
            f"[recsys] OK {DAG_ID} {board['date']}",
            summary,
        )
        return best

    trial_steps >> wait_for_data >> create_cluster >> add_feature_steps
    watch_features >> add_trial_step
    winner = select_winner()
    watch_trial >> terminate_cluster >> winner >> publish_best()
    # watch_trial's only other downstream is a teardown, which would make it a leaf whose failure fails
    # the run (DagRun._tis_for_dagrun_state): a failed configuration must not, the winner decides.
    watch_trial >> winner
