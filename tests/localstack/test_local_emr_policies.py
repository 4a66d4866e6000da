"""What the local EMR endpoint refuses or does by itself, as EMR does: ActionOnFailure with concurrent
steps, AutoTerminationPolicy's range and API, and idle auto-termination (one real 60-second wait).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Dict

import pytest
from botocore.exceptions import ClientError
from stack_helpers import CLUSTER_ENDED, command_step, wait_until

pytestmark = pytest.mark.localstack


def _error_code(error: pytest.ExceptionInfo) -> str:
    return error.value.response["Error"]["Code"]


def test_concurrent_cluster_refuses_steps_other_than_continue(
    emr: Any, make_cluster: Callable[..., str], steps_of: Callable[[str], Dict[str, Any]]
) -> None:
    with pytest.raises(ClientError) as refused:
        make_cluster([command_step("breaks", ["false"], "TERMINATE_CLUSTER")], StepConcurrencyLevel=2)
    assert _error_code(refused) == "ValidationException"
    assert "ActionOnFailure" in str(refused.value)

    cluster_id = make_cluster([command_step("fine", ["true"], "CONTINUE")], StepConcurrencyLevel=2)
    with pytest.raises(ClientError) as refused:
        emr.add_job_flow_steps(
            JobFlowId=cluster_id,
            Steps=[command_step("ok", ["true"]), command_step("waits", ["true"], "CANCEL_AND_WAIT")],
        )
    assert _error_code(refused) == "ValidationException"
    assert set(steps_of(cluster_id)) == {"fine"}  # none of the request's steps was added
    emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[command_step("more", ["true"])])
    assert set(steps_of(cluster_id)) == {"fine", "more"}


def test_raising_the_concurrency_under_a_step_disables_its_action_on_failure(
    emr: Any,
    tmp_path: Path,
    make_cluster: Callable[..., str],
    steps_of: Callable[[str], Dict[str, Any]],
    cluster_state: Callable[[str], Dict[str, Any]],
) -> None:
    # The step fails only once the test says so, i.e. surely after ModifyCluster.
    go = tmp_path / "fail-now"
    script = f"while [ ! -e '{go}' ]; do sleep 0.1; done; exit 1"
    cluster_id = make_cluster([command_step("breaks", ["bash", "-c", script], "TERMINATE_CLUSTER")])
    wait_until(lambda: steps_of(cluster_id)["breaks"]["Status"]["State"] == "RUNNING", 10, "the step to run")
    emr.modify_cluster(ClusterId=cluster_id, StepConcurrencyLevel=2)  # EMR allows it, then does not act
    go.touch()
    wait_until(lambda: steps_of(cluster_id)["breaks"]["Status"]["State"] == "FAILED", 15, "the step to fail")
    # A TERMINATE_CLUSTER that acted would be visible together with FAILED (same state change).
    state = wait_until(
        lambda: (s := cluster_state(cluster_id)["State"]) != "RUNNING" and s, 10, "the cluster to settle"
    )
    assert state == "WAITING"


def test_auto_termination_policy_range_and_api(emr: Any, make_cluster: Callable[..., str]) -> None:
    for seconds in (59, 604_801):
        with pytest.raises(ClientError) as refused:
            make_cluster(AutoTerminationPolicy={"IdleTimeout": seconds})
        assert _error_code(refused) == "ValidationException"
        assert "IdleTimeout" in str(refused.value)

    cluster_id = make_cluster(AutoTerminationPolicy={"IdleTimeout": 3600})
    policy = emr.get_auto_termination_policy(ClusterId=cluster_id)
    assert policy["AutoTerminationPolicy"] == {"IdleTimeout": 3600}
    emr.put_auto_termination_policy(ClusterId=cluster_id, AutoTerminationPolicy={"IdleTimeout": 604_800})
    policy = emr.get_auto_termination_policy(ClusterId=cluster_id)
    assert policy["AutoTerminationPolicy"] == {"IdleTimeout": 604_800}
    with pytest.raises(ClientError) as refused:
        emr.put_auto_termination_policy(ClusterId=cluster_id, AutoTerminationPolicy={"IdleTimeout": 30})
    assert _error_code(refused) == "ValidationException"
    emr.remove_auto_termination_policy(ClusterId=cluster_id)
    assert "AutoTerminationPolicy" not in emr.get_auto_termination_policy(ClusterId=cluster_id)


def test_idle_cluster_auto_terminates_after_its_idle_timeout(
    make_cluster: Callable[..., str],
    steps_of: Callable[[str], Dict[str, Any]],
    cluster_state: Callable[[str], Dict[str, Any]],
) -> None:
    """The one test that waits EMR's minimum IdleTimeout (60 s) for real; the semantics in detail are
    in the unit tests (injected clock)."""
    cluster_id = make_cluster([command_step("only", ["true"])], AutoTerminationPolicy={"IdleTimeout": 60})
    step = wait_until(
        lambda: (s := steps_of(cluster_id)["only"])["Status"]["State"] == "COMPLETED" and s, 15, "the step"
    )
    # Kept alive (KeepJobFlowAliveWhenNoSteps) after its last step: WAITING, until idle for 60 s.
    wait_until(lambda: cluster_state(cluster_id)["State"] == "WAITING", 10, "the cluster to wait")
    status = wait_until(
        lambda: (s := cluster_state(cluster_id))["State"] in CLUSTER_ENDED and s,
        100,
        "the idle cluster to terminate",
        interval_s=1.0,
    )
    assert status["State"] == "TERMINATED"
    assert status["StateChangeReason"]["Code"] == "ALL_STEPS_COMPLETED"
    assert "auto-termination policy" in status["StateChangeReason"]["Message"]
    idle = status["Timeline"]["EndDateTime"] - step["Status"]["Timeline"]["EndDateTime"]
    assert timedelta(seconds=60) <= idle < timedelta(seconds=75), idle
