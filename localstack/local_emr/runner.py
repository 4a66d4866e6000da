"""The step runner: moves moto's EMR steps through their states by really running them.

States as on EMR: a step is PENDING until a slot is free (at most ``StepConcurrencyLevel`` RUNNING per
cluster, in submission order), RUNNING while its process runs, then COMPLETED (exit status 0), FAILED
(non-zero, or it could not run; FailureDetails set) or CANCELLED (CancelSteps, a failure action, or the
cluster's termination). On failure, ActionOnFailure decides: CONTINUE runs the next steps,
CANCEL_AND_WAIT cancels the pending ones and the cluster waits, TERMINATE_CLUSTER (or the legacy
TERMINATE_JOB_FLOW) cancels them and terminates the cluster (TERMINATED_WITH_ERRORS). A cluster is
RUNNING while it has a running step, else WAITING; one launched without KeepJobFlowAliveWhenNoSteps
terminates once it has nothing left to do, one with an AutoTerminationPolicy once it has been idle for
its IdleTimeout (local_emr.idle). While StepConcurrencyLevel is above 1 (ModifyCluster can raise it
under a step that has another action), ActionOnFailure does not act, as EMR documents; with level 1
but other steps still running (the level was lowered), TERMINATE_CLUSTER acts and CANCEL_AND_WAIT not.

Cluster-mode spark-submit steps (local_emr.yarn) get a simulated YARN application: the process's
output becomes the driver's container log, delivered ``container_log_delay_s`` after the step's final
state, whatever the cluster does meanwhile (at the latest when the endpoint shuts down), and the step's
own stdout/stderr hold what the spark-submit launcher prints in cluster mode.

Concurrency: one scheduler thread plus one thread per running step; every change to moto's objects
happens under ``StepRunner.lock`` (the HTTP handlers that change them take it too, see moto_hooks).
S3 uploads happen outside the lock. Time (idleness, log delays) comes from the injected ``clock``
(monotonic seconds), so tests can drive it with ``tick()`` and no scheduler thread.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from local_aws.proc import terminate_group
from moto.core.utils import utcnow

from local_emr import step_logs, yarn
from local_emr.command import UnsupportedStep, local_command
from local_emr.config import RunnerConfig
from local_emr.execution import StepExecution
from local_emr.idle import IdleClock, is_busy

LOG = logging.getLogger("local_emr.runner")

ENDED = frozenset({"TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS"})
TERMINATE_ACTIONS = frozenset({"TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW"})
TICK_S = 0.5  # scheduler wake-up without notification: a safety net, state changes notify it at once
# EMR's FailureDetails.Reason when it cannot name a root cause (API reference): a cluster-mode step's
# launcher only says that the application failed.
UNKNOWN_ERROR = "Unknown Error"
# ClusterStateChangeReasonCode has no value for idleness; EMR's exact code and text for an
# auto-terminated cluster are not documented (see localstack/README.md).
IDLE_CODE = "ALL_STEPS_COMPLETED"
SHUTDOWN_FLUSH_S = 15.0  # at most this long to deliver pending container logs when the endpoint stops


@dataclasses.dataclass
class PendingContainerLog:
    """A cluster-mode step's driver output, to be uploaded at ``due`` (runner clock seconds)."""

    cluster_id: str
    step_id: str
    log_uri: str
    app: yarn.YarnApp
    source_dir: Path
    due: float


