"""The local EMR endpoint's failure-path parts without servers: YARN ids and launcher output, cluster
mode detection, the ActionOnFailure and IdleTimeout rules, and the step runner driven by an injected
clock (idle auto-termination, delayed container logs) with a fake ``spark-submit`` and logs in memory.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Dict, List

import pytest
from local_emr import yarn
from local_emr.command import local_command, requested_deploy_mode, split_spark_submit
from local_emr.config import RunnerConfig, load_config
from local_emr.idle import IdleClock, validate_idle_timeout
from local_emr.moto_hooks import check_action_on_failure, idle_timeout_of
from local_emr.runner import IDLE_CODE, UNKNOWN_ERROR, StepRunner
from local_emr.step_logs import container_log_prefix, failure_message
from moto.emr.exceptions import ValidationException

pytestmark = [pytest.mark.localstack, pytest.mark.unit]

APP = yarn.yarn_app(1_700_000_000_000, 7)
FAILED_LINE = (
    'Exception in thread "main" org.apache.spark.SparkException: '
    "Application application_1700000000000_0007 finished with failed status"
)


# --- ids and the launcher's output --------------------------------------------------------------------


def test_yarn_ids_have_yarns_format() -> None:
    assert APP.application_id == "application_1700000000000_0007"
    assert APP.container_id == "container_1700000000000_0007_01_000001"
    assert yarn.yarn_app(1, 12345).application_id == "application_1_12345"  # at least four digits
    with pytest.raises(ValueError):
        yarn.yarn_app(1, 0)
    naive = dt.datetime(2024, 1, 1, 0, 0, 0, 250_000)  # moto's utcnow(): naive UTC
    assert yarn.epoch_ms(naive) == 1_704_067_200_250
    assert yarn.epoch_ms(naive.replace(tzinfo=dt.timezone.utc)) == 1_704_067_200_250


def test_failed_application_launcher_output(tmp_path: Path) -> None:
    text = yarn.launcher_output(APP, submitted_s=1_700_000_100.0, ended_s=1_700_000_165.0, exit_code=1)
    lines = text.splitlines()
    assert lines[0].startswith("23/11/14 22:15:00 INFO DefaultNoHARMFailoverProxyProvider: Connecting")
    assert f"23/11/14 22:15:00 INFO YarnClientImpl: Submitted application {APP.application_id}" in lines
    reports = [line for line in lines if "Application report for" in line]
    # ACCEPTED, RUNNING, then one line per 30 reports (+32 s, +62 s) while nothing changes, FINISHED.
    assert [line.rsplit("(state: ", 1)[1] for line in reports] == [
        "ACCEPTED)",
        "RUNNING)",
        "RUNNING)",
        "RUNNING)",
        "FINISHED)",
    ]
    assert (
        "\t final status: FAILED" in lines
        and "\t diagnostics: User application exited with status 1" in lines
    )
    assert FAILED_LINE in lines and yarn.failed_status_line(APP) == FAILED_LINE
    assert lines[-2].endswith("INFO ShutdownHookManager: Shutdown hook called")
    # EMR's FailureDetails.Message for such a step: the launcher's exception line, found as before.
    (tmp_path / "stderr").write_text(text)
    (tmp_path / "stdout").write_text("")
    assert failure_message(tmp_path, 1) == FAILED_LINE


def test_succeeded_and_killed_application_launcher_output() -> None:
    ok = yarn.launcher_output(APP, 1_700_000_100.0, 1_700_000_100.4, exit_code=0)
    assert "\t final status: SUCCEEDED" in ok and "Exception" not in ok and "ERROR" not in ok
    killed = yarn.launcher_output(APP, 1_700_000_100.0, 1_700_000_110.0, exit_code=-15, killed=True)
    assert "(state: RUNNING)" in killed and "FINISHED" not in killed and "Exception" not in killed
    assert killed.rstrip().splitlines()[-2].endswith("Shutdown hook called")


def test_cluster_mode_is_detected_as_spark_submit_does(tmp_path: Path) -> None:
    def mode(*args: str) -> str:
        return requested_deploy_mode(split_spark_submit(list(args))[0])

    assert mode("--deploy-mode", "cluster", "app.py") == "cluster"
    assert mode("--conf", "spark.submit.deployMode=cluster", "app.py") == "cluster"
    assert mode("--conf=spark.submit.deployMode=cluster", "app.py") == "cluster"
    # The option wins over the conf, whatever their order; nothing given: client.
    assert mode("--conf", "spark.submit.deployMode=cluster", "--deploy-mode", "client", "x.py") == "client"
    assert mode("--deploy-mode", "client", "--conf", "spark.submit.deployMode=cluster", "x.py") == "client"
    assert mode("app.py", "--deploy-mode", "cluster") == "client"  # the application's own argument
    config = _config(tmp_path)
    assert local_command(
        "command-runner.jar", ["spark-submit", "--deploy-mode", "cluster", "a.py"], config, {}
    ).cluster_mode
    assert not local_command("command-runner.jar", ["spark-submit", "a.py"], config, {}).cluster_mode
    assert not local_command(
        "command-runner.jar", ["bash", "-c", "--deploy-mode cluster"], config, {}
    ).cluster_mode


def test_container_log_layout_and_delay_setting(tmp_path: Path) -> None:
    assert container_log_prefix("s3://logs/emr-logs/", "j-1", APP.application_id, APP.container_id) == (
        "logs",
        f"emr-logs/j-1/containers/{APP.application_id}/{APP.container_id}/",
    )
    assert load_config({}).container_log_delay_s == 300.0  # EMR-like: minutes
    assert load_config({"LOCAL_EMR_CONTAINER_LOG_DELAY_S": "2.5"}).container_log_delay_s == 2.5
    for bad in ("-1", "soon"):
        with pytest.raises(ValueError, match="LOCAL_EMR_CONTAINER_LOG_DELAY_S"):
            load_config({"LOCAL_EMR_CONTAINER_LOG_DELAY_S": bad})


# --- what EMR refuses -------------------------------------------------------------------------------


def test_concurrent_clusters_accept_only_continue() -> None:
    check_action_on_failure([{"name": "a", "action_on_failure": "TERMINATE_CLUSTER"}], 1)
    check_action_on_failure([{"name": "a", "action_on_failure": "CONTINUE"}], 5)
    for action in ("CANCEL_AND_WAIT", "TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW", None):
        with pytest.raises(ValidationException, match="ActionOnFailure"):
            check_action_on_failure([{"name": "a", "action_on_failure": action}], 2)


@pytest.mark.parametrize(
    ("value", "ok"), [(59, False), (60, True), (604_800, True), (604_801, False), ("x", False)]
)
def test_idle_timeout_range(value: Any, ok: bool) -> None:
    if ok:
        assert validate_idle_timeout(value) == value
        assert idle_timeout_of({"IdleTimeout": value}) == value
    else:
        with pytest.raises(ValidationException, match="IdleTimeout"):
            idle_timeout_of({"IdleTimeout": value})
    assert idle_timeout_of(None) is None


def test_idle_clock_counts_from_idleness_or_the_policy_whichever_is_later() -> None:
    idle = IdleClock()
    assert not idle.expired(False, 0.0)  # no policy: never
    idle.set_policy(60, now=100.0)  # idle since 0, policy since 100
    assert not idle.expired(False, 159.9)
    assert idle.expired(False, 160.0)
    assert not idle.expired(True, 161.0)  # a step runs: idleness starts over
    assert not idle.expired(False, 170.0)
    assert not idle.expired(False, 229.9)
    assert idle.expired(False, 230.0)
    idle.set_policy(None, now=231.0)
    assert not idle.expired(False, 10_000.0)


# --- the runner, with an injected clock -------------------------------------------------------------


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class MemoryLogs:
    """A LogStore keeping what was delivered, by URI (the file contents at delivery time)."""

    def __init__(self) -> None:
        self.objects: Dict[str, bytes] = {}

    def _keep(self, uri: str, log_dir: Path, names: List[str]) -> None:
        for name in names:
            path = log_dir / name
            self.objects[f"{uri}{name}"] = path.read_bytes() if path.exists() else b""

    def step_logs(self, log_uri: str, cluster_id: str, step_id: str, log_dir: Path) -> str:
        uri = f"{log_uri.rstrip('/')}/{cluster_id}/steps/{step_id}/"
        self._keep(uri, log_dir, ["controller", "stderr", "stdout"])
        return f"{uri}stderr"

    def container_logs(
        self, log_uri: str, cluster_id: str, application_id: str, container_id: str, log_dir: Path
    ) -> str:
        uri = f"{log_uri.rstrip('/')}/{cluster_id}/containers/{application_id}/{container_id}/"
        self._keep(uri, log_dir, ["stderr", "stdout"])
        return uri

    def text(self, suffix: str) -> str:
        return "".join(data.decode() for uri, data in self.objects.items() if uri.endswith(suffix))


def _config(tmp_path: Path, delay_s: float = 300.0) -> RunnerConfig:
    return RunnerConfig(
        localstack_url="http://127.0.0.1:1",
        dynamodb_url="http://127.0.0.1:1",
        region="us-east-1",
        access_key="test",
        secret_key="test",
        work_dir=tmp_path / "emr",
        jars=(),
        python=tmp_path / "bin" / "python",  # spark-submit is looked up next to it
        spark_conf_dir=tmp_path,
        container_log_delay_s=delay_s,
    )


def _step(step_id: str, args: List[str], action: str = "CONTINUE") -> SimpleNamespace:
    return SimpleNamespace(
        id=step_id,
        name=step_id,
        jar="command-runner.jar",
        args=args,
        state="PENDING",
        action_on_failure=action,
        start_date_time=None,
        end_date_time=None,
    )


def _cluster(steps: List[SimpleNamespace], level: int = 1) -> SimpleNamespace:
    """What the runner reads of a moto Cluster (a kept-alive cluster with a LogUri)."""
    return SimpleNamespace(
        id="j-UNITTEST",
        state="WAITING",
        steps=steps,
        step_concurrency_level=level,
        keep_job_flow_alive_when_no_steps=True,
        log_uri="s3://logs/emr/",
        creation_datetime=dt.datetime(2024, 1, 1),
    )


@pytest.fixture
def make_runner(tmp_path: Path) -> Callable[..., Any]:
    """``make_runner(delay_s)`` -> (runner, clock, logs); a fake spark-submit in ``tmp_path/bin``:
    it prints a line, then fails as a job of ours does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "spark-submit"
    fake.write_text('#!/bin/sh\necho "driver says hello"\necho "FAILED demo: no input" >&2\nexit 1\n')
    fake.chmod(0o755)
    (tmp_path / "emr").mkdir()

    def make(delay_s: float = 300.0) -> Any:
        clock, logs = FakeClock(), MemoryLogs()
        return StepRunner(_config(tmp_path, delay_s), clock=clock, logs=logs), clock, logs

    return make


