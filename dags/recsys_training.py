"""
# recsys_training: nightly recommendation model on EMR

**What it does.** For the logical date `ds` it waits for the day's raw interaction logs on S3, creates an
EMR cluster, runs four Spark steps (`parse_logs` → `build_features` → `train_cf` → `evaluate`), always
terminates the cluster, and then a quality gate either promotes the model into the registry (versioned
copy, then the `latest.json` pointer) or holds it.

**When it fails (on call).**
- An SNS alert names the task, the cluster id and, for a failed step, EMR's FailureDetails and the tail of
  the step's stderr (from `<LogUri>/<cluster>/steps/<step>/stderr.gz`).
- The failed `watch_<step>` task names the failing Spark step; later steps were cancelled by EMR
  (`ActionOnFailure=CANCEL_AND_WAIT`), the cluster was terminated by `terminate_cluster` (a teardown: it
  runs on every path), and nothing was promoted.
- To reproduce by hand: the step's arguments are in the rendered `add_steps` template (Rendered tab);
  every job is a `spark-submit … --help` CLI. Outputs of a date are overwritten, so clearing the run
  (or the whole DAG run) after a fix is safe: no step is added twice to a cluster, and a version already
  promoted is not promoted again.
- `wait_for_data` timing out means the day's raw data (and its `_SUCCESS` marker) never arrived.
- `quality_gate` writes its reasons to `runs/dt=<ds>/gate.json`; a held model is not an error.

**Configuration.** One JSON object in the environment variable `AIRFLOW_VAR_RECSYS_TRAINING_CONFIG`
overrides the documented defaults in `dags/recsys_dag/config.py` (buckets, prefixes, release label,
instance types, idle timeout, thresholds, model parameters, alert topic, deferrable sensors).
"""

from __future__ import annotations

import datetime as dt
import functools
import os

from airflow.providers.amazon.aws.operators.emr import EmrTerminateJobFlowOperator
from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import DAG, Asset, chain, task
from recsys_dag import registry
from recsys_dag.alerts import FailureAlert, publish
from recsys_dag.config import load_config
from recsys_dag.emr_operators import EmrCreateJobFlowFromTemplateOperator, IdempotentEmrAddStepsOperator
from recsys_dag.locations import JOBS, code_locations, registry_locations, run_locations
from recsys_dag.quality_gate import decide

DAG_ID = "recsys_training"
EMR_CONFIGS = os.environ.get("RECSYS_EMR_CONFIGS_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), os.pardir, "emr_configs"
)

cfg = load_config()
# Identified by its URI alone: a fixed name with a config-dependent URI would clash (and the asset go
# inactive, failing promote_model) as soon as a deployment changed its bucket or registry prefix.
MODEL_ASSET = Asset(uri=registry_locations(cfg)["latest"], group="recsys_model")
aws = {"aws_conn_id": cfg.aws_conn_id, "region_name": cfg.region_name}
task_timeout = dt.timedelta(seconds=cfg.task_timeout_seconds)
# Without a triggerer, wait_for_data (hours of waiting) frees its worker slot between pokes. The step
# sensors instead poke in one process for the step's minutes: in reschedule mode Airflow 3.3's scheduler
# can read a poke's late "success" event as an external kill and fail the sensor (apache/airflow#71172,
# seen here on the first `make airflow` run). wait_for_data's retries absorb that; a watch_ sensor has none.
data_sensor_mode = {"deferrable": cfg.deferrable, "mode": "poke" if cfg.deferrable else "reschedule"}
step_sensor_mode = {"deferrable": cfg.deferrable, "mode": "poke"}

