"""
# recsys_training: nightly recommendation model on EMR

**What it does.** For the logical date `ds` it waits for the day's raw interaction logs on S3, creates an
EMR cluster, runs five Spark steps (`parse_logs` → `build_features` → `train_cf` → `evaluate` →
`load_serving`), always terminates the cluster, and then a quality gate either promotes the model or
holds it.

`train_cf` fits twice: the *evaluation model* on the training split (the gate judges it) and the *serving
model* on every interaction of the window, whose top-`serve_k` lists exclude everything the user already
has (users outside the model get popularity lists). It also refits production's configuration on the
same training split, so `evaluate` scores production and candidate on the same users and held-out
interactions, neither having seen them. Promotion registers the serving model and its lists as a new
version `registry/versions/<ds>_<cluster id>/` (one per training; never overwritten), then moves
`registry/latest.json` to it by a conditional write, forward in logical date only. `load_serving` has
already written the served lists into that version of the DynamoDB serving table (every run, held ones
too; items expire after `serving_ttl_days`); once latest.json names the version, promotion switches the
table's pointer to it, by the same forward-only rule. See docs/contracts.md and docs/serving.md.

**When it fails (on call).**
- An SNS alert names the task, the cluster id and, for a failed step, the cause: the job's own
  `FAILED <job>: <reason>` (and traceback) from its outcome record `runs/dt=<ds>/outcomes/<job>.json`,
  written before the step turned FAILED; without one (a job killed from outside), the driver's container
  log if EMR has shipped it (minutes after the failure; the alert says when it has not). Then EMR's
  FailureDetails and the tail of the step's stderr (the spark-submit launcher's, in cluster mode).
- A day over `max_reject_ratio` is not published (`parsed/.../dt=<ds>/_PUBLISHED.json` still names the
  previous good attempt, if any) and build_features reads published days only, failing by name when
  fewer than `min_window_share` of the window is there.
- The failed `watch_<step>` task names the failing Spark step and fails at once, without retry; later
  steps were cancelled by EMR (`ActionOnFailure=CANCEL_AND_WAIT`), the cluster was terminated by
  `terminate_cluster` (a teardown: it runs on every path but a timeout), and nothing was promoted.
  A `watch_<step>` that is *up for retry* is not a failed step: the EMR API was throttled or unreachable
  for minutes, or a worker restarted; the step kept running and the retry watches it again.
- The run timed out (`dagrun_timeout`, 14 h by default): Airflow skips every unfinished task, the
  teardown too, so the DAG's failure callback terminates the clusters tagged with the run's `run_id` and
  alerts `[recsys] TIMED OUT ...` naming them. If that alert says the cleanup failed, terminate the
  cluster by hand (EMR console, tags `dag_id`/`run_id`); EMR's idle timeout is the last backstop.
- To reproduce by hand: the step's arguments are in the rendered `add_steps` template (Rendered tab);
  every job is a `spark-submit … --help` CLI. Outputs of a date are overwritten, so clearing the run
  (or the whole DAG run) after a fix is safe: no step is added twice to a cluster, `create_cluster` first
  terminates (and logs) any active cluster of the same date left by an earlier attempt, and the fixed
  training is registered as a new version (a retried `promote_model` of the same training is a no-op).
- `wait_for_data` timing out means the day's raw data (and its `_SUCCESS` marker) never arrived.
- `quality_gate` writes every number and rule to `runs/dt=<ds>/gate.json`; a held model is not an error.
- `record_run` (every path) writes `runs/dt=<ds>/run.json` (cluster timeline, estimated cost, the run's
  numbers) and sends them to CloudWatch (`Recsys/Pipeline`); `[recsys] METRICS NOT SENT` means only the
  metrics were lost: the run itself is unaffected and its numbers are in run.json.
  It fails (and alerts) when metrics are missing or malformed.
- `watch_load_serving` failed: the lists did not all reach the serving table (the outcome record says
  why: throttling outlasting the retries, a refused write into the live version, a count that did not
  reconcile). Nothing was promoted; the version's partial items expire by TTL. Clear the run.
- `promote_model` failed after latest.json moved (its log says `not switched live`, NotLoaded or
  PointerConflict): the serving table still answers with the previous version. Clearing promote_model
  is safe: registering and latest.json are then no-ops and only the switch is retried.
- A bad model went live: `make rollback VERSION=<version> REASON=...` locally (latest.json and the
  serving pointer), or `python -m tools.ops.registry_cli rollback` and `python -m serving.cli rollback`
  against real AWS (README).

**Configuration.** One JSON object in the environment variable `AIRFLOW_VAR_RECSYS_TRAINING_CONFIG`
overrides the documented defaults in `dags/recsys_dag/config.py` (buckets, prefixes, release label,
instance types, idle timeout, thresholds, model parameters, alert topic, deferrable sensors, timeouts
and retries). A configuration whose timeouts and retries add up to more than `dagrun_timeout` is refused
when the file is parsed, with every number in the error.
"""