def _tick_until(runner: StepRunner, done: Callable[[], bool], timeout_s: float = 15.0) -> None:
    """Tick (the clock stays put) until ``done()``; the step processes run for real meanwhile."""
    deadline = time.monotonic() + timeout_s
    while True:
        runner.tick()
        if done():
            with runner.lock:  # a step's thread changes state and pending logs in one locked block
                return
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_idle_cluster_terminates_after_its_idle_timeout(make_runner: Callable[..., Any]) -> None:
    runner, clock, _ = make_runner()
    step = _step("s-1", ["true"])
    cluster = _cluster([step])
    runner.track(cluster, idle_timeout_s=60)
    runner.tick()
    assert step.state in ("RUNNING", "COMPLETED")
    clock.now = 1_000.0  # a running step is never idle time, however long it takes
    _tick_until(runner, lambda: step.state == "COMPLETED" and cluster.state == "WAITING")  # idle from 1000
    clock.now = 1_059.5
    runner.tick()
    assert cluster.state == "WAITING"
    clock.now = 1_060.0
    runner.tick()
    assert cluster.state == "TERMINATING"
    runner.tick()
    assert cluster.state == "TERMINATED"
    assert cluster.state_change_code == IDLE_CODE
    assert "auto-termination policy" in cluster.last_state_change_reason