with DAG(
    dag_id=DAG_ID,
    description="Nightly collaborative-filtering model: EMR Spark steps, quality gate, promotion",
    schedule=cfg.schedule,
    start_date=cfg.start_datetime(),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(seconds=cfg.dagrun_timeout_seconds),
    default_args={
        "owner": cfg.owner,
        "retries": cfg.retries,
        "retry_delay": dt.timedelta(seconds=cfg.retry_delay_seconds),
        "execution_timeout": task_timeout,
        "on_failure_callback": [FailureAlert(cfg.aws_conn_id, cfg.region_name, cfg.alert_topic_arn)],
    },
    tags=["recsys", "emr", "ml"],
    template_searchpath=[os.path.abspath(EMR_CONFIGS)],
    user_defined_macros={
        "cfg": cfg.as_dict(),
        "code": code_locations(cfg),
        "run_locations": functools.partial(run_locations, cfg),
    },
    doc_md=__doc__,
) as dag:
    marker = cfg.raw_ready_marker
    wait_for_data = S3KeySensor(
        task_id="wait_for_data",
        bucket_name=cfg.data_bucket,
        bucket_key="{{ run_locations(ds).raw_key_prefix }}" + (marker or "*"),
        wildcard_match=not marker,
        poke_interval=cfg.data_poke_interval_seconds,
        timeout=cfg.data_wait_timeout_seconds,
        execution_timeout=dt.timedelta(seconds=cfg.data_wait_timeout_seconds + 600),
        **data_sensor_mode,
        **aws,
    )

    create_cluster = EmrCreateJobFlowFromTemplateOperator(
        task_id="create_cluster", job_flow_overrides="cluster.json", emr_conn_id=None, **aws
    )

    add_steps = IdempotentEmrAddStepsOperator(
        task_id="add_steps", job_flow_id=create_cluster.output, steps="steps.json", **aws
    )

    # One sensor per step, so the failing Spark step is named in the UI. No retries: a FAILED step is
    # final, and re-poking it only delays the alert.
    step_sensors = [
        EmrStepSensor(
            task_id=f"watch_{job}",
            job_flow_id=create_cluster.output,
            step_id=f"{{{{ ti.xcom_pull(task_ids='add_steps')[{index}] }}}}",
            poke_interval=cfg.step_poke_interval_seconds,
            timeout=cfg.step_timeout_seconds,
            execution_timeout=dt.timedelta(seconds=cfg.step_timeout_seconds + 600),
            retries=0,
            **step_sensor_mode,
            **aws,
        )
        for index, job in enumerate(JOBS)
    ]

    terminate_cluster = EmrTerminateJobFlowOperator(
        task_id="terminate_cluster", job_flow_id=create_cluster.output, **aws
    ).as_teardown(setups=create_cluster)

    @task.branch(task_id="quality_gate")
    def quality_gate(ds=None, run_id=None, ti=None) -> str:
        """Compare the run's metrics with the thresholds and with production; write gate.json."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        s3 = S3Hook(**aws)
        run = run_locations(cfg, ds)
        metrics = registry.read_json(s3, run["metrics"])
        if metrics is None:
            raise FileNotFoundError(f"evaluate wrote no metrics at {run['metrics']}")
        latest = registry.read_json(s3, registry_locations(cfg)["latest"])
        decision = decide(metrics, latest["metrics"] if latest else None, cfg)
        report = {
            "ds": ds,
            "run_id": run_id,
            "promote": decision.promote,
            "reasons": decision.reasons,
            "ndcg": decision.ndcg,
            "popularity_ndcg": decision.popularity_ndcg,
            "production_ndcg": decision.production_ndcg,
            "production_version": latest.get("version") if latest else None,
            "k": metrics["k"],
            "users_evaluated": metrics.get("users_evaluated"),
        }
        registry.write_json(s3, run["gate_report"], report)
        ti.xcom_push(key="decision", value=report)
        return "promote_model" if decision.promote else "hold_model"

    @task(task_id="promote_model", outlets=[MODEL_ASSET])
    def promote_model(ds=None, run_id=None) -> dict:
        """Copy the model into registry/versions/<ds>/, then flip registry/latest.json to it."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        run = run_locations(cfg, ds)
        reg = registry_locations(cfg, ds)
        result = registry.promote(
            S3Hook(**aws), ds, run["model"], run["metrics"], reg["version"], reg["latest"], run_id
        )
        return {"version": result["version"], "promoted": result["promoted"], "uri": result["uri"]}

    @task(task_id="hold_model")
    def hold_model(ti=None) -> dict:
        """The gate said no: keep production as it is (the reasons are in gate.json)."""
        decision = ti.xcom_pull(task_ids="quality_gate", key="decision")
        return {"held": True, "reasons": decision["reasons"]}

    @task(task_id="announce", trigger_rule="none_failed_min_one_success")
    def announce(ds=None, ti=None) -> str:
        """One-line run summary to the alert topic."""
        decision = ti.xcom_pull(task_ids="quality_gate", key="decision")
        promoted = ti.xcom_pull(task_ids="promote_model")
        if promoted and promoted["promoted"]:
            outcome = f"promoted version {promoted['version']}"
        elif promoted:
            outcome = f"version {promoted['version']} already promoted (rerun)"
        else:
            outcome = "held: " + "; ".join(r for r in decision["reasons"] if r.startswith("FAIL"))
        summary = (
            f"{DAG_ID} {ds}: {outcome}; ndcg@{decision['k']}={decision['ndcg']:.4f} "
            f"popularity={decision['popularity_ndcg']:.4f} users={decision['users_evaluated']}"
        )
        publish(cfg.aws_conn_id, cfg.region_name, cfg.alert_topic_arn, f"[recsys] OK {DAG_ID} {ds}", summary)
        return summary

    gate = quality_gate()
    chain(wait_for_data, create_cluster, add_steps, *step_sensors, terminate_cluster)
    step_sensors[-1] >> gate >> [promote_model(), hold_model()] >> announce()
