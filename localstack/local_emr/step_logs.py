"""Step logs as EMR writes them, and the failure summary EMR puts into a failed step's FailureDetails.

EMR uploads each step's output to ``<LogUri>/<cluster-id>/steps/<step-id>/{controller,stderr,stdout}.gz``
(gzip), and YARN's container logs to ``<LogUri>/<cluster-id>/containers/<application>/<container>/``.
Here step logs are uploaded to LocalStack S3 once the step has ended, container logs later (runner).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any, List, Optional, Protocol, Tuple
from urllib.parse import urlparse

import boto3
from botocore.config import Config

from local_emr.config import RunnerConfig

LOG_NAMES = ("controller", "stderr", "stdout")
CONTAINER_LOG_NAMES = ("stderr", "stdout")
MAX_MESSAGE = 1000  # characters of the failure message: enough for one exception line, as EMR shows
# Lines that name the failure, most specific first: our jobs' "FAILED <job>: <reason>", a Python
# exception, a JVM exception.
_FAILURE_PATTERNS = (
    re.compile(r"\bFAILED [\w.-]+: "),
    re.compile(r"^\w+(\.\w+)*(Error|Exception)\b.*"),
    re.compile(r"\b[\w.$]+(Exception|Error)\b:.*"),
)


def s3_client(config: RunnerConfig) -> Any:
    """An S3 client for LocalStack (path-style, dummy credentials, a few retries, short timeouts)."""
    return boto3.client(
        "s3",
        endpoint_url=config.localstack_url,
        region_name=config.region,
        aws_access_key_id=config.access_key,
        aws_secret_access_key=config.secret_key,
        # Short timeouts: a log upload must never hold up a step's final state (or a shutdown) for long.
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        ),
    )


def split_s3_uri(uri: str) -> Tuple[str, str]:
    """(bucket, key prefix) of an ``s3://``, ``s3n://`` or ``s3a://`` URI; ValueError otherwise."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("s3", "s3n", "s3a") or not parsed.netloc:
        raise ValueError(f"not an S3 URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def step_log_prefix(log_uri: str, cluster_id: str, step_id: str) -> Tuple[str, str]:
    """(bucket, key prefix) under which a step's logs go: ``<LogUri>/<cluster-id>/steps/<step-id>/``."""
    bucket, prefix = split_s3_uri(log_uri)
    prefix = prefix.rstrip("/")
    base = f"{prefix}/" if prefix else ""
    return bucket, f"{base}{cluster_id}/steps/{step_id}/"


def container_log_prefix(
    log_uri: str, cluster_id: str, application_id: str, container_id: str
) -> Tuple[str, str]:
    """(bucket, key prefix) of a container's logs: ``<LogUri>/<cluster>/containers/<app>/<container>/``."""
    bucket, prefix = split_s3_uri(log_uri)
    prefix = prefix.rstrip("/")
    base = f"{prefix}/" if prefix else ""
    return bucket, f"{base}{cluster_id}/containers/{application_id}/{container_id}/"


def _upload_gzipped(
    config: RunnerConfig, bucket: str, prefix: str, log_dir: Path, names: Tuple[str, ...]
) -> None:
    client = s3_client(config)
    for name in names:
        path = log_dir / name
        data = path.read_bytes() if path.exists() else b""
        client.put_object(
            Bucket=bucket,
            Key=f"{prefix}{name}.gz",
            Body=gzip.compress(data),
            ContentType="application/gzip",  # a plain .gz object, as EMR's (no Content-Encoding)
        )


def upload_step_logs(config: RunnerConfig, log_uri: str, cluster_id: str, step_id: str, log_dir: Path) -> str:
    """Gzip and upload the step's controller/stderr/stdout files; returns the ``s3://`` URI of stderr.gz."""
    bucket, prefix = step_log_prefix(log_uri, cluster_id, step_id)
    _upload_gzipped(config, bucket, prefix, log_dir, LOG_NAMES)
    return f"s3://{bucket}/{prefix}stderr.gz"


def upload_container_logs(
    config: RunnerConfig, log_uri: str, cluster_id: str, application_id: str, container_id: str, log_dir: Path
) -> str:
    """Gzip and upload a container's stderr/stdout from ``log_dir``; returns the ``s3://`` folder URI."""
    bucket, prefix = container_log_prefix(log_uri, cluster_id, application_id, container_id)
    _upload_gzipped(config, bucket, prefix, log_dir, CONTAINER_LOG_NAMES)
    return f"s3://{bucket}/{prefix}"


class LogStore(Protocol):
    """Where the runner delivers logs (S3 on LocalStack; tests pass an in-memory one)."""

    def step_logs(self, log_uri: str, cluster_id: str, step_id: str, log_dir: Path) -> str:
        """Deliver a step's logs; the URI of its stderr.gz."""
        ...

    def container_logs(
        self, log_uri: str, cluster_id: str, application_id: str, container_id: str, log_dir: Path
    ) -> str:
        """Deliver a container's logs; the URI of their folder."""
        ...


class S3LogStore:
    """Logs to ``LogUri`` on LocalStack S3, in EMR's layout."""

    def __init__(self, config: RunnerConfig) -> None:
        self.config = config

    def step_logs(self, log_uri: str, cluster_id: str, step_id: str, log_dir: Path) -> str:
        return upload_step_logs(self.config, log_uri, cluster_id, step_id, log_dir)

    def container_logs(
        self, log_uri: str, cluster_id: str, application_id: str, container_id: str, log_dir: Path
    ) -> str:
        return upload_container_logs(self.config, log_uri, cluster_id, application_id, container_id, log_dir)


def _tail_lines(path: Path, size: int = 64 * 1024) -> List[str]:
    """Non-empty, stripped lines of the last ``size`` bytes of ``path`` (the final error is at the end)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - size))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def failure_message(log_dir: Path, exit_code: Optional[int]) -> str:
    """One line saying why the step failed, from the end of its output (as EMR's FailureDetails.Message).

    Both streams are searched: spark-submit merges the Python driver's stderr into its own stdout, so
    a PySpark job's traceback ends up in ``stdout``. The most specific pattern wins, the last match of
    it (the final error, not an earlier warning); without any, the last line of stderr; without any
    output, the exit status.
    """
    streams = [_tail_lines(log_dir / "stderr"), _tail_lines(log_dir / "stdout")]
    for pattern in _FAILURE_PATTERNS:
        for lines in streams:
            for line in reversed(lines):
                if pattern.search(line):
                    return line[:MAX_MESSAGE]
    if streams[0]:
        return streams[0][-1][:MAX_MESSAGE]
    return f"Step command exited with status {exit_code}" if exit_code is not None else "Step failed"
