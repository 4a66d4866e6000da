"""Failure alerts and run summaries on SNS.

A failure alert names the DAG, run, task and EMR cluster. For a failed step it gives the cause from the
first of these sources that has it, and says which one it used:

1. **the job's outcome record** (``--outcome`` in the step's arguments; spark_jobs/common/outcome.py):
   written by the job itself before it exits, so it is there when the step's state turns FAILED;
2. **the driver's container log**, ``<LogUri>/<cluster>/containers/<application>/<container>/``: in
   cluster mode the job's own output is there, but EMR ships it only minutes after the application ends;
3. **the step's own log** (``<LogUri>/<cluster>/steps/<step>/stderr.gz``: the spark-submit launcher's
   output in cluster mode) and EMR's FailureDetails.

Enrichment is best effort: an alert is always sent, saying what could not be read or was not there yet,
and it is kept under SNS's message limit (tails of logs, never whole logs).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from airflow.sdk import BaseNotifier

from recsys_dag.locations import split_s3_uri

log = logging.getLogger(__name__)
STDERR_TAIL_LINES = 40
CREATE_TASK_ID = "create_cluster"
OUTCOME_OPTION = "--outcome"  # the jobs' option naming their outcome record (spark_jobs.common.outcome)
SNS_MESSAGE_LIMIT_BYTES = 262_144  # SNS Publish: at most 256 KiB of message
SNS_SUBJECT_LIMIT = 100
# Room left under the limit for SNS's JSON envelope when delivered to SQS/HTTP subscribers.
_MESSAGE_BUDGET_BYTES = SNS_MESSAGE_LIMIT_BYTES - 16_384
_APPLICATION_ID = re.compile(r"\bapplication_\d+_\d+\b")
# A record written more than this before the step started comes from an earlier attempt.
_CLOCK_SLACK = dt.timedelta(minutes=5)


def publish(
    aws_conn_id: Optional[str], region_name: Optional[str], topic_arn: str, subject: str, message: str
):
    """Publish to SNS (or only log when no topic is configured); the message is cut to fit SNS's limit."""
    message = fit_message(message)
    if not topic_arn:
        log.warning("no alert_topic_arn configured; alert not sent:\n%s\n%s", subject, message)
        return
    from airflow.providers.amazon.aws.hooks.sns import SnsHook

    hook = SnsHook(aws_conn_id=aws_conn_id, region_name=region_name)
    hook.publish_to_target(target_arn=topic_arn, message=message, subject=subject[:SNS_SUBJECT_LIMIT])


def fit_message(message: str, budget_bytes: int = _MESSAGE_BUDGET_BYTES) -> str:
    """``message`` if its UTF-8 form fits ``budget_bytes``, else its head cut there with a note."""
    data = message.encode("utf-8")
    if len(data) <= budget_bytes:
        return message
    note = f"\n… (cut to {budget_bytes} bytes to fit SNS's {SNS_MESSAGE_LIMIT_BYTES}-byte limit)"
    head = data[: budget_bytes - len(note.encode("utf-8"))].decode("utf-8", errors="ignore")
    return head + note


def step_log_uri(log_uri: str, cluster_id: str, step_id: str) -> str:
    """EMR's per-step log folder; LogUri may come back as s3n:// from the API."""
    return f"{_log_root(log_uri)}/{cluster_id}/steps/{step_id}/"


def container_log_uri(log_uri: str, cluster_id: str, application_id: str) -> str:
    """EMR's folder of an application's container logs under the cluster's LogUri."""
    return f"{_log_root(log_uri)}/{cluster_id}/containers/{application_id}/"


def _log_root(log_uri: str) -> str:
    return log_uri.replace("s3n://", "s3://", 1).rstrip("/")


def tail_lines(data: bytes, lines: int = STDERR_TAIL_LINES) -> str:
    """The last ``lines`` lines of a (possibly gzip-compressed) log file."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])


def option_value(args: Sequence[str], option: str) -> Optional[str]:
    """The value of ``option`` (``--x v`` or ``--x=v``) in a step's arguments, or None."""
    for index, token in enumerate(args):
        if token == option and index + 1 < len(args):
            return args[index + 1]
        if token.startswith(option + "="):
            return token.split("=", 1)[1]
    return None


def _read(s3, uri: str) -> Optional[bytes]:
    """The object at ``uri``, or None if there is none (other errors propagate)."""
    bucket, key = split_s3_uri(uri)
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    except Exception as exc:  # a 404 from a HEAD-less get can also surface as a generic ClientError
        if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey"):
            return None
        raise