def test_cluster_mode_step_logs_and_delayed_driver_log(make_runner: Callable[..., Any]) -> None:
    runner, clock, logs = make_runner(delay_s=300.0)
    step = _step("s-1", ["spark-submit", "--deploy-mode", "cluster", "--master", "yarn", "job.py"])
    cluster = _cluster([step])
    runner.track(cluster)
    _tick_until(runner, lambda: step.state == "FAILED")
    app = yarn.yarn_app(yarn.epoch_ms(cluster.creation_datetime), 1)

    # FailureDetails from the launcher's output, as EMR gives them; the job's own line is not there.
    assert step.failure_details == {
        "Reason": UNKNOWN_ERROR,
        "Message": yarn.failed_status_line(app),
        "LogFile": f"s3://logs/emr/j-UNITTEST/steps/{step.id}/stderr",
    }
    step_stderr = logs.text(f"/steps/{step.id}/stderr")
    assert f"Submitting application {app.application_id} to ResourceManager" in step_stderr
    assert f"Application report for {app.application_id} (state: FINISHED)" in step_stderr
    assert logs.text(f"/steps/{step.id}/stdout") == ""
    step_logs_text = "".join(data.decode() for data in logs.objects.values())
    assert "FAILED demo" not in step_logs_text and "FAILED demo" not in str(step.failure_details)

    # The driver's output arrives only after the delay, counted from the final state.
    container = f"/containers/{app.application_id}/{app.container_id}/"
    clock.now = 299.9
    runner.tick()
    assert not any(container in uri for uri in logs.objects)
    assert runner.pending_container_logs() == 1
    clock.now = 300.0
    runner.tick()
    assert logs.text(f"{container}stdout") == "driver says hello\n"
    assert logs.text(f"{container}stderr") == "FAILED demo: no input\n"
    assert runner.pending_container_logs() == 0

    # Sequence numbers go on per cluster.
    second = _step("s-2", ["spark-submit", "--conf", "spark.submit.deployMode=cluster", "job.py"])
    cluster.steps.append(second)
    _tick_until(runner, lambda: second.state == "FAILED")
    assert "application_1704067200000_0002" in logs.text(f"/steps/{second.id}/stderr")


