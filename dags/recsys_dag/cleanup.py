"""Terminate the EMR clusters a run left behind, found by the tags cluster.json puts on every cluster.

Two callers:

- the DAG's ``on_failure_callback`` (:class:`RunCleanup`): on ``dagrun_timeout`` Airflow's scheduler
  marks the run failed and every unfinished task, the ``terminate_cluster`` teardown included, skipped
  (``SchedulerJobRunner._schedule_dag_run`` in ``airflow/jobs/scheduler_job_runner.py``, Airflow 3.3.2),
  then has the DAG processor run this callback with reason ``timed_out``. Without it a run timing out
  mid-step would leave its cluster running until EMR's idle timeout;
- ``create_cluster`` (see emr_operators.py), which first ends clusters of the same DAG and logical date
  left by an earlier attempt whose Airflow died.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping, Optional

from recsys_dag.alerts import publish

log = logging.getLogger(__name__)

# States in which a cluster costs money and can still be terminated (TERMINATING is already going).
ACTIVE_CLUSTER_STATES = ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING")
# DescribeCluster answers for clusters that are not ours: the IAM policy only lets this role describe
# clusters tagged dag_id=recsys_training, and a cluster may vanish between ListClusters and DescribeCluster.
_NOT_OURS = ("AccessDeniedException", "AccessDenied", "InvalidRequestException", "ClusterNotFound")


def tagged_clusters(emr_client, tags: Mapping[str, str]) -> List[Dict[str, str]]:
    """Active clusters carrying every tag in ``tags``: ``[{"Id", "Name", "State"}]``, in listing order."""
    from botocore.exceptions import ClientError

    found = []
    pages = emr_client.get_paginator("list_clusters").paginate(ClusterStates=list(ACTIVE_CLUSTER_STATES))
    for page in pages:
        for summary in page.get("Clusters", []):
            try:
                cluster = emr_client.describe_cluster(ClusterId=summary["Id"])["Cluster"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in _NOT_OURS:
                    continue
                raise
            have = {tag["Key"]: tag["Value"] for tag in cluster.get("Tags", [])}
            if all(have.get(key) == value for key, value in tags.items()):
                state = cluster.get("Status", {}).get("State", summary.get("Status", {}).get("State"))
                found.append({"Id": summary["Id"], "Name": cluster.get("Name", ""), "State": state})
    return found


def terminate_tagged_clusters(emr_client, tags: Mapping[str, str]) -> List[Dict[str, str]]:
    """Terminate every active cluster carrying ``tags``; returns them as :func:`tagged_clusters` does."""
    clusters = tagged_clusters(emr_client, tags)
    if clusters:
        # Asynchronous: the clusters go TERMINATING now and TERMINATED within minutes.
        emr_client.terminate_job_flows(JobFlowIds=[cluster["Id"] for cluster in clusters])
    return clusters


def describe(clusters: List[Dict[str, str]]) -> str:
    """'j-1 (recsys-training-2024-01-31, was RUNNING), ...' or 'none'."""
    return ", ".join(f"{c['Id']} ({c['Name']}, was {c['State']})" for c in clusters) or "none"


class RunCleanup:
    """DAG ``on_failure_callback``: terminate the run's clusters (tags dag_id + run_id), then alert.

    The alert goes out when the run timed out, or when a cluster had to be terminated (or could not
    be): an ordinary task failure, whose teardown already ended the cluster, has its task alert already.
    """

    def __init__(
        self,
        dag_id: str,
        aws_conn_id: Optional[str],
        region_name: Optional[str],
        topic_arn: str,
        dagrun_timeout_seconds: Optional[int] = None,
    ) -> None:
        self.dag_id, self.aws_conn_id, self.region_name = dag_id, aws_conn_id, region_name
        self.topic_arn, self.dagrun_timeout_seconds = topic_arn, dagrun_timeout_seconds

    def __call__(self, context: Mapping[str, Any]) -> Dict[str, Any]:
        from airflow.providers.amazon.aws.hooks.emr import EmrHook

        run_id = context.get("run_id") or getattr(context.get("dag_run"), "run_id", None)
        reason = context.get("reason") or "failed"
        timed_out = reason == "timed_out"
        terminated: List[Dict[str, str]] = []
        error = None
        if not run_id:
            error = "the callback context names no run_id: nothing looked up"
        else:
            try:
                emr = EmrHook(
                    aws_conn_id=self.aws_conn_id, region_name=self.region_name, emr_conn_id=None
                ).conn
                terminated = terminate_tagged_clusters(emr, {"dag_id": self.dag_id, "run_id": run_id})
            except Exception as exc:  # the alert must still go out
                error = f"{type(exc).__name__}: {exc}"
        log.info(
            "run %s of %s ended (%s); terminated clusters: %s",
            run_id,
            self.dag_id,
            reason,
            describe(terminated),
        )

        if timed_out:
            limit = f" ({self.dagrun_timeout_seconds} s)" if self.dagrun_timeout_seconds else ""
            outcome = (
                f"the run timed out: dagrun_timeout{limit} reached; Airflow skipped its unfinished tasks,"
                " terminate_cluster included"
            )
        else:
            outcome = f"the run failed ({reason})"
        lines = [f"dag: {self.dag_id}", f"run: {run_id}", f"outcome: {outcome}"]
        if terminated:
            lines.append(f"terminated clusters: {describe(terminated)}")
        elif error is None:
            lines.append("terminated clusters: none (no active cluster was tagged with this run)")
        if error:
            lines.append(f"cluster cleanup FAILED, check EMR by hand (tags dag_id, run_id): {error}")
        message = "\n".join(lines)
        if timed_out or terminated or error:
            verb = "TIMED OUT" if timed_out else "FAILED"
            publish(
                self.aws_conn_id,
                self.region_name,
                self.topic_arn,
                f"[recsys] {verb} {self.dag_id} {run_id}",
                message,
            )
        else:
            log.info("no alert: the failed task has sent its own\n%s", message)
        return {
            "reason": reason,
            "terminated": [c["Id"] for c in terminated],
            "error": error,
            "message": message,
        }
