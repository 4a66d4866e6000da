"""The pipeline's one configuration: every environment-specific value, with documented defaults.

Override per deployment, without editing code, with a JSON object in the environment variable
``AIRFLOW_VAR_RECSYS_TRAINING_CONFIG`` (Airflow also shows it as the Variable ``recsys_training_config``).
Only the keys you set change; unknown keys and wrong types are errors, so a typo cannot pass silently.
It is read when the DAG file is parsed: environment only, no database or network access.

Example::

    AIRFLOW_VAR_RECSYS_TRAINING_CONFIG='{"data_bucket": "acme-lake", "artifact_bucket": "acme-ml",
        "alert_topic_arn": "arn:aws:sns:eu-west-1:123456789012:recsys-alerts", "core_instance_count": 4}'
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

# The jobs' option defaults, read by the jobs too: standard library only (no pyspark at parse time),
# deployed with spark_jobs/ beside dags/ (README.md, "Deploying").
from spark_jobs.common import job_defaults

CONFIG_ENV_VAR = "AIRFLOW_VAR_RECSYS_TRAINING_CONFIG"


TRAINING_DAG_ID = "recsys_training"  # the nightly DAG; also the value of its metrics' Pipeline dimension


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """All settings of the recsys_training DAG. Durations in seconds unless named otherwise."""

    # --- connections and ownership
    aws_conn_id: Optional[str] = "aws_default"  # AWS connection for EMR, S3 and SNS
    region_name: Optional[str] = None  # None = the connection's region
    owner: str = "ml-platform"  # Airflow owner, and the EMR `owner` tag
    # --- data lake (raw input, parsed events, rejects)
    data_bucket: str = "recsys-data-lake"
    raw_prefix: str = "raw/events"  # raw JSON lines under <raw_prefix>/dt=YYYY-MM-DD/
    raw_ready_marker: str = "_SUCCESS"  # object that marks a complete day; "" = any object in the folder
    parsed_prefix: str = "parsed/events"
    rejects_prefix: str = "rejects/events"
    # --- artefacts (code, per-run outputs, model registry, EMR logs)
    artifact_bucket: str = "recsys-artifacts"
    code_prefix: str = "code"  # code/<code_version>/spark_jobs.zip, jobs/*.py, bootstrap/*
    code_version: str = "0.1.0"  # which deployed code the steps run (make deploy uploads it)
    runs_prefix: str = "runs"  # runs/dt=YYYY-MM-DD/{features,model,evaluation}/
    registry_prefix: str = "registry"  # registry/versions/<version>/ and registry/latest.json
    emr_log_prefix: str = "emr-logs"
    # --- EMR cluster
    release_label: str = "emr-7.5.0"  # Spark 3.5, Python 3.9
    primary_instance_type: str = "m5.xlarge"
    core_instance_type: str = "m5.2xlarge"
    core_instance_count: int = 2
    ec2_subnet_id: str = ""  # "" = EMR's default VPC subnet
    # The cluster's instance profile (role and instance profile of the same name): create it from
    # emr_configs/iam/emr-instance-profile-policy.json (emr_configs/README.md). Not EMR_EC2_DefaultRole,
    # whose managed policy grants s3:* on every bucket of the account.
    job_flow_role: str = "recsys-emr-instance-profile"
    service_role: str = "EMR_DefaultRole"
    # An EMR security configuration's name (encryption at rest and in transit, set up by the deployment
    # with `aws emr create-security-configuration`); "" = none is named in RunJobFlow.
    security_configuration: str = ""
    idle_timeout_seconds: int = 3600  # AutoTerminationPolicy: EMR ends an idle, forgotten cluster
    step_concurrency: int = 1
    # train_cf's driver, where the implicit engine collects the matrix and fits (emr_configs/README.md):
    # implicit's threads = these cores; the collected matrix (~16 bytes per non-zero via Arrow) must fit
    # under spark.driver.maxResultSize, and that under the driver's memory.
    train_driver_cores: int = 4
    train_driver_memory_gb: int = 12
    train_max_result_size_gb: int = 4
    # --- jobs: the defaults are the jobs' own (spark_jobs/common/job_defaults.py), passed on explicitly
    max_reject_ratio: float = 0.05  # parse_logs fails a day above it (the job alone never fails on rejects)
    lookback_days: int = job_defaults.LOOKBACK_DAYS
    # build_features fails, naming the days, when fewer than this share of the window's days is published
    # (missing days and days over max_reject_ratio both count against it).
    min_window_share: float = job_defaults.MIN_WINDOW_SHARE
    half_life_days: float = job_defaults.HALF_LIFE_DAYS
    min_user_items: int = job_defaults.MIN_USER_ITEMS
    min_item_users: int = job_defaults.MIN_ITEM_USERS
    holdout_fraction: float = job_defaults.HOLDOUT_FRACTION
    engine: str = job_defaults.ENGINE  # implicit | spark-als
    algorithm: str = job_defaults.ALGORITHM  # als | bpr (implicit only)
    factors: int = job_defaults.FACTORS
    iterations: int = job_defaults.ITERATIONS
    # None = not passed to the job: the engine's own default applies (train_cf --help), so choosing
    # spark-als or bpr never trains with implicit ALS's regularization.
    regularization: Optional[float] = None
    learning_rate: Optional[float] = None  # BPR only; None = train_cf's default
    event_weights: Optional[str] = None  # "view=1,click=2,..." (build_features --weights); None = its default
    alpha: float = job_defaults.ALPHA
    k: int = job_defaults.EVALUATION_K  # evaluation cut-off: metrics and the gate are @k
    serve_k: int = job_defaults.SERVE_K  # length of each served list
    seed: int = job_defaults.SEED
    # --- serving (DynamoDB; serving/table.py, docs/serving.md): load_serving writes every run's lists
    # into the run's version; promote_model switches the table's pointer to it.
    serving_table: str = "recsys-serving"
    # Every loaded item expires this many days after its load (DynamoDB TTL), the live version's too:
    # at least 7 days more than stale_model_hours, so the stale-model alarm fires a week or more before
    # an unrefreshed live version would lose its lists.
    serving_ttl_days: int = 30
    serving_load_threads: int = job_defaults.SERVING_LOAD_THREADS  # BatchWriteItem requests in flight (1..16)
    # --- quality gate (evaluation model on the day's holdout; production's configuration refitted on the
    # same training split and scored on the same users: see docs/contracts.md)
    min_ndcg: float = 0.05  # absolute floor of NDCG@k
    min_margin_over_popularity: float = 0.01  # model NDCG - popularity NDCG must reach this
    max_regression_vs_production: float = 0.02  # paired mean NDCG drop vs production may not exceed this
    min_users_evaluated: int = 100  # fewer users with held-out items: too noisy to judge
    min_coverage: float = 0.02  # share of the catalogue in the evaluated users' top-k lists
    # --- alerting
    alert_topic_arn: str = ""  # SNS topic for failures and run summaries; "" = log only
    # The stale-model alarm (recsys_dag/stale_model_alarm.py, created by `make alarms`): CloudWatch goes to
    # ALARM and notifies alert_topic_arn when no run promoted a model for this many hours (missing
    # metrics count as "not promoted", so a dead scheduler or a paused DAG fires it too). Whole hours,
    # 1..168: CloudWatch evaluates at most 7 days. 72 h = three nightly runs in a row without a new model.
    stale_model_hours: int = 72
    # --- scheduling and timeouts
    # cron, daily at 02:00 UTC; null = manual triggers only (the local UI, whose data exists for one date)
    schedule: Optional[str] = "0 2 * * *"
    start_date: str = "2024-01-01"  # first logical date (YYYY-MM-DD, UTC); earlier dates run no task
    deferrable: bool = False  # deferrable sensors (needs a triggerer)
    # The time budget (checked at parse time, see time_budget()): with the defaults below a run needs at
    # most 14 h 0 min, exactly its 14 h dagrun_timeout. A 02:00 UTC run therefore ends by 16:00 UTC whatever
    # happens, leaving on call the rest of the day to fix and rerun the date before the next 02:00 run
    # (max_active_runs=1: a run still going at 02:00 would hold the next day back).
    # Raw data lands shortly after midnight; still missing at 06:00 it is an upstream incident to alert on.
    data_wait_timeout_seconds: int = 4 * 3600
    data_poke_interval_seconds: int = 300
    # RunJobFlow returns at once; EMR's provisioning and bootstrap (pip install) typically take 10-15 min,
    # while watch_parse_logs waits on its PENDING step: that sensor gets this on top of its step timeout.
    cluster_start_timeout_seconds: int = 30 * 60
    step_poke_interval_seconds: int = 60
    # Each step's own running time (from EMR's StartDateTime, so a retried sensor does not restart it).
    # An assumption to check against real step durations: a nightly step takes minutes to tens of
    # minutes, so 90 min means "hung", not "slow". Raise it (and dagrun_timeout) as the data grows.
    step_timeout_seconds: int = 90 * 60
    task_timeout_seconds: int = 30 * 60  # any non-sensor task
    retries: int = 2  # every task but the step sensors
    retry_delay_seconds: int = 300
    # A watch_ sensor's own Airflow retries: for a worker restart, or transient DescribeStep errors that
    # outlast the in-poke backoff below. A FAILED/CANCELLED/INTERRUPTED step is never retried. (After a
    # worker dies, Airflow notices within its heartbeat timeout, 5 min by default: the margin holds it.)
    step_sensor_retries: int = 2
    step_sensor_retry_delay_seconds: int = 60
    # Within one poke, a throttled/5xx/connection-failed DescribeStep (after botocore's own quick retries)
    # is retried this many times, waiting backoff * 2**n seconds (capped at the max): 5 + 10 + 20 + 40 + 80
    # = 155 s of API trouble ridden out before the try fails and the Airflow retry takes over.
    step_transient_retries: int = 5
    step_transient_backoff_seconds: float = 5.0
    step_transient_backoff_max_seconds: float = 120.0
    # For what the budget does not count one by one: create_cluster, add_steps, the gate, promotion
    # (S3 copies), announce and terminate_cluster (seconds to minutes each), each sensor's poke latency.
    budget_margin_seconds: int = 30 * 60
    dagrun_timeout_seconds: int = 14 * 3600
    # TEST ONLY: true skips the time-budget check, so a test DAG configuration can set a tiny
    # dagrun_timeout (e.g. to watch a run time out). Never set it in a deployment.
    test_only_skip_time_budget_check: bool = False
    # --- retention (S3 lifecycle rules, applied by `make retention`; recsys_dag/retention.py)
    retention_runs_days: int = 90  # runs/dt=*/: features, models, metrics, gate reports of each run
    retention_rejects_days: int = 30  # rejected raw lines can hold personal data: kept for a month
    retention_emr_logs_days: int = 30  # EMR's step, container and bootstrap logs
    retention_tuning_days: int = 180  # tuning/dt=*/: the sweeps' features and trials (best.json stays)
    # --- tuning: the recsys_tuning DAG (same configuration object; see dags/recsys_tuning.py)
    # The sweep: a product {"key": [values, ...]} or an explicit list [{"key": value}, ...] over
    # recsys_dag.tuning_grid.TUNABLE (model parameters and half_life_days); keys a configuration does not
    # set take the values above. The default is 8 configurations around the defaults.
    tuning_grid: Any = dataclasses.field(
        default_factory=lambda: {"factors": [32, 64], "regularization": [10.0, 30.0], "alpha": [1.0, 4.0]}
    )
    tuning_max_configs: int = 32  # more is an error: each configuration is one EMR step
    tuning_parallelism: int = 2  # configurations trained at once: the tuning cluster's StepConcurrencyLevel
    # The validation split, cut from the training split (each user's newest items before the holdout):
    # configurations are compared on it, never on the holdout the nightly gate uses.
    tuning_validation_fraction: float = 0.2
    tuning_prefix: str = "tuning"  # tuning/<run>/ (leaderboard, trials) and tuning/best.json
    tuning_schedule: Optional[str] = None  # cron (e.g. weekly "0 6 * * 0"); null = manual triggers only
    # The tuning reads parsed days the nightly published: a missing day is an error, not a wait.
    tuning_data_wait_timeout_seconds: int = 3600
    tuning_dagrun_timeout_seconds: int = 12 * 3600
    # true: the nightly trains with tuning/best.json's values (recorded in params.json and gate.json);
    # without a best.json yet it trains with the values above and says so.
    params_from_tuning: bool = False

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def start_datetime(self) -> dt.datetime:
        """``start_date`` as midnight UTC."""
        return dt.datetime.combine(dt.date.fromisoformat(self.start_date), dt.time(), tzinfo=dt.timezone.utc)


_FIELDS = {field.name: field for field in dataclasses.fields(PipelineConfig)}


# Settings that may be null, and the type they have otherwise.
_NULLABLE = {
    "aws_conn_id": str,
    "region_name": str,
    "schedule": str,
    "regularization": float,
    "learning_rate": float,
    "event_weights": str,
    "tuning_schedule": str,
}


def _check_type(name: str, value: Any) -> Any:
    if name == "tuning_grid":  # expanded and checked by recsys_dag.tuning_grid where the sweep is planned
        if isinstance(value, (dict, list)):
            return value
        raise ValueError(f"tuning_grid must be an object of lists or a list of objects, got {value!r}")
    default = _FIELDS[name].default
    if name in _NULLABLE:
        kind = _NULLABLE[name]
        if value is None or (isinstance(value, str) and kind is str):
            return value
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ValueError(f"{name} must be a {kind.__name__} or null, got {value!r}")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str) and isinstance(value, str):
        return value
    raise ValueError(f"{name} must be of type {type(default).__name__}, got {value!r}")


def config_from_mapping(overrides: Mapping[str, Any]) -> PipelineConfig:
    """Defaults with ``overrides`` applied; raises ValueError naming any unknown key or wrong type."""
    unknown = sorted(set(overrides) - set(_FIELDS))
    if unknown:
        raise ValueError(f"unknown recsys config keys: {unknown}; known keys: {sorted(_FIELDS)}")
    checked = {name: _check_type(name, value) for name, value in overrides.items()}
    config = PipelineConfig(**checked)
    if config.engine not in job_defaults.ENGINES:
        raise ValueError(f"engine must be one of {', '.join(job_defaults.ENGINES)}, got {config.engine!r}")
    if config.algorithm not in job_defaults.ALGORITHMS_BY_ENGINE[config.engine]:
        raise ValueError(f"algorithm {config.algorithm!r} is not available for engine {config.engine!r}")
    for name in ("regularization", "learning_rate"):
        if getattr(config, name) is not None and getattr(config, name) < 0:
            raise ValueError(f"{name} must be >= 0 or null")
    if config.train_driver_cores < 1:
        raise ValueError("train_driver_cores must be >= 1")
    if not 1 <= config.train_max_result_size_gb < config.train_driver_memory_gb:
        raise ValueError("train_max_result_size_gb must be >= 1 and below train_driver_memory_gb")
    if config.k < 1 or config.serve_k < 1:
        raise ValueError("k and serve_k must be >= 1")
    if not 0 <= config.min_coverage <= 1:
        raise ValueError("min_coverage must be in [0, 1]")
    if not 0 <= config.max_reject_ratio <= 1:
        raise ValueError("max_reject_ratio must be in [0, 1]")
    if not 0 <= config.min_window_share <= 1:
        raise ValueError("min_window_share must be in [0, 1]")
    if config.tuning_parallelism < 1 or config.tuning_max_configs < 1:
        raise ValueError("tuning_parallelism and tuning_max_configs must be >= 1")
    if not 0 < config.tuning_validation_fraction < 1:
        raise ValueError("tuning_validation_fraction must be in (0, 1)")
    try:
        config.start_datetime()
    except ValueError:
        raise ValueError(f"start_date must be YYYY-MM-DD, got {config.start_date!r}") from None
    _check_durations(config)
    cluster_architecture(config)
    if not config.test_only_skip_time_budget_check:
        check_time_budget(config)
    return config


# Graviton (arm64) instance families: a generation digit followed by "g" (m6g, r7gd, c7gn, t4g, x2gd).
_GRAVITON = re.compile(r"^[a-z]+\d+g[a-z]*$")


def architecture(instance_type: str) -> str:
    """``aarch64`` for a Graviton instance type, else ``x86_64`` (what the bootstrap's wheels are for)."""
    return "aarch64" if _GRAVITON.match(instance_type.split(".", 1)[0]) else "x86_64"


def cluster_architecture(config: PipelineConfig) -> str:
    """The one CPU architecture of the cluster's instance types; ValueError if they mix."""
    kinds = {config.primary_instance_type: None, config.core_instance_type: None}
    found = {kind: architecture(kind) for kind in kinds}
    if len(set(found.values())) > 1:
        raise ValueError(
            f"the instance types mix CPU architectures ({found}): the bootstrap installs one set of wheels, "
            "so choose all-Graviton or all-x86 types"
        )
    return next(iter(found.values()))


def _check_durations(config: PipelineConfig) -> None:
    for name in (
        "data_wait_timeout_seconds",
        "data_poke_interval_seconds",
        "cluster_start_timeout_seconds",
        "step_poke_interval_seconds",
        "step_timeout_seconds",
        "task_timeout_seconds",
        "dagrun_timeout_seconds",
        "tuning_data_wait_timeout_seconds",
        "tuning_dagrun_timeout_seconds",
        "retention_runs_days",
        "retention_rejects_days",
        "retention_emr_logs_days",
        "retention_tuning_days",
    ):
        if getattr(config, name) <= 0:
            raise ValueError(f"{name} must be > 0")
    for name in (
        "retries",
        "retry_delay_seconds",
        "step_sensor_retries",
        "step_sensor_retry_delay_seconds",
        "step_transient_retries",
        "step_transient_backoff_seconds",
        "budget_margin_seconds",
    ):
        if getattr(config, name) < 0:
            raise ValueError(f"{name} must be >= 0")
    if config.step_transient_backoff_max_seconds < config.step_transient_backoff_seconds:
        raise ValueError("step_transient_backoff_max_seconds must be >= step_transient_backoff_seconds")
    if not 1 <= config.stale_model_hours <= 168:
        raise ValueError("stale_model_hours must be 1..168 (CloudWatch evaluates at most 7 days)")
    if config.serving_ttl_days * 24 < config.stale_model_hours + 7 * 24:
        raise ValueError(
            f"serving_ttl_days {config.serving_ttl_days} must be at least 7 days more than stale_model_hours "
            f"{config.stale_model_hours} h: the live version's lists expire serving_ttl_days after its load, "
            "and the stale-model alarm must leave on call a week to react before they do"
        )
    if not 1 <= config.serving_load_threads <= 16:
        raise ValueError("serving_load_threads must be 1..16")
    if not config.serving_table:
        raise ValueError("serving_table must be a table name")


# The DAG's shape as the budget sees it (tests/dags/test_dag_integrity.py checks these against the DAG):
# five step sensors in a row, and the tasks on the run's critical path that retry with `retries` x
# `retry_delay_seconds`: wait_for_data, resolve_params, create_cluster, add_steps, quality_gate,
# promote/hold, record_run, announce. (record_run's wait for the cluster's end, at most 15 min, is
# within budget_margin_seconds.)
BUDGET_STEPS = 5
BUDGET_RETRIED_TASKS = 8


def time_budget(config: PipelineConfig) -> List[Tuple[str, int]]:
    """The longest a run may take before a timeout of its own fails it: (term, seconds) pairs.

    The sensor timeouts are the bounds the DAG sets; each retry costs its delay (what the failed try
    itself used is within its timeout or the margin).
    """
    c, steps, tasks = config, BUDGET_STEPS, BUDGET_RETRIED_TASKS
    return [
        (f"data_wait_timeout_seconds {c.data_wait_timeout_seconds}", c.data_wait_timeout_seconds),
        (f"cluster_start_timeout_seconds {c.cluster_start_timeout_seconds}", c.cluster_start_timeout_seconds),
        (f"{steps} steps x step_timeout_seconds {c.step_timeout_seconds}", steps * c.step_timeout_seconds),
        (
            f"{tasks} tasks x retries {c.retries} x retry_delay_seconds {c.retry_delay_seconds}",
            tasks * c.retries * c.retry_delay_seconds,
        ),
        (
            f"{steps} sensors x step_sensor_retries {c.step_sensor_retries}"
            f" x step_sensor_retry_delay_seconds {c.step_sensor_retry_delay_seconds}",
            steps * c.step_sensor_retries * c.step_sensor_retry_delay_seconds,
        ),
        (f"budget_margin_seconds {c.budget_margin_seconds}", c.budget_margin_seconds),
    ]


def check_time_budget(config: PipelineConfig) -> int:
    """The budget's total in seconds; ValueError naming every term if it exceeds the run timeout."""
    terms = time_budget(config)
    total = sum(seconds for _, seconds in terms)
    if total > config.dagrun_timeout_seconds:
        raise ValueError(
            f"time budget {total} s exceeds dagrun_timeout_seconds {config.dagrun_timeout_seconds}: "
            + " + ".join(f"{label} (= {seconds})" if " x " in label else label for label, seconds in terms)
            + f" = {total} s. Lower a timeout or a retry count, or raise dagrun_timeout_seconds (a daily"
            " run must still end well within 24 h)."
        )
    return total


def load_config(environ: Optional[Mapping[str, str]] = None) -> PipelineConfig:
    """The configuration in force: defaults, overridden by the JSON in ``CONFIG_ENV_VAR`` if set."""
    environ = os.environ if environ is None else environ
    raw = environ.get(CONFIG_ENV_VAR, "").strip()
    if not raw:
        return PipelineConfig()
    try:
        overrides = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{CONFIG_ENV_VAR} is not valid JSON: {exc}") from None
    if not isinstance(overrides, dict):
        raise ValueError(f"{CONFIG_ENV_VAR} must be a JSON object")
    return config_from_mapping(overrides)
