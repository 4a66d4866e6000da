"""The step runner: moves moto's EMR steps through their states by really running them.

States as on EMR: a step is PENDING until a slot is free (at most ``StepConcurrencyLevel`` RUNNING per
cluster, in submission order), RUNNING while its process runs, then COMPLETED (exit status 0), FAILED
(non-zero, or it could not run; FailureDetails set) or CANCELLED (CancelSteps, a failure action, or the
cluster's termination). On failure, ActionOnFailure decides: CONTINUE runs the next steps,
CANCEL_AND_WAIT cancels the pending ones and the cluster waits, TERMINATE_CLUSTER (or the legacy
TERMINATE_JOB_FLOW) cancels them and terminates the cluster (TERMINATED_WITH_ERRORS). A cluster is
RUNNING while it has a running step, else WAITING; one launched without KeepJobFlowAliveWhenNoSteps
terminates once it has nothing left to do.

Concurrency: one scheduler thread plus one thread per running step; every change to moto's objects
happens under ``StepRunner.lock`` (the HTTP handlers that change them take it too, see moto_hooks).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from typing import Any, Dict, List, Optional

from local_aws.proc import terminate_group
from moto.core.utils import utcnow

from local_emr import step_logs
from local_emr.command import UnsupportedStep, local_command
from local_emr.config import RunnerConfig
from local_emr.execution import StepExecution

LOG = logging.getLogger("local_emr.runner")

ENDED = frozenset({"TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS"})
TERMINATE_ACTIONS = frozenset({"TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW"})
TICK_S = 0.5  # scheduler wake-up without notification: a safety net, state changes notify it at once


class StepRunner:
    """Runs the steps of every cluster created through the endpoint (see the module docstring)."""

    def __init__(self, config: RunnerConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self._wake = threading.Condition(self.lock)
        self._clusters: Dict[str, Any] = {}  # cluster id -> moto Cluster
        self._executions: Dict[str, StepExecution] = {}  # step id -> running step
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

    def track(self, cluster: Any) -> None:
        """Take charge of a cluster just created by RunJobFlow (its steps are all PENDING)."""
        with self.lock:
            self._clusters[cluster.id] = cluster
            self.notify()

    def notify(self) -> None:
        with self._wake:
            self._wake.notify_all()

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
                {"cluster_id": e.cluster_id, "step_id": e.step_id, "pid": e.pid}
                for e in self._executions.values()
                if e.pid is not None
            ]

    def cluster_count(self) -> int:
        return len(self._clusters)

    def shutdown(self) -> None:
        """Stop scheduling and kill every running step's process group; returns once they are gone."""
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
        self._write_running_file()

    # --- the scheduler ------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._wake:
                if self._stopping:
                    return
                try:
                    for cluster in list(self._clusters.values()):
                        self._schedule(cluster)
                except Exception:  # a bug here must not silently stop every cluster's progress
                    LOG.exception("scheduler error")
                self._wake.wait(timeout=TICK_S)

    def _schedule(self, cluster: Any) -> None:
        """One scheduling pass over ``cluster`` (under the lock)."""
        active = self._executions_of(cluster.id)
        if cluster.state == "TERMINATING":
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
        if self._executions_of(cluster.id):
            cluster.state = "RUNNING"
        elif cluster.steps and not cluster.keep_job_flow_alive_when_no_steps:
            failed = any(step.state == "FAILED" for step in cluster.steps)
            message = "Steps completed with errors" if failed else "Steps completed"
            self.request_termination(cluster, "ALL_STEPS_COMPLETED", message)
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
        execution = StepExecution(cluster.id, step.id, command, log_dir)
        self._executions[step.id] = execution
        thread = threading.Thread(target=self._run, args=(cluster, step, execution), name=f"step-{step.id}")
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        LOG.info(
            "cluster %s step %s (%s) RUNNING: %s", cluster.id, step.id, step.name, " ".join(command.argv)
        )

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
        log_file = self._upload_logs(cluster, step, execution.log_dir)
        with self.lock:
            self._executions.pop(step.id, None)
            self._write_running_file()
            # A step that had already exited 0 when the kill came keeps its outcome: it completed.
            if execution.kill_reason is not None and code != 0:
                self._end_step(step, "CANCELLED", f"Cancelled: {execution.kill_reason}")
            elif start_error is not None:
                self._fail(cluster, step, "Step command could not be started", start_error, log_file)
            elif code == 0:
                self._end_step(step, "COMPLETED", "")
            else:
                reason = (
                    f"Step command killed by signal {-code}"
                    if code is not None and code < 0
                    else f"Step command exited with status {code}"
                )
                message = step_logs.failure_message(execution.log_dir, code)
                self._fail(cluster, step, reason, message, log_file)
            LOG.info("cluster %s step %s (%s) %s", cluster.id, step.id, step.name, step.state)
            self.notify()

    def _upload_logs(self, cluster: Any, step: Any, log_dir: Any) -> Optional[str]:
        """Upload to ``<LogUri>/<cluster>/steps/<step>/``; the stderr.gz URI, or None (no LogUri, error)."""
        if not cluster.log_uri:
            return None
        try:
            return step_logs.upload_step_logs(self.config, cluster.log_uri, cluster.id, step.id, log_dir)
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
        if action == "CANCEL_AND_WAIT":
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
