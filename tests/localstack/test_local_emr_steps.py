"""The local EMR endpoint's step state machine, with cheap generic command-runner steps.

States, ActionOnFailure, StepConcurrencyLevel, FailureDetails and logs under the LogUri, CancelSteps,
and TerminateJobFlows killing a running step; the real Spark step is in test_local_emr_spark.py.
"""

from __future__ import annotations

import gzip
import time
from typing import Any, Callable, Dict

import psutil
import pytest
from botocore.exceptions import ClientError
from local_emr.step_logs import split_s3_uri
from stack_helpers import CLUSTER_ENDED, command_step, wait_until

pytestmark = pytest.mark.localstack


def _read_gz(s3: Any, uri: str) -> str:
    bucket, key = split_s3_uri(uri)
    return gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).decode()


def test_cluster_without_steps_waits_and_records_bootstrap_actions(
    emr: Any, make_cluster: Callable[..., str], cluster_state: Callable[[str], Dict[str, Any]]
) -> None:
    bootstrap = {
        "Name": "install_deps",
        "ScriptBootstrapAction": {"Path": "s3://b/bootstrap.sh", "Args": ["x"]},
    }
    cluster_id = make_cluster(BootstrapActions=[bootstrap])
    assert cluster_state(cluster_id)["State"] == "WAITING"
    actions = emr.list_bootstrap_actions(ClusterId=cluster_id)["BootstrapActions"]
    assert [(a["Name"], a["ScriptPath"], a["Args"]) for a in actions] == [
        ("install_deps", "s3://b/bootstrap.sh", ["x"])
    ]


def test_failing_step_has_failure_details_and_stderr_under_the_log_uri(
    emr: Any,
    s3: Any,
    resources: Dict[str, Any],
    make_cluster: Callable[..., str],
    wait_steps_ended: Callable[..., Dict[str, Any]],
    cluster_state: Callable[[str], Dict[str, Any]],
) -> None:
    failure = "FAILED demo_job: no input for 2024-01-01"
    script = f"echo 'starting'; echo 'some warning' >&2; echo '{failure}' >&2; exit 2"
    cluster_id = make_cluster(
        [command_step("demo_job", ["bash", "-c", script]), command_step("next", ["true"])]
    )
    steps = wait_steps_ended(cluster_id)

    failed = steps["demo_job"]
    assert failed["Status"]["State"] == "FAILED"
    details = failed["Status"]["FailureDetails"]
    assert details["Reason"] == "Step command exited with status 2"
    assert details["Message"] == failure
    log_prefix = f"{resources['emr_log_uri'].rstrip('/')}/{cluster_id}/steps/{failed['Id']}/"
    assert details["LogFile"] == log_prefix + "stderr.gz"
    # EMR's layout: stderr/stdout/controller as .gz under <LogUri>/<cluster-id>/steps/<step-id>/.
    assert "FAILED demo_job: no input" in _read_gz(s3, details["LogFile"])
    assert _read_gz(s3, log_prefix + "stdout.gz") == "starting\n"
    assert "startExec" in _read_gz(s3, log_prefix + "controller.gz")

    # ActionOnFailure CONTINUE: the next step ran; the cluster (kept alive) waits for more.
    assert steps["next"]["Status"]["State"] == "COMPLETED"
    assert "FailureDetails" not in steps["next"]["Status"]
    wait_until(lambda: cluster_state(cluster_id)["State"] == "WAITING", 10, "the cluster to wait")
    described = emr.describe_step(ClusterId=cluster_id, StepId=failed["Id"])["Step"]
    assert described["Status"]["FailureDetails"] == details


