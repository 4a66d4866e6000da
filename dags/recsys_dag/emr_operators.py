"""Thin subclasses of the Amazon provider's EMR operators.

- JSON templates: the provider loads a rendered ``.json`` template with ``ast.literal_eval``, which
  rejects JSON's ``true``/``false``/``null``; these parse it as JSON instead.
- Idempotent step submission: a retried add-steps task must not queue the pipeline a second time on the
  same cluster, so existing steps with the same names are reused.
- A clean start: before creating its cluster, create-cluster terminates any active cluster tagged with
  the same DAG id and logical date, left by an earlier attempt whose Airflow died.
"""

from __future__ import annotations

import json
from typing import Any, List

from airflow.providers.amazon.aws.operators.emr import EmrAddStepsOperator, EmrCreateJobFlowOperator

from recsys_dag.cleanup import describe, terminate_tagged_clusters

# The tags (from cluster.json) that say "a cluster for this DAG and date", whichever attempt made it.
RERUN_TAGS = ("dag_id", "logical_date")


def _as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


class EmrCreateJobFlowFromTemplateOperator(EmrCreateJobFlowOperator):
    """EmrCreateJobFlowOperator whose ``job_flow_overrides`` may be a Jinja-rendered JSON template, and
    which first terminates active clusters carrying the request's ``dag_id`` and ``logical_date`` tags.

    Such a cluster is an earlier attempt's (max_active_runs=1: no other run of the date can be going):
    one whose Airflow died before its teardown, or this task's own earlier try. Ending it before the new
    cluster starts also stops its steps from writing the date's outputs alongside the new ones.
    """

    def execute(self, context):
        self.job_flow_overrides = _as_json(self.job_flow_overrides)
        tags = {tag["Key"]: tag["Value"] for tag in self.job_flow_overrides.get("Tags", [])}
        if all(tags.get(key) for key in RERUN_TAGS):
            wanted = {key: tags[key] for key in RERUN_TAGS}
            stale = terminate_tagged_clusters(self.hook.conn, wanted)
            if stale:
                self.log.warning(
                    "terminated clusters of an earlier attempt (%s): %s", wanted, describe(stale)
                )
            else:
                self.log.info("no active cluster tagged %s: a clean start", wanted)
        else:
            self.log.warning("the cluster request lacks the tags %s: no stale-cluster check", RERUN_TAGS)
        return super().execute(context)


class IdempotentEmrAddStepsOperator(EmrAddStepsOperator):
    """EmrAddStepsOperator that adds its steps once per cluster, whatever the number of task tries.

    If every step name is already on the cluster (from an earlier try), their ids are returned in the
    template's order instead of adding new steps. A partial match cannot come from this operator (EMR adds
    a request's steps atomically), so it is an error rather than a guess.
    """

    def execute(self, context) -> List[str]:
        self.steps = _as_json(self.steps)
        names = [step["Name"] for step in self.steps]
        existing = self._existing_steps(str(self.job_flow_id))
        found = [name for name in names if name in existing]
        if found and len(found) == len(names):
            step_ids = [existing[name] for name in names]
            self.log.info("steps %s already on cluster %s: reusing %s", names, self.job_flow_id, step_ids)
            if self.do_xcom_push:
                context["ti"].xcom_push(key="job_flow_id", value=self.job_flow_id)
            return step_ids
        if found:
            raise RuntimeError(
                f"cluster {self.job_flow_id} already has steps {found} "
                f"but not {sorted(set(names) - set(found))}"
            )
        return super().execute(context)

    def _existing_steps(self, job_flow_id: str) -> dict:
        """Step name -> id of the newest step with that name on the cluster (ListSteps is newest first)."""
        existing: dict = {}
        paginator = self.hook.conn.get_paginator("list_steps")
        for page in paginator.paginate(ClusterId=job_flow_id):
            for step in page["Steps"]:
                existing.setdefault(step["Name"], step["Id"])
        return existing
