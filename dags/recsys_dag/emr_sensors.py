"""The step sensor of the DAG: rides out API blips, fails at once on a step that failed.

The provider's EmrStepSensor fails its try on any exception from DescribeStep, so one throttled or 5xx
response or a connection reset (past botocore's own few quick retries) failed a ``watch_`` task that had
no retries, and the teardown then killed a cluster whose steps were fine. Here:

- transient errors (throttling, HTTP 429/5xx, connection errors) are retried inside the poke with
  exponential backoff; if they outlast it, the try fails with that error and the task's Airflow retries
  (which also cover a worker restart) poke again, the step still running on EMR meanwhile;
- a terminal step state (FAILED, CANCELLED, INTERRUPTED) raises ``AirflowFailException``: no retry, and
  the message names the step, its cluster and EMR's FailureDetails;
- a step RUNNING longer than ``max_step_runtime_seconds`` by EMR's own StartDateTime fails (no retry): a
  retried try restarts the sensor's clock, EMR's timeline does not, so the DAG's time budget holds.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Any, Dict, Optional

from airflow.providers.amazon.aws.links.emr import EmrClusterLink, EmrLogsLink, get_log_uri
from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

TERMINAL_FAILED_STATES = ("FAILED", "CANCELLED", "INTERRUPTED")
# Error codes AWS uses for "slow down" (botocore's own list of throttling codes, plus EMR's).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "EC2ThrottledException",
        "PriorRequestNotComplete",
        "BandwidthLimitExceeded",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "InternalServerException",
    }
)


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: throttling, HTTP 429/5xx, connection and read failures."""
    from botocore import exceptions as boto_errors

    if isinstance(exc, boto_errors.ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return error.get("Code") in THROTTLING_CODES or status == 429 or status >= 500
    # ConnectionError: refused, DNS, connect timeout. HTTPClientError: reset, closed, read timeout.
    return isinstance(exc, (boto_errors.ConnectionError, boto_errors.HTTPClientError))


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Wait before retry ``attempt`` (0-based): ``base * 2**attempt``, at most ``cap``."""
    return min(cap, base * (2**attempt))


def step_failure_message(job_flow_id: str, step: Dict[str, Any]) -> str:
    """'step <name> (<id>) on cluster <id> is FAILED: <reason> <message>; log: <file>'."""
    status = step.get("Status", {})
    details = status.get("FailureDetails") or {}
    text = f"step {step.get('Name')} ({step.get('Id')}) on cluster {job_flow_id} is {status.get('State')}"
    if details:
        reason = " ".join(str(details[key]) for key in ("Reason", "Message") if details.get(key))
        text += f": {reason or 'no reason given'}"
        if details.get("LogFile"):
            text += f"; log: {details['LogFile']}"
    else:
        change = (status.get("StateChangeReason") or {}).get("Message")
        text += f" (no FailureDetails{'; ' + change if change else ''})"
    return text


class ResilientEmrStepSensor(EmrStepSensor):
    """EmrStepSensor with transient-error backoff, fail-fast terminal states and an EMR-clock timeout.

    :param transient_retries: DescribeStep calls retried within one poke after a transient error.
    :param transient_backoff_seconds: first wait before such a retry; doubles each time.
    :param transient_backoff_max_seconds: cap of that wait.
    :param max_step_runtime_seconds: longest the step may run by EMR's StartDateTime; None = no limit.
    """

    def __init__(
        self,
        *,
        transient_retries: int = 5,
        transient_backoff_seconds: float = 5.0,
        transient_backoff_max_seconds: float = 120.0,
        max_step_runtime_seconds: Optional[int] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.transient_retries = transient_retries
        self.transient_backoff_seconds = transient_backoff_seconds
        self.transient_backoff_max_seconds = transient_backoff_max_seconds
        self.max_step_runtime_seconds = max_step_runtime_seconds
        # The deferrable trigger gives up after max_attempts pokes: make that the sensor's timeout.
        if self.poke_interval:
            self.max_attempts = max(1, math.ceil(self.timeout / self.poke_interval))
        self._links_persisted = False

    def describe_step(self) -> Dict[str, Any]:
        """DescribeStep's response, retrying transient errors with backoff (then re-raising the last)."""
        attempt = 0
        while True:
            try:
                return self.hook.conn.describe_step(ClusterId=self.job_flow_id, StepId=self.step_id)
            except Exception as exc:
                if attempt >= self.transient_retries or not is_transient(exc):
                    raise
                wait = backoff_seconds(
                    attempt, self.transient_backoff_seconds, self.transient_backoff_max_seconds
                )
                attempt += 1
                self.log.warning(
                    "DescribeStep %s on %s failed transiently (%s: %s); retry %d/%d in %.1f s",
                    self.step_id,
                    self.job_flow_id,
                    type(exc).__name__,
                    exc,
                    attempt,
                    self.transient_retries,
                    wait,
                )
                time.sleep(wait)

    def get_emr_response(self, context) -> Dict[str, Any]:
        self.log.info("Poking step %s on cluster %s", self.step_id, self.job_flow_id)
        response = self.describe_step()
        if not self._links_persisted:
            # The provider refreshes the UI links on every poke, a DescribeCluster call each time; once
            # per try is enough, and a failure there must not fail the sensor.
            try:
                region, partition = self.hook.conn_region_name, self.hook.conn_partition
                EmrClusterLink.persist(
                    context=context,
                    operator=self,
                    region_name=region,
                    aws_partition=partition,
                    job_flow_id=self.job_flow_id,
                )
                EmrLogsLink.persist(
                    context=context,
                    operator=self,
                    region_name=region,
                    aws_partition=partition,
                    job_flow_id=self.job_flow_id,
                    log_uri=get_log_uri(emr_client=self.hook.conn, job_flow_id=self.job_flow_id),
                )
                self._links_persisted = True
            except Exception as exc:
                self.log.warning("could not persist the EMR links: %s", exc)
        return response

    def poke(self, context) -> bool:
        step = self.get_emr_response(context)["Step"]
        state = step["Status"]["State"]
        self.log.info("step %s (%s) is %s", step.get("Name"), self.step_id, state)
        if state in self.target_states:
            return True
        if state in self.failed_states or state in TERMINAL_FAILED_STATES:
            raise AirflowFailException(step_failure_message(self.job_flow_id, step))
        self._check_runtime(step)
        return False

    def _check_runtime(self, step: Dict[str, Any]) -> None:
        started = (step["Status"].get("Timeline") or {}).get("StartDateTime")
        if self.max_step_runtime_seconds is None or not isinstance(started, dt.datetime):
            return
        if started.tzinfo is None:
            started = started.replace(tzinfo=dt.timezone.utc)
        running = (dt.datetime.now(dt.timezone.utc) - started).total_seconds()
        if running > self.max_step_runtime_seconds:
            raise AirflowSensorTimeout(
                f"step {step.get('Name')} ({self.step_id}) on cluster {self.job_flow_id} has run for "
                f"{running:.0f} s, over its {self.max_step_runtime_seconds} s (step_timeout_seconds)"
            )

    def execute_complete(self, context, event: Optional[Dict[str, Any]] = None) -> None:
        """Deferrable mode: a failed step fails without retry, with the step's details."""
        if event and event.get("status") != "success":
            step = self.describe_step()["Step"]
            if step["Status"]["State"] in TERMINAL_FAILED_STATES:
                raise AirflowFailException(step_failure_message(self.job_flow_id, step))
        super().execute_complete(context, event)
