"""Failure alerts and run summaries on SNS.

A failure alert names the DAG, run, task and EMR cluster and, when a step failed, its FailureDetails and
the tail of its stderr from the cluster's LogUri (``<LogUri>/<cluster>/steps/<step>/stderr.gz``, EMR's
layout). Enrichment is best effort: an alert is always sent, saying what could not be read.
"""

from __future__ import annotations

import gzip
import logging
from typing import Any, Dict, List, Optional

from airflow.sdk import BaseNotifier

from recsys_dag.locations import split_s3_uri

log = logging.getLogger(__name__)
STDERR_TAIL_LINES = 40
CREATE_TASK_ID = "create_cluster"


def publish(
    aws_conn_id: Optional[str], region_name: Optional[str], topic_arn: str, subject: str, message: str
):
    """Publish to SNS (or only log when no topic is configured)."""
    if not topic_arn:
        log.warning("no alert_topic_arn configured; alert not sent:\n%s\n%s", subject, message)
        return
    from airflow.providers.amazon.aws.hooks.sns import SnsHook

    hook = SnsHook(aws_conn_id=aws_conn_id, region_name=region_name)
    hook.publish_to_target(target_arn=topic_arn, message=message, subject=subject[:100])


def step_log_uri(log_uri: str, cluster_id: str, step_id: str) -> str:
    """EMR's per-step log folder; LogUri may come back as s3n:// from the API."""
    base = log_uri.replace("s3n://", "s3://", 1).rstrip("/")
    return f"{base}/{cluster_id}/steps/{step_id}/"


def tail_lines(data: bytes, lines: int = STDERR_TAIL_LINES) -> str:
    """The last ``lines`` lines of a (possibly gzip-compressed) log file."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])


def describe_failed_step(emr_client, s3_hook, cluster_id: str, step_id: str) -> List[str]:
    """Lines about a step: name, state, FailureDetails and its stderr tail (best effort)."""
    out: List[str] = []
    step = emr_client.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
    status = step["Status"]
    out.append(f"step: {step.get('Name')} ({step_id}) state {status.get('State')}")
    details = status.get("FailureDetails") or {}
    if details:
        out.append(f"failure: {details.get('Reason', '')} {details.get('Message', '')}".rstrip())
    log_file = details.get("LogFile")
    if not log_file:
        log_uri = emr_client.describe_cluster(ClusterId=cluster_id)["Cluster"].get("LogUri")
        log_file = step_log_uri(log_uri, cluster_id, step_id) if log_uri else None
    if not log_file:
        out.append("stderr: the cluster has no LogUri")
        return out
    log_file = log_file.replace("s3n://", "s3://", 1)
    stderr_uri = log_file if log_file.endswith(".gz") else log_file.rstrip("/") + "/stderr.gz"
    out.append(f"log: {stderr_uri}")
    bucket, key = split_s3_uri(stderr_uri)
    if not s3_hook.check_for_key(key, bucket_name=bucket):
        out.append("stderr: not yet delivered to S3 (EMR copies step logs every few minutes)")
        return out
    body = s3_hook.get_key(key, bucket_name=bucket).get()["Body"].read()
    out.append(f"--- stderr (last {STDERR_TAIL_LINES} lines) ---")
    out.append(tail_lines(body))
    return out


def failure_message(context: Dict[str, Any], aws_conn_id: Optional[str], region_name: Optional[str]) -> str:
    """The alert text for a failed task (see module docstring)."""
    ti = context["ti"]
    task = context.get("task")
    dag_run = context.get("dag_run")
    lines = [
        f"dag: {ti.dag_id}",
        f"run: {getattr(dag_run, 'run_id', ti.run_id)}",
        f"task: {ti.task_id} (try {ti.try_number})",
    ]
    cluster_id = None
    try:
        cluster_id = ti.xcom_pull(task_ids=CREATE_TASK_ID)
    except Exception as exc:  # the alert must go out even if XCom is unreadable
        lines.append(f"cluster: unknown ({exc})")
    if cluster_id:
        lines.append(f"cluster: {cluster_id}")
    step_id = getattr(task, "step_id", None)
    if cluster_id and step_id:
        try:
            from airflow.providers.amazon.aws.hooks.emr import EmrHook
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            emr = EmrHook(aws_conn_id=aws_conn_id, region_name=region_name, emr_conn_id=None).conn
            s3 = S3Hook(aws_conn_id=aws_conn_id, region_name=region_name)
            lines.extend(describe_failed_step(emr, s3, cluster_id, step_id))
        except Exception as exc:
            lines.append(f"step {step_id}: details unavailable ({type(exc).__name__}: {exc})")
    exception = context.get("exception")
    if exception is not None:
        lines.append(f"error: {type(exception).__name__}: {exception}")
    return "\n".join(lines)


class FailureAlert(BaseNotifier):
    """on_failure_callback: publish :func:`failure_message` to the alert topic."""

    template_fields = ()

    def __init__(self, aws_conn_id: Optional[str], region_name: Optional[str], topic_arn: str):
        super().__init__()
        self.aws_conn_id, self.region_name, self.topic_arn = aws_conn_id, region_name, topic_arn

    def notify(self, context: Dict[str, Any]) -> None:
        ti = context["ti"]
        subject = f"[recsys] FAILED {ti.dag_id}.{ti.task_id} {context.get('ds', '')}"
        publish(
            self.aws_conn_id,
            self.region_name,
            self.topic_arn,
            subject,
            failure_message(context, self.aws_conn_id, self.region_name),
        )
