"""One background server of the local stack: start with a readiness wait, status, stop by recorded PID."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from local_aws import proc
from local_aws.settings import HOST, ROOT


class StartError(RuntimeError):
    """The service could not be started; the message says why and where the log is."""


@dataclass
class ManagedService:
    """A loopback server run in the background, identified by its PID file and a command-line marker.

    ``ready`` answers whether the running server is fully usable (health endpoint up, init done);
    ``before_start`` prepares its files (hooks, directories) and runs only when a start is needed.
    """

    name: str
    port: int
    command: List[str]
    env: Dict[str, str]
    pid_file: Path
    log_file: Path
    marker: str
    ready: Callable[[], bool]
    port_env: str  # the environment variable that moves the port (named in the port-taken error)
    start_timeout_s: float = 90.0
    stop_grace_s: float = 15.0
    before_start: Callable[[], None] = field(default=lambda: None)
    after_stop: Callable[[], None] = field(default=lambda: None)

    def pid(self) -> Optional[int]:
        """PID of our running server, or None (a stale PID file is removed on the way)."""
        pid = proc.read_pid(self.pid_file)
        if pid is not None and not proc.is_ours(pid, self.marker):
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def start(self) -> str:
        """Start unless already running; wait until ready. Returns a one-line summary."""
        pid = self.pid()
        if pid is not None:
            if self.ready():
                return f"{self.name}: already running (PID {pid}) on {HOST}:{self.port}"
            try:
                proc.wait_for(
                    self.ready, self.start_timeout_s, self.name, lambda: proc.is_ours(pid, self.marker)
                )
            except (RuntimeError, TimeoutError) as error:
                raise StartError(f"{error}; see {self._rel(self.log_file)}") from None
            return f"{self.name}: already running (PID {pid}), now ready on {HOST}:{self.port}"
        if not proc.port_is_free(HOST, self.port):
            owner = proc.port_owner(self.port)
            raise StartError(
                f"{self.name}: port {HOST}:{self.port} is already in use"
                + (f" by {owner}" if owner else "")
                + f", not by a {self.name} of this checkout ({self._rel(self.pid_file)} has no live PID)."
                f" Stop that process, or choose another port: {self.port_env}=<port>."
            )
        self.before_start()
        started = time.monotonic()
        process = proc.spawn(self.command, self.env, self.log_file, self.pid_file, cwd=ROOT)
        try:
            proc.wait_for(self.ready, self.start_timeout_s, self.name, lambda: process.poll() is None)
        except (RuntimeError, TimeoutError) as error:
            self.stop()
            raise StartError(
                f"{error}; last lines of {self._rel(self.log_file)}:\n{self._log_tail()}"
            ) from None
        took = time.monotonic() - started
        return f"{self.name}: started (PID {process.pid}) on {HOST}:{self.port} in {took:.1f} s"

    def stop(self) -> str:
        """Stop our server if it runs (SIGTERM, SIGKILL after the grace period). Harmless if none runs."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            self.after_stop()
            return f"{self.name}: not running"
        started = time.monotonic()
        how = proc.terminate_group(pid, self.stop_grace_s)
        self.pid_file.unlink(missing_ok=True)
        self.after_stop()
        return f"{self.name}: stopped (PID {pid}, {how}) in {time.monotonic() - started:.1f} s"

    def status(self) -> Dict[str, object]:
        """Machine-readable state: running, ready, pid, port, RSS in MiB, log file."""
        pid = self.pid()
        running = pid is not None
        return {
            "service": self.name,
            "running": running,
            "ready": bool(running and self._ready_quietly()),
            "pid": pid,
            "address": f"{HOST}:{self.port}",
            "rss_mib": round(proc.rss_mib(pid), 1) if pid else 0.0,
            "log": self._rel(self.log_file),
        }

    def _ready_quietly(self) -> bool:
        try:
            return self.ready()
        except StartError:  # e.g. a failed init hook: running, but not ready
            return False

    def _log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    @staticmethod
    def _rel(path: Path) -> str:
        try:
            return str(path.relative_to(ROOT))
        except ValueError:
            return str(path)