from __future__ import annotations

import datetime as dt
import logging
import os

from airflow.providers.amazon.aws.operators.emr import EmrTerminateJobFlowOperator
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import DAG, Asset, AssetAlias, chain, task
from recsys_dag import cost, promotion, registry, run_record, serving_switch, tuned_params
from recsys_dag.alerts import FailureAlert, publish
from recsys_dag.cleanup import RunCleanup
from recsys_dag.config import TRAINING_DAG_ID, load_config
from recsys_dag.emr_operators import EmrCreateJobFlowFromTemplateOperator, IdempotentEmrAddStepsOperator
from recsys_dag.emr_sensors import ResilientEmrStepSensor
from recsys_dag.locations import JOBS, registry_locations, run_locations, tuning_locations
from recsys_dag.quality_gate import decide
from recsys_dag.step_macros import step_macros

DAG_ID = TRAINING_DAG_ID
log = logging.getLogger(__name__)
EMR_CONFIGS = os.environ.get("RECSYS_EMR_CONFIGS_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), os.pardir, "emr_configs"
)

cfg = load_config()
# Identified by its URI alone: a fixed name with a config-dependent URI would clash (and the asset go
# inactive, failing promote_model) as soon as a deployment changed its bucket or registry prefix.
MODEL_ASSET = Asset(uri=registry_locations(cfg)["latest"], group="recsys_model")
# promote_model emits through an alias, so an event for MODEL_ASSET exists only when latest.json moved.
MODEL_UPDATES = AssetAlias("recsys_model_updates")
aws = {"aws_conn_id": cfg.aws_conn_id, "region_name": cfg.region_name}
task_timeout = dt.timedelta(seconds=cfg.task_timeout_seconds)
# Without a triggerer, wait_for_data (hours of waiting) frees its worker slot between pokes. The step
# sensors instead poke in one process for the step's minutes: in reschedule mode Airflow 3.3's scheduler
# can read a poke's late "success" event as an external kill and fail the sensor (seen here on the first
# `make airflow` run), and a retry of a watch_ sensor is meant for worker restarts, not for that.
data_sensor_mode = {"deferrable": cfg.deferrable, "mode": "poke" if cfg.deferrable else "reschedule"}
step_sensor_mode = {"deferrable": cfg.deferrable, "mode": "poke"}


def serving_region() -> str:
    """The serving table's region for load_serving's ``--region``: the config's, else the AWS
    connection's; "" when neither names one (the cluster's default then applies). Called while add_steps
    renders, never at parse time."""
    if cfg.region_name:
        return cfg.region_name
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(aws_conn_id=cfg.aws_conn_id, client_type="dynamodb").region_name or ""


def sensor_timeout(index: int) -> int:
    """Seconds watch_<JOBS[index]> may wait per try: its step's timeout, plus the cluster's start for
    the first step (PENDING until the cluster is up)."""
    return cfg.step_timeout_seconds + (cfg.cluster_start_timeout_seconds if index == 0 else 0)


