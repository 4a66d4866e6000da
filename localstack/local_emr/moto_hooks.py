"""Where the step runner plugs into moto's EMR backend (patched in this server process only).

moto serves the EMR API faithfully enough but never advances a step: the first step is RUNNING and
the rest PENDING forever, CancelSteps is not implemented, FailureDetails never appear (localstack/README.md).
The patches below hand every new cluster and step to the ``StepRunner`` instead, and complete what the
API shows:

- RunJobFlow / AddJobFlowSteps: steps are created PENDING; the runner starts them. Bootstrap actions
  are recorded (ListBootstrapActions shows them) but not run; the cluster is WAITING at once.
- AddJobFlowSteps on a TERMINATING / TERMINATED cluster fails with ValidationException, as on EMR.
- With StepConcurrencyLevel above 1, a step whose ActionOnFailure is not CONTINUE is refused
  (RunJobFlow, AddJobFlowSteps: ValidationException, nothing is added), as EMR documents.
- AutoTerminationPolicy (RunJobFlow, Put/Get/RemoveAutoTerminationPolicy; moto ignores or lacks
  them): IdleTimeout 60 to 604800 s, else ValidationException; the runner terminates idle clusters.
- TerminateJobFlows: TERMINATING at once, running steps killed, TERMINATED once they are gone.
- ModifyCluster (StepConcurrencyLevel) takes effect at the next scheduling pass; raising it is allowed
  even under steps with another ActionOnFailure (EMR allows it; the action then does not activate).
- CancelSteps: implemented (moto answers HTTP 500).
- Step Status: FailureDetails and StateChangeReason.Message; Cluster Status: StateChangeReason.Code.
"""

from __future__ import annotations

import contextvars
from typing import Any, Dict, List, Mapping, Optional, Sequence

from moto.core.responses import ActionResult, EmptyResult
from moto.emr.exceptions import ValidationException
from moto.emr.models import Cluster, ElasticMapReduceBackend, Step
from moto.emr.responses import ElasticMapReduceResponse

from local_emr.idle import validate_idle_timeout
from local_emr.runner import ENDED, StepRunner

_installed = False
ENDED_MESSAGE = "A job flow that is shutting down, terminated, or finished may not be modified."
# RunJobFlow's AutoTerminationPolicy, handed from the HTTP handler (moto's response class, which sees
# the request) to the backend (which creates the cluster) in the same thread: moto drops the field.
_requested_idle_timeout: contextvars.ContextVar[Optional[int]] = contextvars.ContextVar(
    "requested_idle_timeout", default=None
)


def check_action_on_failure(steps: Sequence[Mapping[str, Any]], concurrency_level: int) -> None:
    """ValidationException if ``concurrency_level`` > 1 and a step's ActionOnFailure is not CONTINUE.

    EMR: "You cannot add a step with an ActionOnFailure other than CONTINUE while the step concurrency
    level of the cluster is greater than 1" (the step is not submitted; the wording below is ours). A
    step without ActionOnFailure gets moto's default, TERMINATE_CLUSTER (the API documents none).
    """
    if concurrency_level <= 1:
        return
    for step in steps:
        action = step.get("action_on_failure") or "TERMINATE_CLUSTER"
        if action != "CONTINUE":
            raise ValidationException(
                f"The ActionOnFailure setting {action} of step '{step.get('name', '')}' is not valid: "
                f"a cluster whose StepConcurrencyLevel is greater than 1 ({concurrency_level}) accepts "
                "only CONTINUE."
            )


def idle_timeout_of(policy: Any) -> Optional[int]:
    """IdleTimeout (seconds) of an AutoTerminationPolicy parameter; None if absent; else validated."""
    if not policy:
        return None
    value = policy.get("IdleTimeout")
    if value is None:
        raise ValidationException("Invalid AutoTerminationPolicy: IdleTimeout is required.")
    try:
        return validate_idle_timeout(value)
    except ValueError as error:
        raise ValidationException(str(error)) from None