def test_cancel_and_wait_cancels_the_following_steps(
    make_cluster: Callable[..., str],
    wait_steps_ended: Callable[..., Dict[str, Any]],
    cluster_state: Callable[[str], Dict[str, Any]],
) -> None:
    cluster_id = make_cluster(
        [
            command_step("first", ["true"], "CANCEL_AND_WAIT"),
            command_step("breaks", ["false"], "CANCEL_AND_WAIT"),
            command_step("second", ["true"], "CANCEL_AND_WAIT"),
            command_step("third", ["true"], "CONTINUE"),
        ]
    )
    steps = wait_steps_ended(cluster_id)
    assert {name: step["Status"]["State"] for name, step in steps.items()} == {
        "first": "COMPLETED",
        "breaks": "FAILED",
        "second": "CANCELLED",
        "third": "CANCELLED",
    }
    assert steps["breaks"]["Status"]["FailureDetails"]["Reason"] == "Step command exited with status 1"
    wait_until(lambda: cluster_state(cluster_id)["State"] == "WAITING", 10, "the cluster to wait")


def test_terminate_cluster_on_failure_ends_terminated_with_errors(
    emr: Any,
    make_cluster: Callable[..., str],
    wait_steps_ended: Callable[..., Dict[str, Any]],
    cluster_state: Callable[[str], Dict[str, Any]],
) -> None:
    cluster_id = make_cluster(
        [command_step("breaks", ["false"], "TERMINATE_CLUSTER"), command_step("never", ["true"], "CONTINUE")]
    )
    steps = wait_steps_ended(cluster_id)
    assert steps["breaks"]["Status"]["State"] == "FAILED"
    assert steps["never"]["Status"]["State"] == "CANCELLED"
    status = wait_until(
        lambda: (s := cluster_state(cluster_id))["State"] in CLUSTER_ENDED and s,
        15,
        "the cluster to terminate",
    )
    assert status["State"] == "TERMINATED_WITH_ERRORS"
    assert status["StateChangeReason"]["Code"] == "STEP_FAILURE"


def test_auto_terminating_cluster_ends_after_its_steps(
    make_cluster: Callable[..., str], cluster_state: Callable[[str], Dict[str, Any]]
) -> None:
    cluster_id = make_cluster(
        [command_step("only", ["true"])],
        Instances={
            "InstanceGroups": [
                {
                    "Name": "p",
                    "Market": "ON_DEMAND",
                    "InstanceRole": "MASTER",
                    "InstanceType": "m5.xlarge",
                    "InstanceCount": 1,
                }
            ],
            "KeepJobFlowAliveWhenNoSteps": False,
        },
    )
    status = wait_until(
        lambda: (s := cluster_state(cluster_id))["State"] in CLUSTER_ENDED and s,
        15,
        "the cluster to terminate",
    )
    assert (status["State"], status["StateChangeReason"]["Code"]) == ("TERMINATED", "ALL_STEPS_COMPLETED")


@pytest.mark.parametrize("concurrency", [1, 2])
def test_step_concurrency_level(
    concurrency: int,
    make_cluster: Callable[..., str],
    wait_steps_ended: Callable[..., Dict[str, Any]],
) -> None:
    nap = ["sleep", "1.5"]
    cluster_id = make_cluster(
        [command_step("a", nap), command_step("b", nap), command_step("c", nap)],
        StepConcurrencyLevel=concurrency,
    )
    steps = wait_steps_ended(cluster_id, timeout_s=30)
    assert all(step["Status"]["State"] == "COMPLETED" for step in steps.values())
    timeline = {name: step["Status"]["Timeline"] for name, step in steps.items()}
    a, b, c = (timeline[name] for name in "abc")
    if concurrency == 1:  # strictly one after the other, in submission order
        assert a["EndDateTime"] <= b["StartDateTime"] and b["EndDateTime"] <= c["StartDateTime"]
    else:  # a and b together; c waits for a free slot
        assert b["StartDateTime"] < a["EndDateTime"]
        assert c["StartDateTime"] >= min(a["EndDateTime"], b["EndDateTime"])


def test_modify_cluster_raises_the_concurrency(
    emr: Any, make_cluster: Callable[..., str], steps_of: Callable[[str], Dict[str, Any]]
) -> None:
    cluster_id = make_cluster([command_step("a", ["sleep", "30"]), command_step("b", ["sleep", "30"])])
    wait_until(lambda: steps_of(cluster_id)["a"]["Status"]["State"] == "RUNNING", 10, "step a to run")
    assert steps_of(cluster_id)["b"]["Status"]["State"] == "PENDING"
    emr.modify_cluster(ClusterId=cluster_id, StepConcurrencyLevel=2)
    wait_until(lambda: steps_of(cluster_id)["b"]["Status"]["State"] == "RUNNING", 10, "step b to run")