def outcome_lines(s3, uri: str, step_started: Optional[dt.datetime]) -> Tuple[List[str], Optional[str]]:
    """Lines from the job's outcome record at ``uri``, and its application id (None if unknown).

    Returns no lines when the record is missing or belongs to an earlier attempt (written before this
    step started): the caller then falls back to the logs. Either way a line says what was found.
    """
    body = _read(s3, uri)
    if body is None:
        return [f"outcome record: none at {uri} (the job did not get to write it)"], None
    record = json.loads(body)
    application_id = record.get("application_id")
    ended = record.get("ended_at")
    if step_started is not None and ended:
        ended_at = dt.datetime.fromisoformat(ended)
        if ended_at + _CLOCK_SLACK < step_started:
            return [f"outcome record: {uri} is from an earlier attempt (ended {ended}): ignored"], None
    lines = [f"cause (from the job's outcome record {uri}):"]
    lines.append(f"  {record.get('reason') or 'status ' + str(record.get('status'))}")
    if record.get("status") == "succeeded":
        lines.append("  the job itself succeeded: the step failed after it (container or cluster problem)")
    error = record.get("error") or {}
    if error.get("traceback") and error.get("type") != "JobError":
        lines.append("--- traceback (from the outcome record) ---")
        lines.append(error["traceback"])
    return lines, application_id


def driver_log_lines(s3, log_uri: str, cluster_id: str, application_id: str) -> List[str]:
    """The tail of the driver's container log (cluster mode: the application master, ``…_000001``)."""
    prefix_uri = container_log_uri(log_uri, cluster_id, application_id)
    bucket, prefix = split_s3_uri(prefix_uri)
    keys: List[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    # The driver runs in the AM container, number 000001 of the newest attempt.
    drivers = sorted({key.rsplit("/", 2)[-2] for key in keys if key.rsplit("/", 2)[-2].endswith("_000001")})
    if not drivers:
        return [
            f"driver log: not yet in {prefix_uri} (EMR ships container logs to S3 minutes after the "
            "application ends)"
        ]
    out: List[str] = []
    for name in ("stderr.gz", "stdout.gz"):
        key = f"{prefix}{drivers[-1]}/{name}"
        if key in keys:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            out.append(f"--- driver {name[:-3]} (s3://{bucket}/{key}, last {STDERR_TAIL_LINES} lines) ---")
            out.append(tail_lines(body))
    return out


def describe_failed_step(emr_client, s3, cluster_id: str, step_id: str) -> List[str]:
    """Lines about a failed step, cause first (module docstring); ``s3`` is a boto3 S3 client."""
    out: List[str] = []
    step = emr_client.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
    status = step["Status"]
    out.append(f"step: {step.get('Name')} ({step_id}) state {status.get('State')}")
    details = status.get("FailureDetails") or {}
    if details:
        out.append(f"EMR failure details: {details.get('Reason', '')} {details.get('Message', '')}".rstrip())
    args = list((step.get("Config") or {}).get("Args") or [])
    started = (status.get("Timeline") or {}).get("StartDateTime")
    application_id = None
    outcome_uri = option_value(args, OUTCOME_OPTION)
    found_cause = False
    if outcome_uri:
        try:
            lines, application_id = outcome_lines(s3, outcome_uri, started)
            found_cause = lines[0].startswith("cause")
            out.extend(lines)
        except Exception as exc:
            out.append(f"outcome record: unreadable at {outcome_uri} ({type(exc).__name__}: {exc})")
    else:
        out.append("outcome record: the step names none (no --outcome argument)")

    log_uri = emr_client.describe_cluster(ClusterId=cluster_id)["Cluster"].get("LogUri")
    if not log_uri:
        out.append("logs: the cluster has no LogUri")
        return out
    log_file = details.get("LogFile") or step_log_uri(log_uri, cluster_id, step_id)
    log_file = log_file.replace("s3n://", "s3://", 1)
    stderr_uri = log_file if log_file.endswith(".gz") else log_file.rstrip("/") + "/stderr.gz"
    step_stderr = _read(s3, stderr_uri)
    if application_id is None and step_stderr is not None:
        found = _APPLICATION_ID.findall(tail_lines(step_stderr, 10_000))
        application_id = found[-1] if found else None
    if not found_cause:
        if application_id:
            out.extend(driver_log_lines(s3, log_uri, cluster_id, application_id))
        else:
            out.append("driver log: no application id in the outcome record or the step log (client mode?)")
    if step_stderr is None:
        out.append(f"step log: {stderr_uri} not yet delivered to S3 (EMR copies step logs every few minutes)")
        return out
    out.append(f"--- step stderr ({stderr_uri}, last {STDERR_TAIL_LINES} lines) ---")
    out.append(tail_lines(step_stderr))
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
            s3 = S3Hook(aws_conn_id=aws_conn_id, region_name=region_name).get_conn()
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
