"""One tuning sweep's plan: which features builds and configurations run, where each writes, and the
sweep's time budget. Pure functions of the config (no Airflow or AWS imports)."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, Dict, List, Sequence, Tuple

from recsys_dag.config import PipelineConfig
from recsys_dag.locations import s3_uri, split_s3_uri, tuning_locations
from recsys_dag.tuning_grid import Trial, expand_grid, feature_sets

# Written into every leaderboard and best.json: the rule is fixed before any result is seen.
SELECTION_RULE = (
    "best mean validation NDCG@{k} over the evaluated users; configurations within one standard error of "
    "the best count as tied, and among them the one with the lowest fit seconds wins (then the higher "
    "NDCG, then the earlier configuration)"
)


def sweep_trials(cfg: PipelineConfig) -> List[Trial]:
    """The configured grid, expanded over the nightly's values (ValueError for a bad or oversized grid)."""
    return expand_grid(cfg.tuning_grid, cfg.as_dict(), cfg.tuning_max_configs)


def run_key(date: str, run_id: str) -> str:
    """The sweep's folder name under ``tuning/``: its data date and its DAG run id, S3-key safe."""
    return f"dt={date}/" + re.sub(r"[^A-Za-z0-9._=-]+", "-", run_id).strip("-")


def sweep_date(requested: Any, ds: Any) -> str:
    """The last day of the features window: the run's ``date`` param if set, else its logical date."""
    value = requested or ds
    if not value:
        raise ValueError(
            "recsys_tuning needs a date: trigger it with a logical date or the param date=YYYY-MM-DD "
            "(the last day of the window the features are built from)"
        )
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ValueError(f"recsys_tuning: date must be YYYY-MM-DD, got {value!r}") from None


def sweep_plan(cfg: PipelineConfig, trials: Sequence[Trial], date: str, key: str) -> Dict[str, Any]:
    """The plan document (``tuning/<run>/plan.json``): every features build and configuration, with the
    S3 locations each step reads and writes. tuning_steps.json renders the EMR steps from it."""
    where = tuning_locations(cfg, key)
    builds = [
        {
            "key": name,
            "step": f"features_{name}",
            "values": values,
            "uri": s3_uri(*split_s3_uri(where["features"]), name),
            "outcome": s3_uri(*split_s3_uri(where["outcomes"]), f"features_{name}.json"),
        }
        for name, values in feature_sets(trials).items()
    ]
    uri_of = {build["key"]: build["uri"] for build in builds}
    configurations = [
        {
            **trial.as_dict(),
            "features_uri": uri_of[trial.features],
            "result": s3_uri(*split_s3_uri(where["trials"]), f"{trial.name}.json"),
            "outcome": s3_uri(*split_s3_uri(where["outcomes"]), f"{trial.name}.json"),
        }
        for trial in trials
    ]
    return {
        "date": date,
        "run": key,
        "locations": where,
        "events": s3_uri(cfg.data_bucket, cfg.parsed_prefix),
        "published_marker_key": f"{cfg.parsed_prefix.strip('/')}/dt={date}/_PUBLISHED.json",
        "validation_fraction": cfg.tuning_validation_fraction,
        "parallelism": cfg.tuning_parallelism,
        "k": cfg.k,
        "rule": SELECTION_RULE.format(k=cfg.k),
        "feature_builds": builds,
        "trials": configurations,
    }


def waves(count: int, parallelism: int) -> int:
    """How many rounds of ``parallelism`` concurrent steps ``count`` steps take at most."""
    return math.ceil(count / max(1, parallelism))


# The sweep's tasks that retry with `retries` x `retry_delay_seconds` on its critical path: plan_sweep,
# create_cluster, add_feature_steps, add_trial_step, select_winner, publish_best.
TUNING_RETRIED_TASKS = 6


def tuning_time_budget(cfg: PipelineConfig, trials: int, builds: int) -> List[Tuple[str, int]]:
    """The longest a sweep may take before a timeout of its own fails it: (term, seconds) pairs. Steps
    run ``tuning_parallelism`` at once, so each stage costs its number of waves of step timeouts."""
    c, p = cfg, cfg.tuning_parallelism
    sensor_retries = 2 * c.step_sensor_retries * c.step_sensor_retry_delay_seconds  # features, trials
    return [
        (
            f"tuning_data_wait_timeout_seconds {c.tuning_data_wait_timeout_seconds}",
            c.tuning_data_wait_timeout_seconds,
        ),
        (f"cluster_start_timeout_seconds {c.cluster_start_timeout_seconds}", c.cluster_start_timeout_seconds),
        (
            f"{waves(builds, p)} waves of features builds x step_timeout_seconds {c.step_timeout_seconds}",
            waves(builds, p) * c.step_timeout_seconds,
        ),
        (
            f"{waves(trials, p)} waves of {trials} configurations at {p} at once x step_timeout_seconds "
            f"{c.step_timeout_seconds}",
            waves(trials, p) * c.step_timeout_seconds,
        ),
        (
            f"{TUNING_RETRIED_TASKS} tasks x retries {c.retries} x retry_delay_seconds "
            f"{c.retry_delay_seconds}",
            TUNING_RETRIED_TASKS * c.retries * c.retry_delay_seconds,
        ),
        (
            f"2 sensor stages x step_sensor_retries {c.step_sensor_retries} x "
            f"step_sensor_retry_delay_seconds {c.step_sensor_retry_delay_seconds}",
            sensor_retries,
        ),
        (f"budget_margin_seconds {c.budget_margin_seconds}", c.budget_margin_seconds),
    ]


def check_tuning_time_budget(cfg: PipelineConfig, trials: int, builds: int) -> int:
    """The sweep's budget in seconds; ValueError naming every term past ``tuning_dagrun_timeout_seconds``."""
    if cfg.test_only_skip_time_budget_check:
        return 0
    terms = tuning_time_budget(cfg, trials, builds)
    total = sum(seconds for _, seconds in terms)
    if total > cfg.tuning_dagrun_timeout_seconds:
        raise ValueError(
            f"tuning time budget {total} s exceeds tuning_dagrun_timeout_seconds "
            f"{cfg.tuning_dagrun_timeout_seconds}: "
            + " + ".join(f"{label} (= {seconds})" for label, seconds in terms)
            + ". Shrink the grid, raise tuning_parallelism, or raise tuning_dagrun_timeout_seconds."
        )
    return total