def test_terminating_the_cluster_does_not_hurry_the_driver_log(make_runner: Callable[..., Any]) -> None:
    runner, clock, logs = make_runner(delay_s=300.0)
    step = _step("s-1", ["spark-submit", "--deploy-mode", "cluster", "job.py"])
    cluster = _cluster([step])
    runner.track(cluster)
    _tick_until(runner, lambda: step.state == "FAILED")
    runner.request_termination(cluster, "USER_REQUEST", "Terminated by user request")
    runner.tick()
    assert cluster.state == "TERMINATED"
    assert not any("/containers/" in uri for uri in logs.objects)
    clock.now = 300.0
    runner.tick()
    assert any(uri.endswith("/stdout") and "/containers/" in uri for uri in logs.objects)


def test_shutdown_delivers_pending_driver_logs(make_runner: Callable[..., Any]) -> None:
    runner, _, logs = make_runner(delay_s=300.0)
    step = _step("s-1", ["spark-submit", "--deploy-mode", "cluster", "job.py"])
    runner.track(_cluster([step]))
    _tick_until(runner, lambda: step.state == "FAILED")
    runner.shutdown()
    assert any("/containers/" in uri for uri in logs.objects)
    assert runner.pending_container_logs() == 0


def test_client_mode_and_plain_commands_keep_their_output(make_runner: Callable[..., Any]) -> None:
    runner, clock, logs = make_runner(delay_s=0.0)
    client = _step("s-1", ["spark-submit", "job.py"])
    plain = _step("s-2", ["bash", "-c", "echo out; echo 'FAILED plain: x' >&2; exit 3"])
    cluster = _cluster([client, plain])
    runner.track(cluster)
    _tick_until(runner, lambda: client.state == "FAILED" and plain.state == "FAILED")
    assert client.failure_details["Message"] == "FAILED demo: no input"
    assert client.failure_details["Reason"] == "Step command exited with status 1"
    assert plain.failure_details["Message"] == "FAILED plain: x"
    assert logs.text("/steps/s-2/stdout") == "out\n"
    clock.now = 1_000.0
    runner.tick()
    assert not any("/containers/" in uri for uri in logs.objects)


def test_action_on_failure_does_not_act_while_the_concurrency_is_above_one(
    make_runner: Callable[..., Any],
) -> None:
    runner, _, _ = make_runner()
    breaks = _step("s-1", ["false"], "TERMINATE_CLUSTER")
    cluster = _cluster([breaks], level=2)  # as after ModifyCluster raised it under the step
    runner.track(cluster)
    _tick_until(runner, lambda: breaks.state == "FAILED")
    runner.tick()
    assert cluster.state == "WAITING"
