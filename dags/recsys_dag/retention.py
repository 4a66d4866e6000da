"""Retention as code: the S3 lifecycle rules for what the pipeline writes, from the config.

- ``rejects/`` (data bucket): ``retention_rejects_days`` (30); rejected raw lines can hold personal data.
- ``runs/`` (artefacts): ``retention_runs_days`` (90); per-run features, models and reports (a promoted
  model lives on in ``registry/``).
- ``emr-logs/`` (artefacts): ``retention_emr_logs_days`` (30); step, container and bootstrap logs.
- ``tuning/dt=`` (artefacts): ``retention_tuning_days`` (180); the sweeps' folders (``tuning/best.json``
  is outside the rule).

Every rule also aborts multipart uploads left incomplete for a day (a killed Spark write leaves parts
that are billed but invisible). The registry, the raw and parsed events and the deployed code have no
rule: they are the product or its input. Rules carry the ``recsys-`` id prefix; applying them replaces
only those, so a bucket's other rules survive (PutBucketLifecycleConfiguration replaces the whole set).
"""

from __future__ import annotations

from typing import Any, Dict, List

from recsys_dag.config import PipelineConfig

RULE_PREFIX = "recsys-"
ABORT_INCOMPLETE_UPLOADS_DAYS = 1


def _rule(name: str, key_prefix: str, days: int) -> Dict[str, Any]:
    return {
        "ID": RULE_PREFIX + name,
        "Filter": {"Prefix": key_prefix},
        "Status": "Enabled",
        "Expiration": {"Days": days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_INCOMPLETE_UPLOADS_DAYS},
    }


def lifecycle_rules(cfg: PipelineConfig) -> Dict[str, List[Dict[str, Any]]]:
    """Bucket -> the pipeline's lifecycle rules for it (the list above)."""
    out: Dict[str, List[Dict[str, Any]]] = {cfg.data_bucket: [], cfg.artifact_bucket: []}
    folder = lambda prefix: prefix.strip("/") + "/"  # noqa: E731
    out[cfg.data_bucket].append(_rule("rejects", folder(cfg.rejects_prefix), cfg.retention_rejects_days))
    out[cfg.artifact_bucket] += [
        _rule("runs", folder(cfg.runs_prefix), cfg.retention_runs_days),
        _rule("emr-logs", folder(cfg.emr_log_prefix), cfg.retention_emr_logs_days),
        _rule("tuning-runs", folder(cfg.tuning_prefix) + "dt=", cfg.retention_tuning_days),
    ]
    return out


def merged(existing: List[Dict[str, Any]], ours: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """A bucket's rules after applying ``ours``: the others kept as they are, ours replaced."""
    return [rule for rule in existing if not str(rule.get("ID", "")).startswith(RULE_PREFIX)] + ours