class StepRunner:
    """Runs the steps of every cluster created through the endpoint (see the module docstring)."""

    def __init__(
        self,
        config: RunnerConfig,
        clock: Callable[[], float] = time.monotonic,
        logs: Optional[step_logs.LogStore] = None,
    ) -> None:
        self.config = config
        self.clock = clock  # monotonic seconds: idleness and container-log delays
        self.logs: step_logs.LogStore = logs or step_logs.S3LogStore(config)
        self.lock = threading.RLock()
        self._wake = threading.Condition(self.lock)
        self._kicked = False  # a notify() since the scheduler last looked
        self._clusters: Dict[str, Any] = {}  # cluster id -> moto Cluster
        self._executions: Dict[str, StepExecution] = {}  # step id -> running step
        self._idle: Dict[str, IdleClock] = {}  # cluster id -> its idle time
        self._yarn_sequence: Dict[str, int] = {}  # cluster id -> YARN applications submitted so far
        self._container_logs: List[PendingContainerLog] = []  # not yet delivered, nor being delivered
        self._uploading: Dict[str, int] = {}  # cluster id -> container-log uploads in flight
        self._threads: List[threading.Thread] = []
        self._stopping = False
        self._scheduler = threading.Thread(target=self._loop, name="step-scheduler", daemon=True)

    # --- lifecycle, and what the moto hooks call (from HTTP handler threads) -------------------------

    def start(self) -> None:
        """Start the scheduler. Step directories of earlier runs go: their clusters died with that process."""
        self.config.work_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.config.work_dir.glob("j-*"):
            shutil.rmtree(stale, ignore_errors=True)
        self._write_running_file()
        self._scheduler.start()

    def track(self, cluster: Any, idle_timeout_s: Optional[int] = None) -> None:
        """Take charge of a cluster just created by RunJobFlow (its steps are all PENDING), with its
        auto-termination policy's IdleTimeout in seconds (None: no policy)."""
        with self.lock:
            self._clusters[cluster.id] = cluster
            self._idle[cluster.id] = IdleClock()
            self._idle[cluster.id].set_policy(idle_timeout_s, self.clock())
            self.notify()

    def notify(self) -> None:
        with self._wake:
            self._kicked = True
            self._wake.notify_all()

    def set_auto_termination(self, cluster: Any, idle_timeout_s: Optional[int]) -> None:
        """PutAutoTerminationPolicy (seconds) / RemoveAutoTerminationPolicy (None); counts from now."""
        with self.lock:
            self._idle.setdefault(cluster.id, IdleClock()).set_policy(idle_timeout_s, self.clock())
            self.notify()

    def auto_termination(self, cluster: Any) -> Optional[int]:
        """The IdleTimeout (seconds) of the cluster's auto-termination policy, or None."""
        with self.lock:
            idle = self._idle.get(cluster.id)
            return idle.timeout_s if idle else None

    def request_termination(self, cluster: Any, code: str, message: str, with_errors: bool = False) -> None:
        """Terminate ``cluster``: cancel pending steps, kill running ones, then TERMINATED(_WITH_ERRORS)."""
        with self.lock:
            if cluster.state in ENDED:
                return
            cluster.state = "TERMINATING"
            cluster.last_state_change_reason = message
            cluster.state_change_code = code
            cluster.local_with_errors = with_errors
            self._cancel_pending(cluster, f"Cancelled: the cluster is terminating ({message})")
            for execution in self._executions_of(cluster.id):
                self._kill_async(execution, f"cluster terminating ({code})")
            self.notify()

    def cancel_steps(self, cluster: Any, step_ids: List[str]) -> List[Dict[str, str]]:
        """CancelSteps: PENDING steps are CANCELLED now, RUNNING ones once killed (CANCEL_PENDING first)."""
        infos = []
        with self.lock:
            steps = {step.id: step for step in cluster.steps}
            for step_id in step_ids:
                step = steps.get(step_id)
                if step is None:
                    infos.append({"StepId": step_id, "Status": "FAILED", "Reason": "No such step"})
                elif step.state == "PENDING":
                    self._end_step(step, "CANCELLED", "Cancelled by CancelSteps")
                    infos.append({"StepId": step_id, "Status": "SUBMITTED", "Reason": ""})
                elif step.state == "RUNNING" and step_id in self._executions:
                    step.state = "CANCEL_PENDING"
                    self._kill_async(self._executions[step_id], "Cancelled by CancelSteps")
                    infos.append({"StepId": step_id, "Status": "SUBMITTED", "Reason": ""})
                else:
                    reason = f"Step is {step.state}: only PENDING or RUNNING steps can be cancelled"
                    infos.append({"StepId": step_id, "Status": "FAILED", "Reason": reason})
            self.notify()
        return infos

    def running_steps(self) -> List[Dict[str, Any]]:
        """Running steps with their process-group PIDs (the health endpoint shows these)."""
        with self.lock:
            return [
                {
                    "cluster_id": e.cluster_id,
                    "step_id": e.step_id,
                    "pid": e.pid,
                    "application_id": e.yarn_app.application_id if e.yarn_app else None,
                }
                for e in self._executions.values()
                if e.pid is not None
            ]

    def cluster_count(self) -> int:
        return len(self._clusters)

    def pending_container_logs(self) -> int:
        """Container logs not delivered yet (waiting for their delay, or being uploaded)."""
        with self.lock:
            return len(self._container_logs) + sum(self._uploading.values())

    def shutdown(self) -> None:
        """Stop scheduling, kill every running step's process group, then deliver the container logs
        still pending, delay or not (so that nothing is lost; at most SHUTDOWN_FLUSH_S); returns when done."""
        with self.lock:
            self._stopping = True
            executions = list(self._executions.values())
            self.notify()
        killers = [
            threading.Thread(target=e.kill, args=("endpoint shutting down", self.config.kill_grace_s))
            for e in executions
        ]
        for killer in killers:
            killer.start()
        for thread in [*killers, *self._threads]:
            thread.join(timeout=self.config.kill_grace_s + 15)
        if self._scheduler.is_alive():  # it may be delivering logs right now: let it finish
            self._scheduler.join(timeout=SHUTDOWN_FLUSH_S + 30)
        with self.lock:
            pending, self._container_logs = self._container_logs, []
        deadline = time.monotonic() + SHUTDOWN_FLUSH_S
        for entry in pending:
            if time.monotonic() > deadline:
                LOG.warning("shutdown: container logs of step %s not delivered (out of time)", entry.step_id)
                continue
            self._deliver_container_log(entry)
        self._write_running_file()

    # --- the scheduler ------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._wake:
                if self._stopping:
                    return
            try:
                self.tick()
            except Exception:  # a bug here must not silently stop every cluster's progress
                LOG.exception("scheduler error")
            with self._wake:
                if self._stopping:
                    return
                if not self._kicked:
                    self._wake.wait(timeout=TICK_S)
                self._kicked = False

    def tick(self) -> None:
        """One scheduling pass over every cluster, then the container-log uploads that are due."""
        with self.lock:
            for cluster in list(self._clusters.values()):
                try:
                    self._schedule(cluster)
                except Exception:  # one broken cluster must not stop the others
                    LOG.exception("scheduler error on cluster %s", cluster.id)
            now = self.clock()
            due = [entry for entry in self._container_logs if entry.due <= now]
            self._container_logs = [entry for entry in self._container_logs if entry.due > now]
            for entry in due:
                self._uploading[entry.cluster_id] = self._uploading.get(entry.cluster_id, 0) + 1
        for entry in due:
            try:
                self._deliver_container_log(entry)
            finally:
                with self.lock:
                    self._uploading[entry.cluster_id] -= 1

    def _schedule(self, cluster: Any) -> None:
        """One scheduling pass over ``cluster`` (under the lock)."""
        active = self._executions_of(cluster.id)
        if cluster.state == "TERMINATING":
            # Pending container logs keep their due time: EMR's last log push happens during a
            # termination that takes minutes, here it takes a second, so hurrying them would make the
            # driver's log appear far earlier than on EMR.
            if not active:
                cluster.state = (
                    "TERMINATED_WITH_ERRORS" if getattr(cluster, "local_with_errors", False) else "TERMINATED"
                )
                cluster.end_datetime = utcnow()
                LOG.info("cluster %s %s (%s)", cluster.id, cluster.state, cluster.last_state_change_reason)
            return
        if cluster.state in ENDED:
            return
        slots = max(1, int(cluster.step_concurrency_level or 1)) - len(active)
        for step in [s for s in cluster.steps if s.state == "PENDING"][: max(0, slots)]:
            self._start_step(cluster, step)
        busy = bool(self._executions_of(cluster.id)) or is_busy(cluster.steps)
        idle = self._idle.setdefault(cluster.id, IdleClock())
        if busy:
            idle.expired(True, self.clock())
            cluster.state = "RUNNING"
        elif cluster.steps and not cluster.keep_job_flow_alive_when_no_steps:
            failed = any(step.state == "FAILED" for step in cluster.steps)
            message = "Steps completed with errors" if failed else "Steps completed"
            self.request_termination(cluster, "ALL_STEPS_COMPLETED", message)
        elif idle.expired(False, self.clock()):
            message = (
                "Terminated by the auto-termination policy: idle for its IdleTimeout "
                f"of {idle.timeout_s} seconds"
            )
            LOG.info("cluster %s idle for %s s: terminating", cluster.id, idle.timeout_s)
            self.request_termination(cluster, IDLE_CODE, message)
        else:
            cluster.state = "WAITING"

    def _start_step(self, cluster: Any, step: Any) -> None:
        step.state = "RUNNING"
        step.start_date_time = utcnow()
        log_dir = self.config.work_dir / cluster.id / step.id
        try:
            command = local_command(step.jar, list(step.args), self.config, os.environ)
        except UnsupportedStep as error:
            log_dir.mkdir(parents=True, exist_ok=True)
            (log_dir / "stderr").write_text(f"{error}\n", encoding="utf-8")
            self._fail(
                cluster, step, "Unsupported step", str(error), self._upload_logs(cluster, step, log_dir)
            )
            return
        app: Optional[yarn.YarnApp] = None
        output_dir = log_dir
        if command.cluster_mode:
            app = self._next_yarn_app(cluster)
            # No CONTAINER_ID in the environment, although YARN sets it: local Spark would then take
            # itself for a YARN container (and fail: "Yarn Local dirs can't be empty").
            output_dir = log_dir / "container"
        execution = StepExecution(cluster.id, step.id, command, log_dir, output_dir, app)
        self._executions[step.id] = execution
        thread = threading.Thread(target=self._run, args=(cluster, step, execution), name=f"step-{step.id}")
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        LOG.info(
            "cluster %s step %s (%s) RUNNING%s: %s",
            cluster.id,
            step.id,
            step.name,
            f" as {app.application_id}" if app else "",
            " ".join(command.argv),
        )

    def _next_yarn_app(self, cluster: Any) -> yarn.YarnApp:
        """The next YARN application of ``cluster`` (its ResourceManager started with the cluster)."""
        sequence = self._yarn_sequence.get(cluster.id, 0) + 1
        self._yarn_sequence[cluster.id] = sequence
        return yarn.yarn_app(yarn.epoch_ms(cluster.creation_datetime), sequence)

    # --- one step's thread ----------------------------------------------------------------------------

    def _run(self, cluster: Any, step: Any, execution: StepExecution) -> None:
        code: Optional[int] = None
        start_error: Optional[str] = None
        try:
            execution.start()
            with self.lock:
                self._write_running_file()
            code = execution.wait()
        except OSError as error:
            start_error = f"could not run {execution.command.argv[0]!r}: {error}"
            with open(execution.log_dir / "stderr", "a", encoding="utf-8") as handle:
                handle.write(start_error + "\n")
        if execution.pid is not None:
            # Stragglers of a step that exited (e.g. something it started in the background) go too.
            terminate_group(execution.pid, grace_s=2.0)
        killed = execution.kill_reason is not None and code != 0
        app = execution.yarn_app if execution.pid is not None else None
        if app is not None:
            self._write_launcher_output(execution, app, code, killed)
        log_file = self._upload_logs(cluster, step, execution.log_dir)
        with self.lock:
            self._executions.pop(step.id, None)
            self._write_running_file()
            # A step that had already exited 0 when the kill came keeps its outcome: it completed.
            if killed:
                self._end_step(step, "CANCELLED", f"Cancelled: {execution.kill_reason}")
            elif start_error is not None:
                self._fail(cluster, step, "Step command could not be started", start_error, log_file)
            elif code == 0:
                self._end_step(step, "COMPLETED", "")
            else:
                # In cluster mode the step's own log is the launcher's: EMR's summary comes from there
                # (the "... finished with failed status" exception), never from the driver's output.
                if app is not None:
                    reason = UNKNOWN_ERROR
                elif code is not None and code < 0:
                    reason = f"Step command killed by signal {-code}"
                else:
                    reason = f"Step command exited with status {code}"
                message = step_logs.failure_message(execution.log_dir, code)
                self._fail(cluster, step, reason, message, log_file)
            if app is not None and cluster.log_uri:
                # Registered only now that the final state is visible: the upload can never precede it.
                self._container_logs.append(
                    PendingContainerLog(
                        cluster_id=cluster.id,
                        step_id=step.id,
                        log_uri=cluster.log_uri,
                        app=app,
                        source_dir=execution.output_dir,
                        due=self.clock() + self.config.container_log_delay_s,
                    )
                )
            LOG.info("cluster %s step %s (%s) %s", cluster.id, step.id, step.name, step.state)
            self.notify()

    @staticmethod
    def _write_launcher_output(
        execution: StepExecution, app: yarn.YarnApp, code: Optional[int], killed: bool
    ) -> None:
        """The step's stdout/stderr as the cluster-mode launcher leaves them (the driver's are elsewhere)."""
        ended = execution.ended_epoch_s or time.time()
        text = yarn.launcher_output(app, execution.started_epoch_s, ended, code, killed=killed)
        (execution.log_dir / "stderr").write_text(text, encoding="utf-8")
        (execution.log_dir / "stdout").write_bytes(b"")

    def _deliver_container_log(self, entry: PendingContainerLog) -> None:
        """Upload one container's logs (outside the lock); a failure is logged, never raised."""
        try:
            uri = self.logs.container_logs(
                entry.log_uri,
                entry.cluster_id,
                entry.app.application_id,
                entry.app.container_id,
                entry.source_dir,
            )
            LOG.info("step %s: driver log delivered to %s", entry.step_id, uri)
        except Exception as error:  # a log upload problem must not stop the scheduler
            LOG.warning(
                "step %s: could not upload container logs to %s: %s", entry.step_id, entry.log_uri, error
            )

    def _upload_logs(self, cluster: Any, step: Any, log_dir: Any) -> Optional[str]:
        """Upload to ``<LogUri>/<cluster>/steps/<step>/``; the stderr.gz URI, or None (no LogUri, error)."""
        if not cluster.log_uri:
            return None
        try:
            return self.logs.step_logs(cluster.log_uri, cluster.id, step.id, log_dir)
        except Exception as error:  # a log upload problem must not hide the step's own outcome
            LOG.warning("step %s: could not upload logs to %s: %s", step.id, cluster.log_uri, error)
            return None

    # --- state changes (under the lock) -------------------------------------------------------------

    def _fail(self, cluster: Any, step: Any, reason: str, message: str, log_file: Optional[str]) -> None:
        details = {"Reason": reason, "Message": message}
        if log_file:
            details["LogFile"] = log_file
        step.failure_details = details
        self._end_step(step, "FAILED", message)
        action = step.action_on_failure
        level = int(cluster.step_concurrency_level or 1)
        if action != "CONTINUE" and level > 1:
            # EMR: "If the step concurrency level of a cluster is greater than one, step ActionOnFailure
            # feature will not activate" (ModifyCluster may have raised it under this step).
            LOG.info(
                "step %s: ActionOnFailure %s not applied (StepConcurrencyLevel %d)", step.id, action, level
            )
            return
        if action == "CANCEL_AND_WAIT":
            if self._executions_of(cluster.id):  # level lowered while several ran: EMR does not act
                LOG.info("step %s: CANCEL_AND_WAIT not applied (other steps still running)", step.id)
                return
            self._cancel_pending(
                cluster, f"Cancelled: step {step.id} ({step.name}) failed, ActionOnFailure {action}"
            )
        elif action in TERMINATE_ACTIONS:
            self.request_termination(
                cluster, "STEP_FAILURE", f"Shut down as step {step.id} ({step.name}) failed", with_errors=True
            )

    def _cancel_pending(self, cluster: Any, message: str) -> None:
        for step in cluster.steps:
            if step.state == "PENDING":
                self._end_step(step, "CANCELLED", message)

    @staticmethod
    def _end_step(step: Any, state: str, message: str) -> None:
        step.state = state
        step.end_date_time = utcnow()
        step.last_state_change_reason = message or None

    def _executions_of(self, cluster_id: str) -> List[StepExecution]:
        return [e for e in self._executions.values() if e.cluster_id == cluster_id]

    def _kill_async(self, execution: StepExecution, reason: str) -> None:
        """Kill in the background: the HTTP request (TerminateJobFlows, CancelSteps) must not wait for it."""
        thread = threading.Thread(
            target=execution.kill, args=(reason, self.config.kill_grace_s), name=f"kill-{execution.step_id}"
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _write_running_file(self) -> None:
        """Record running steps' process groups, so ``local_aws down`` can clean up after a SIGKILL."""
        entries = [
            {"cluster_id": e.cluster_id, "step_id": e.step_id, "pid": e.pid, "create_time": e.create_time}
            for e in self._executions.values()
            if e.pid is not None
        ]
        path = self.config.work_dir / "running-steps.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(entries), encoding="utf-8")
        tmp.replace(path)