with DAG(
    dag_id=DAG_ID,
    description="Nightly collaborative-filtering model: EMR Spark steps, quality gate, promotion",
    schedule=cfg.schedule,
    start_date=cfg.start_datetime(),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(seconds=cfg.dagrun_timeout_seconds),
    # On dagrun_timeout the scheduler skips every unfinished task, the terminate_cluster teardown included
    # (SchedulerJobRunner._schedule_dag_run, Airflow 3.3.2), and only this callback runs (reason
    # "timed_out", in the DAG processor): it terminates the clusters tagged with the run and alerts.
    on_failure_callback=RunCleanup(
        DAG_ID, cfg.aws_conn_id, cfg.region_name, cfg.alert_topic_arn, cfg.dagrun_timeout_seconds
    ),
    default_args={
        "owner": cfg.owner,
        "retries": cfg.retries,
        "retry_delay": dt.timedelta(seconds=cfg.retry_delay_seconds),
        "execution_timeout": task_timeout,
        "on_failure_callback": [FailureAlert(cfg.aws_conn_id, cfg.region_name, cfg.alert_topic_arn)],
    },
    tags=["recsys", "emr", "ml"],
    template_searchpath=[os.path.abspath(EMR_CONFIGS)],
    user_defined_macros=step_macros(cfg, serving_region),
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

    @task(task_id="resolve_params")
    def resolve_params() -> dict:
        """The model and feature values every step renders from: the config's, or with params_from_tuning
        tuning/best.json's (read once, here, before the cluster costs anything)."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        s3 = S3Hook(**aws).get_conn()
        return tuned_params.resolve(
            cfg.as_dict(),
            cfg.params_from_tuning,
            tuning_locations(cfg)["best"],
            lambda uri: registry.read_json(s3, uri),
        )

    params = resolve_params()

    create_cluster = EmrCreateJobFlowFromTemplateOperator(
        task_id="create_cluster", job_flow_overrides="cluster.json", emr_conn_id=None, **aws
    )

    add_steps = IdempotentEmrAddStepsOperator(
        task_id="add_steps", job_flow_id=create_cluster.output, steps="steps.json", **aws
    )

    # One sensor per step, so the failing Spark step is named in the UI. A FAILED/CANCELLED/INTERRUPTED
    # step fails its sensor at once, with no retry (re-poking a final state only delays the alert);
    # throttling, 5xx and connection errors are retried with backoff, and the task's own retries cover a
    # worker restart. The first sensor also waits out the cluster's start (its step is PENDING until the
    # cluster is up); every step may then run step_timeout_seconds by EMR's clock (config.time_budget).
    step_sensors = [
        ResilientEmrStepSensor(
            task_id=f"watch_{job}",
            job_flow_id=create_cluster.output,
            step_id=f"{{{{ ti.xcom_pull(task_ids='add_steps')[{index}] }}}}",
            poke_interval=cfg.step_poke_interval_seconds,
            timeout=sensor_timeout(index),
            max_step_runtime_seconds=cfg.step_timeout_seconds,
            transient_retries=cfg.step_transient_retries,
            transient_backoff_seconds=cfg.step_transient_backoff_seconds,
            transient_backoff_max_seconds=cfg.step_transient_backoff_max_seconds,
            execution_timeout=dt.timedelta(seconds=sensor_timeout(index) + 600),
            retries=cfg.step_sensor_retries,
            retry_delay=dt.timedelta(seconds=cfg.step_sensor_retry_delay_seconds),
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
        """Judge the evaluation model (paired against production) and write gate.json."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        s3 = S3Hook(**aws).get_conn()
        run = run_locations(cfg, ds)
        metrics = registry.read_json(s3, run["metrics"])
        if metrics is None:
            raise FileNotFoundError(f"evaluate wrote no metrics at {run['metrics']}")
        pointer = registry.read_pointer(s3, registry_locations(cfg)["latest"])
        production = {"version": pointer.version, "ds": pointer.ds} if pointer else None
        decision = decide(metrics, production, ds, cfg)
        report = {
            "ds": ds,
            "run_id": run_id,
            "promote": decision.promote,
            "make_live": decision.make_live,
            "reasons": decision.reasons,
            **decision.numbers,
            # Which values trained the candidate: the config's, or which tuning run's.
            "params": ti.xcom_pull(task_ids="resolve_params"),
        }
        registry.write_json(s3, run["gate_report"], report)
        ti.xcom_push(key="decision", value=report)
        return "promote_model" if decision.promote else "hold_model"

    @task(task_id="promote_model", outlets=[MODEL_UPDATES])
    def promote_model(ds=None, run_id=None, ti=None, outlet_events=None) -> dict:
        """Register this training as a new version, move latest.json to it (forward only), then switch
        the serving table's pointer to the version load_serving loaded (recsys_dag/serving_switch.py)."""
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        s3 = S3Hook(**aws).get_conn()
        decision = ti.xcom_pull(task_ids="quality_gate", key="decision")
        cluster_id = ti.xcom_pull(task_ids="create_cluster")
        version = registry.version_id(ds, cluster_id)
        run = run_locations(cfg, ds)
        reg = registry_locations(cfg, version)
        pointer = promotion.pointer_document(
            version=version,
            ds=ds,
            run_id=run_id,
            version_uri=reg["version"],
            metrics=registry.read_json(s3, run["metrics"]),
            training=registry.read_json(s3, run["training_summary"]),
            features=registry.read_json(s3, run["features_manifest"]),
            code_version=cfg.code_version,
            cluster_id=cluster_id,
        )
        registered = registry.register_version(
            s3,
            reg["version"],
            sources={"model": run["serving_model"], "recommendations": run["recommendations"]},
            documents={"metrics.json": pointer["metrics"], "gate.json": decision},
            manifest={"version": version, "ds": ds, "run_id": run_id, "pointer": pointer},
        )
        dynamodb = AwsBaseHook(client_type="dynamodb", **aws).get_conn()
        load_summary = registry.read_json(s3, run["serving_load"])
        if decision["make_live"]:
            serving_switch.check_ready(dynamodb, cfg.serving_table, version, load_summary)
            live = {**registered["pointer"], "promoted_at": dt.datetime.now(dt.timezone.utc).isoformat()}
            moved = registry.move_latest(s3, reg["latest"], live)
        else:
            moved = registry.MoveResult(False, decision["reasons"][-1], None, 0)
        if moved.moved:  # the Asset event means "latest.json changed", nothing else
            outlet_events[MODEL_UPDATES].add(MODEL_ASSET, extra={"version": version})
        # A retry of a promotion that had already moved the pointer: only the serving switch may be left.
        already_live = not moved.moved and (moved.previous or {}).get("version") == version
        served = None
        if moved.moved or already_live:  # the serving table follows latest.json, never leads it
            served = serving_switch.switch_to(
                dynamodb,
                cfg.serving_table,
                version,
                load_summary,
                by=f"{DAG_ID}/{run_id}",
                reason=f"promoted by the quality gate of {ds}",
            )
        return {
            "version": version,
            "registered": registered["registered"],
            "live": moved.moved,
            "already_live": already_live,
            "note": moved.reason,
            "conflicts": moved.conflicts,
            "served_lists": pointer["served_lists"],
            "serving": served,
        }

    @task(task_id="hold_model")
    def hold_model(ti=None) -> dict:
        """The gate said no: keep production as it is (the reasons are in gate.json)."""
        decision = ti.xcom_pull(task_ids="quality_gate", key="decision")
        return {"held": True, "reasons": decision["reasons"]}

    @task(task_id="record_run", trigger_rule="all_done")
    def record_run(ds=None, run_id=None, ti=None) -> dict:
        """Once the cluster has ended (failed runs too): its timeline and cost estimate, and the run's
        numbers, to runs/dt=<ds>/run.json and to CloudWatch; the estimate also into gate.json. Metrics
        that cannot be sent are logged and alerted; they never fail the run."""
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
        from airflow.providers.amazon.aws.hooks.emr import EmrHook
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        s3 = S3Hook(**aws).get_conn()
        run = run_locations(cfg, ds)
        cluster_id = ti.xcom_pull(task_ids="create_cluster")
        cluster = None
        if cluster_id:
            emr = EmrHook(emr_conn_id=None, **aws).conn
            try:  # terminate_cluster only asked; EMR takes minutes to end it (within budget_margin)
                delay = max(1, min(cfg.step_poke_interval_seconds, 30))
                emr.get_waiter("cluster_terminated").wait(
                    ClusterId=cluster_id, WaiterConfig={"Delay": delay, "MaxAttempts": 900 // delay}
                )
            except Exception as exc:  # recorded with no end time: the cost is then unknown, not wrong
                log.warning("cluster %s has not ended: %s", cluster_id, exc)
            cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
        groups = [(cfg.primary_instance_type, 1), (cfg.core_instance_type, cfg.core_instance_count)]
        prices = cost.load_prices(os.path.join(EMR_CONFIGS, "prices.json"))
        estimate = run_record.cluster_cost(cluster, groups, prices, cfg.region_name)
        gate = registry.read_json(s3, run["gate_report"])
        promoted = bool((ti.xcom_pull(task_ids="promote_model") or {}).get("live"))
        metrics = run_record.run_metrics(
            registry.read_json(s3, run["parse_stats"]),
            registry.read_json(s3, run["features_manifest"]),
            registry.read_json(s3, run["training_summary"]),
            gate,
            promoted,
            estimate,
        )
        record = {
            "ds": ds,
            "run_id": run_id,
            "cost": estimate,
            "promoted": promoted,
            "metrics": dict((name, value) for name, value, _ in metrics),
        }
        at = dt.datetime.now(dt.timezone.utc)
        try:
            client = AwsBaseHook(client_type="cloudwatch", **aws).get_conn()
            data = run_record.metric_data(metrics, DAG_ID, at)
            for start in range(0, len(data), 20):  # at most 20 metrics per request, kept portable
                client.put_metric_data(Namespace=run_record.NAMESPACE, MetricData=data[start : start + 20])
            record["metrics_sent"] = {
                "namespace": run_record.NAMESPACE,
                "count": len(data),
                "at": at.isoformat(),
            }
        except Exception as exc:
            log.exception("metrics not sent to CloudWatch")
            record["metrics_sent"] = {"error": f"{type(exc).__name__}: {exc}"}
            try:
                publish(
                    cfg.aws_conn_id, cfg.region_name, cfg.alert_topic_arn,
                    f"[recsys] METRICS NOT SENT {DAG_ID} {ds}",
                    f"run {run_id}: CloudWatch put_metric_data failed ({type(exc).__name__}: {exc}); "
                    f"the run's numbers are in {run['run_record']}. The stale-model alarm may fire.",
                )  # fmt: skip
            except Exception:
                log.exception("the metrics alert could not be sent either")
        registry.write_json(s3, run["run_record"], record)
        if gate is not None:  # the gate's report says what its decision cost, once that is known
            registry.write_json(s3, run["gate_report"], {**gate, "cost": estimate})
        return record

    @task(task_id="announce", trigger_rule="none_failed_min_one_success")
    def announce(ds=None, ti=None) -> str:
        """One-line run summary to the alert topic."""
        decision = ti.xcom_pull(task_ids="quality_gate", key="decision")
        promoted = ti.xcom_pull(task_ids="promote_model")
        summary = promotion.summary_line(DAG_ID, ds, decision, promoted)
        estimate = (ti.xcom_pull(task_ids="record_run") or {}).get("cost") or {}
        summary += "; " + run_record.cost_line(estimate)
        publish(cfg.aws_conn_id, cfg.region_name, cfg.alert_topic_arn, f"[recsys] OK {DAG_ID} {ds}", summary)
        return summary

    gate = quality_gate()
    chain(wait_for_data, params, create_cluster, add_steps, *step_sensors, terminate_cluster)
    decided = [promote_model(), hold_model()]
    step_sensors[-1] >> gate >> decided
    # The record waits for the cluster's end and the promotion's outcome, on every path; the summary
    # (success only: none_failed_min_one_success over the decision) carries its cost line.
    recorded = record_run()
    summary = announce()
    [terminate_cluster, *decided] >> recorded >> summary
    decided >> summary
