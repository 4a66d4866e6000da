"""One step's local process: started in its own process group, output captured, killable as a group.

Its own group (a new session), because ``spark-submit`` is a shell script that starts a JVM which starts
Python workers: killing only the PID we know would orphan the rest. ``kill`` signals the whole group
(SIGTERM, then SIGKILL after a grace period). The process's stdout/stderr go to ``output_dir``: the
step's log folder, or for a cluster-mode step the driver's simulated container folder (the runner then
writes the launcher's output into the step's own stdout/stderr).
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

from local_aws.proc import started_at, terminate_group

from local_emr.command import LocalCommand
from local_emr.yarn import YarnApp


class StepExecution:
    """The process of one step; ``log_dir`` receives ``controller``, ``output_dir`` (default: ``log_dir``)
    the process's ``stdout`` and ``stderr``."""

    def __init__(
        self,
        cluster_id: str,
        step_id: str,
        command: LocalCommand,
        log_dir: Path,
        output_dir: Optional[Path] = None,
        yarn_app: Optional[YarnApp] = None,
    ) -> None:
        self.cluster_id = cluster_id
        self.step_id = step_id
        self.command = command
        self.log_dir = log_dir
        self.output_dir = output_dir or log_dir
        self.yarn_app = yarn_app  # set for a cluster-mode step: its simulated YARN application
        self.process: Optional[subprocess.Popen] = None
        self.create_time: Optional[float] = None
        self.kill_reason: Optional[str] = None  # set when we stop it (cancel, terminate): outcome CANCELLED
        self.started_monotonic = 0.0
        self.started_epoch_s = 0.0  # wall clock, for the launcher output's timestamps
        self.ended_epoch_s = 0.0
        self._lock = threading.Lock()

    @property
    def pid(self) -> Optional[int]:
        return self.process.pid if self.process else None

    def controller(self, line: str) -> None:
        """Append a line to the ``controller`` log (what EMR's step controller log holds: what ran, how)."""
        with open(self.log_dir / "controller", "a", encoding="utf-8") as handle:
            handle.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")

    def start(self) -> None:
        """Launch the command; raises OSError if it cannot be executed (e.g. program not found)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for note in self.command.notes:
            self.controller(f"rewritten for local Spark: {note}")
        self.controller(f"INFO startExec '{' '.join(self.command.argv)}'")
        with self._lock:
            if self.kill_reason is not None:
                raise OSError(f"step cancelled before it started: {self.kill_reason}")
            self.started_epoch_s = time.time()
            with open(self.output_dir / "stdout", "wb") as out, open(self.output_dir / "stderr", "wb") as err:
                self.process = subprocess.Popen(
                    self.command.argv,
                    cwd=self.log_dir,
                    env=self.command.env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                    close_fds=True,
                )
            self.create_time = started_at(self.process.pid)
            self.started_monotonic = time.monotonic()

    def wait(self) -> int:
        """Block until the process exits; its exit status (negative: killed by that signal)."""
        assert self.process is not None
        code = self.process.wait()
        self.ended_epoch_s = time.time()
        self.controller(
            f"INFO execution ended after {time.monotonic() - self.started_monotonic:.1f} s, status {code}"
        )
        return code

    def kill(self, reason: str, grace_s: float) -> None:
        """Stop the whole process group (SIGTERM, SIGKILL after ``grace_s``); safe to call repeatedly."""
        with self._lock:
            process = self.process
            if process is not None and process.poll() is not None:
                return  # it ended on its own: its outcome stands
            if self.kill_reason is None:
                self.kill_reason = reason  # also stops a start() that has not happened yet
        if process is None:
            return
        self.controller(f"INFO killing process group {process.pid}: {reason}")
        how = terminate_group(process.pid, grace_s)
        self.controller(f"INFO process group {process.pid} {how}")
