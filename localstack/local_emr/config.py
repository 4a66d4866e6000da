"""What the step runner needs to know about its surroundings, read once from the environment.

``local_aws.emr_server.environment`` sets these variables when it starts the endpoint; running
``python -m local_emr.server`` by hand falls back to the project's defaults. The endpoint's own
environment passes through, so ``LOCAL_EMR_CONTAINER_LOG_DELAY_S=5 make local-up`` changes how long
container logs take to appear (the default is EMR-like: 300 s).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONTAINER_LOG_DELAY_S = 300.0


@dataclass(frozen=True)
class RunnerConfig:
    """Endpoints, credentials and paths used to run steps (absolute paths)."""

    localstack_url: str
    dynamodb_url: str
    region: str
    access_key: str
    secret_key: str
    work_dir: Path
    jars: Tuple[Path, ...]
    python: Path  # the jobs' Python (PYSPARK_PYTHON), also the venv whose bin/ goes first on PATH
    spark_conf_dir: Path
    kill_grace_s: float = 10.0  # SIGTERM -> SIGKILL for a step's process group
    # Step end -> container logs on S3. EMR ships YARN container logs minutes after the application
    # ends (the step's own logs come first); 300 s is in that range.
    container_log_delay_s: float = DEFAULT_CONTAINER_LOG_DELAY_S

    def s3a_confs(self) -> Dict[str, str]:
        """Spark confs mapping ``s3://`` (and ``s3n://``, ``s3a://``) to S3A on LocalStack, path-style."""
        return {
            "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
            "spark.hadoop.fs.s3n.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
            "spark.hadoop.fs.s3a.endpoint": self.localstack_url,
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
            "spark.hadoop.fs.s3a.aws.credentials.provider": (
                "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
            ),
            "spark.hadoop.fs.s3a.access.key": self.access_key,
            "spark.hadoop.fs.s3a.secret.key": self.secret_key,
        }


def load_config(env: Optional[Mapping[str, str]] = None) -> RunnerConfig:
    """Configuration from ``LOCAL_EMR_*`` variables, with the project's defaults for running by hand."""
    env = os.environ if env is None else env
    resources_file = Path(env.get("LOCAL_EMR_RESOURCES") or ROOT / "localstack" / "resources.json")
    resources = json.loads(resources_file.read_text(encoding="utf-8"))
    jars_dir = ROOT / "var" / "jars"
    default_jars = os.pathsep.join(
        str(jars_dir / name) for name in ("hadoop-aws-3.3.1.jar", "aws-java-sdk-bundle-1.11.901.jar")
    )
    return RunnerConfig(
        localstack_url=env.get("LOCAL_EMR_LOCALSTACK_URL") or resources["endpoints"]["localstack"],
        dynamodb_url=env.get("LOCAL_EMR_DYNAMODB_URL") or resources["endpoints"]["dynamodb"],
        region=resources["region"],
        access_key=resources["aws_access_key_id"],
        secret_key=resources["aws_secret_access_key"],
        work_dir=Path(env.get("LOCAL_EMR_WORK_DIR") or ROOT / "var" / "localstack" / "emr"),
        jars=tuple(Path(p) for p in (env.get("LOCAL_EMR_JARS") or default_jars).split(os.pathsep) if p),
        python=Path(env.get("LOCAL_EMR_PYTHON") or sys.executable),
        spark_conf_dir=Path(env.get("LOCAL_EMR_SPARK_CONF_DIR") or ROOT / "emr_configs" / "local-spark"),
        container_log_delay_s=_seconds(env, "LOCAL_EMR_CONTAINER_LOG_DELAY_S", DEFAULT_CONTAINER_LOG_DELAY_S),
    )


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A non-negative number of seconds from ``env[name]`` (``default`` if unset); ValueError otherwise."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds; got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative; got {raw!r}")
    return value