def test_cancel_steps_cancels_pending_and_running_steps(
    emr: Any, make_cluster: Callable[..., str], steps_of: Callable[[str], Dict[str, Any]]
) -> None:
    cluster_id = make_cluster([command_step("long", ["sleep", "300"]), command_step("queued", ["true"])])
    wait_until(
        lambda: steps_of(cluster_id)["long"]["Status"]["State"] == "RUNNING", 10, "the long step to run"
    )
    steps = steps_of(cluster_id)
    infos = emr.cancel_steps(ClusterId=cluster_id, StepIds=[steps["queued"]["Id"], steps["long"]["Id"]])
    assert [info["Status"] for info in infos["CancelStepsInfoList"]] == ["SUBMITTED", "SUBMITTED"]
    wait_until(
        lambda: {s["Status"]["State"] for s in steps_of(cluster_id).values()} == {"CANCELLED"},
        20,
        "both steps to be cancelled",
    )


def test_terminating_a_cluster_kills_its_running_step(
    emr: Any,
    local_stack: Any,
    make_cluster: Callable[..., str],
    steps_of: Callable[[str], Dict[str, Any]],
    cluster_state: Callable[[str], Dict[str, Any]],
) -> None:
    from local_aws.http import get_json

    cluster_id = make_cluster([command_step("long", ["bash", "-c", "sleep 300 & sleep 301; wait"])])
    wait_until(
        lambda: steps_of(cluster_id)["long"]["Status"]["State"] == "RUNNING", 10, "the long step to run"
    )
    step_id = steps_of(cluster_id)["long"]["Id"]

    def step_pid() -> Any:
        health = get_json(f"{local_stack.emr_url}/_local_emr/health") or {}
        return next((s["pid"] for s in health.get("running_steps", []) if s["step_id"] == step_id), None)

    leader = psutil.Process(wait_until(step_pid, 10, "the step's process"))
    group = [leader, *wait_until(lambda: leader.children(recursive=True), 5, "the step's children")]

    started = time.monotonic()
    emr.terminate_job_flows(JobFlowIds=[cluster_id])
    assert cluster_state(cluster_id)["State"] in ("TERMINATING", "TERMINATED")
    status = wait_until(
        lambda: (s := cluster_state(cluster_id))["State"] in CLUSTER_ENDED and s,
        20,
        "the cluster to terminate",
    )
    assert (status["State"], status["StateChangeReason"]["Code"]) == ("TERMINATED", "USER_REQUEST")
    assert time.monotonic() - started < 15
    assert steps_of(cluster_id)["long"]["Status"]["State"] == "CANCELLED"
    # The whole process group is gone (bash and both sleeps), not only the process the runner started.
    for process in group:
        assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE, process

    # A terminated cluster takes no new steps, as on EMR.
    with pytest.raises(ClientError, match="ValidationException"):
        emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[command_step("late", ["true"])])


def test_unsupported_and_missing_commands_fail_clearly(
    make_cluster: Callable[..., str], wait_steps_ended: Callable[..., Dict[str, Any]]
) -> None:
    custom_jar = {"Name": "custom", "ActionOnFailure": "CONTINUE", "HadoopJarStep": {"Jar": "s3://b/app.jar"}}
    cluster_id = make_cluster([custom_jar, command_step("missing", ["no-such-command-recsys"])])
    steps = wait_steps_ended(cluster_id)
    assert steps["custom"]["Status"]["FailureDetails"]["Reason"] == "Unsupported step"
    assert "command-runner.jar" in steps["custom"]["Status"]["FailureDetails"]["Message"]
    missing = steps["missing"]["Status"]["FailureDetails"]
    assert missing["Reason"] == "Step command could not be started"
    assert "no-such-command-recsys" in missing["Message"]