def install(runner: StepRunner) -> None:
    """Patch moto's EMR classes so that ``runner`` drives every cluster of this process (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    original_run_job_flow = ElasticMapReduceBackend.run_job_flow
    original_run_job_flow_response = ElasticMapReduceResponse.run_job_flow
    original_modify_cluster = ElasticMapReduceBackend.modify_cluster
    original_step_status = Step.status.fget
    original_cluster_status = Cluster.status.fget

    def add_steps(self: Cluster, steps: List[Dict[str, Any]]) -> List[Step]:
        # Called by Cluster.__init__ (RunJobFlow; no state yet) and AddJobFlowSteps: all PENDING.
        if getattr(self, "state", None) in ENDED:
            raise ValidationException(ENDED_MESSAGE)
        added = [Step(state="PENDING", **step) for step in steps]
        self.steps.extend(added)
        return added

    def run_job_flow_response(self: ElasticMapReduceResponse) -> ActionResult:
        token = _requested_idle_timeout.set(idle_timeout_of(self._get_param("AutoTerminationPolicy")))
        try:
            return original_run_job_flow_response(self)
        finally:
            _requested_idle_timeout.reset(token)

    def run_job_flow(self: ElasticMapReduceBackend, **kwargs: Any) -> Cluster:
        check_action_on_failure(kwargs.get("steps") or [], int(kwargs.get("step_concurrency_level") or 1))
        with runner.lock:
            cluster = original_run_job_flow(self, **kwargs)
            for step in cluster.steps:  # moto stamps the first step as started; the runner decides that
                step.start_date_time = None
            runner.track(cluster, _requested_idle_timeout.get())
            return cluster

    def add_job_flow_steps(
        self: ElasticMapReduceBackend, job_flow_id: str, steps: List[Dict[str, Any]]
    ) -> List[Step]:
        with runner.lock:
            cluster = self.describe_cluster(job_flow_id)
            if cluster.state not in ENDED:  # an ended cluster's own error comes first (add_steps)
                check_action_on_failure(steps, int(cluster.step_concurrency_level or 1))
            added = cluster.add_steps(steps)
            runner.notify()
            return added

    def terminate_job_flows(self: ElasticMapReduceBackend, job_flow_ids: List[str]) -> List[Cluster]:
        with runner.lock:
            clusters = [self.describe_cluster(job_flow_id) for job_flow_id in job_flow_ids]
            protected = [c for c in clusters if c.termination_protected and c.state not in ENDED]
            if protected:  # EMR terminates none of them in that case
                raise ValidationException(
                    "Could not shut down one or more job flows since they are termination protected."
                )
            for cluster in clusters:
                runner.request_termination(cluster, "USER_REQUEST", "Terminated by user request")
            return clusters

    def modify_cluster(
        self: ElasticMapReduceBackend, cluster_id: str, step_concurrency_level: int
    ) -> Cluster:
        with runner.lock:
            cluster = original_modify_cluster(
                self, self.describe_cluster(cluster_id).id, int(step_concurrency_level)
            )
            runner.notify()
            return cluster

    def step_status(self: Step) -> Dict[str, Any]:
        status = original_step_status(self)
        message = getattr(self, "last_state_change_reason", None)
        status["StateChangeReason"] = {"Message": message} if message else {}
        details = getattr(self, "failure_details", None)
        if details and self.state == "FAILED":
            status["FailureDetails"] = details
        return status

    def cluster_status(self: Cluster) -> Dict[str, Any]:
        status = original_cluster_status(self)
        code = getattr(self, "state_change_code", None)
        if code:
            status["StateChangeReason"] = {
                "Code": code,
                "Message": getattr(self, "last_state_change_reason", ""),
            }
        return status

    def cancel_steps(self: ElasticMapReduceResponse) -> ActionResult:
        cluster = self.backend.describe_cluster(self._get_param("ClusterId"))  # InvalidCluster if unknown
        infos = runner.cancel_steps(cluster, list(self._get_param("StepIds", [])))
        return ActionResult({"CancelStepsInfoList": infos})

    def put_auto_termination_policy(self: ElasticMapReduceResponse) -> EmptyResult:
        cluster = self.backend.describe_cluster(self._get_param("ClusterId"))
        timeout_s = idle_timeout_of(self._get_param("AutoTerminationPolicy"))
        with runner.lock:
            if cluster.state in ENDED:
                raise ValidationException(ENDED_MESSAGE)
            runner.set_auto_termination(cluster, timeout_s)
        return EmptyResult()

    def get_auto_termination_policy(self: ElasticMapReduceResponse) -> ActionResult:
        cluster = self.backend.describe_cluster(self._get_param("ClusterId"))
        timeout_s = runner.auto_termination(cluster)
        return ActionResult(
            {} if timeout_s is None else {"AutoTerminationPolicy": {"IdleTimeout": timeout_s}}
        )

    def remove_auto_termination_policy(self: ElasticMapReduceResponse) -> EmptyResult:
        cluster = self.backend.describe_cluster(self._get_param("ClusterId"))
        runner.set_auto_termination(cluster, None)
        return EmptyResult()

    Cluster.add_steps = add_steps
    ElasticMapReduceBackend.run_job_flow = run_job_flow
    ElasticMapReduceResponse.run_job_flow = run_job_flow_response
    ElasticMapReduceBackend.add_job_flow_steps = add_job_flow_steps
    ElasticMapReduceBackend.terminate_job_flows = terminate_job_flows
    ElasticMapReduceBackend.modify_cluster = modify_cluster
    Step.status = property(step_status)
    Cluster.status = property(cluster_status)
    ElasticMapReduceResponse.cancel_steps = cancel_steps
    ElasticMapReduceResponse.put_auto_termination_policy = put_auto_termination_policy
    ElasticMapReduceResponse.get_auto_termination_policy = get_auto_termination_policy
    ElasticMapReduceResponse.remove_auto_termination_policy = remove_auto_termination_policy
