"""Where everything lives on S3 for one logical date (pure functions of the config)."""

from __future__ import annotations

from typing import Dict

from recsys_dag.config import PipelineConfig, cluster_architecture

# The nightly's steps, in order; load_serving writes the run's lists into the serving table's version.
JOBS = ("parse_logs", "build_features", "train_cf", "evaluate", "load_serving")
TUNING_JOBS = ("tune_trial",)  # jobs only recsys_tuning runs (it also runs build_features)


def s3_uri(bucket: str, *parts: str) -> str:
    """``s3://bucket/part/part`` with single slashes."""
    path = "/".join(part.strip("/") for part in parts if part.strip("/"))
    return f"s3://{bucket}/{path}" if path else f"s3://{bucket}"


def code_locations(cfg: PipelineConfig) -> Dict[str, str]:
    """The deployed code a cluster runs: the package zip, one entry point per job, bootstrap files."""
    base = (cfg.artifact_bucket, cfg.code_prefix, cfg.code_version)
    out = {
        "code_root": s3_uri(*base),
        "package_zip": s3_uri(*base, "spark_jobs.zip"),
        "bootstrap_script": s3_uri(*base, "bootstrap", "install_python_deps.sh"),
        "bootstrap_requirements": s3_uri(*base, "bootstrap", "requirements-emr.txt"),
        # The pinned wheels for the cluster's architecture, uploaded by make deploy (no index at start).
        "bootstrap_wheels": s3_uri(*base, "wheels", cluster_architecture(cfg)) + "/",
    }
    jobs = JOBS + TUNING_JOBS
    out.update({f"entry_{job}": s3_uri(*base, "jobs", f"{job}.py") for job in jobs})
    return out


def run_locations(cfg: PipelineConfig, ds: str) -> Dict[str, str]:
    """Inputs and outputs of the run for logical date ``ds`` (YYYY-MM-DD). A rerun gets the same keys."""
    run = (cfg.artifact_bucket, cfg.runs_prefix, f"dt={ds}")
    return {
        "raw": s3_uri(cfg.data_bucket, cfg.raw_prefix, f"dt={ds}"),
        "raw_key_prefix": f"{cfg.raw_prefix.strip('/')}/dt={ds}/",
        "parsed_root": s3_uri(cfg.data_bucket, cfg.parsed_prefix),
        "parsed": s3_uri(cfg.data_bucket, cfg.parsed_prefix, f"dt={ds}"),
        "rejects": s3_uri(cfg.data_bucket, cfg.rejects_prefix, f"dt={ds}"),
        "run_root": s3_uri(*run),
        "features": s3_uri(*run, "features"),
        "features_manifest": s3_uri(*run, "features", "manifest.json"),
        "model": s3_uri(*run, "model"),  # train_cf's output root
        "serving_model": s3_uri(*run, "model", "model"),  # the serving fit: what is promoted
        "training_summary": s3_uri(*run, "model", "model", "params.json"),
        "recommendations": s3_uri(*run, "model", "recommendations"),  # the served lists
        "evaluation_recommendations": s3_uri(*run, "model", "evaluation", "recommendations"),
        "production": s3_uri(*run, "model", "production"),  # production's refit on this split
        "evaluation": s3_uri(*run, "evaluation"),
        "metrics": s3_uri(*run, "evaluation", "metrics.json"),
        "gate_report": s3_uri(*run, "gate.json"),
        "outcomes": s3_uri(*run, "outcomes"),  # <job>.json: each job's own outcome record
        "parse_stats": s3_uri(*run, "parse_logs_stats.json"),  # lines read/accepted/rejected, by reason
        "run_record": s3_uri(*run, "run.json"),  # cluster timeline, cost estimate, the run's metrics
        "serving_load": s3_uri(*run, "serving_load.json"),  # load_serving's counts (version, lists written)
        "emr_logs": s3_uri(cfg.artifact_bucket, cfg.emr_log_prefix) + "/",
    }


def registry_locations(cfg: PipelineConfig, version: str = "") -> Dict[str, str]:
    """The model registry: one folder per version and the ``latest.json`` pointer written last."""
    out = {
        "registry_root": s3_uri(cfg.artifact_bucket, cfg.registry_prefix),
        "latest": s3_uri(cfg.artifact_bucket, cfg.registry_prefix, "latest.json"),
    }
    if version:
        out["version"] = s3_uri(cfg.artifact_bucket, cfg.registry_prefix, "versions", version)
    return out


def tuning_locations(cfg: PipelineConfig, run_key: str = "") -> Dict[str, str]:
    """The tuning sweeps: ``tuning/best.json`` (the current winner), and with ``run_key`` one sweep's
    folder: its plan, features builds, per-configuration results and outcomes, and the leaderboard."""
    root = (cfg.artifact_bucket, cfg.tuning_prefix)
    out = {"tuning_root": s3_uri(*root), "best": s3_uri(*root, "best.json")}
    if run_key:
        run = (*root, run_key)
        out.update(
            {
                "run": s3_uri(*run),
                "plan": s3_uri(*run, "plan.json"),
                "features": s3_uri(*run, "features"),  # features/<features key>/
                "trials": s3_uri(*run, "trials"),  # trials/<configuration>.json
                "outcomes": s3_uri(*run, "outcomes"),
                "leaderboard": s3_uri(*run, "leaderboard.json"),
                "leaderboard_md": s3_uri(*run, "leaderboard.md"),
            }
        )
    return out


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key
