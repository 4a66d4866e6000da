"""Background processes by PID file: spawn detached, recognise our own, stop TERM-then-KILL.

A PID file alone is not proof: the PID may have been recycled by an unrelated process after a crash.
A process counts as ours only if it is alive and its command line contains the service's marker, so a
stale PID file never leads to signalling a stranger.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import psutil


def read_pid(pid_file: Path) -> Optional[int]:
    """PID recorded in ``pid_file``, or None if the file is missing or unreadable."""
    try:
        return int(pid_file.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def is_ours(pid: Optional[int], marker: str) -> bool:
    """True if ``pid`` is a live (non-zombie) process whose command line contains ``marker``."""
    if pid is None:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return marker in " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def started_at(pid: int) -> Optional[float]:
    """Start time of ``pid`` (epoch seconds, as psutil reports it), or None if there is no such process."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def rss_mib(pid: int, include_children: bool = True) -> float:
    """Resident memory of ``pid`` (and its descendants) in MiB; 0.0 if it is gone."""
    try:
        process = psutil.Process(pid)
        processes = [process, *process.children(recursive=True)] if include_children else [process]
        total = 0
        for item in processes:
            try:
                total += item.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total / 2**20
    except psutil.NoSuchProcess:
        return 0.0


def port_is_free(host: str, port: int) -> bool:
    """True if a server could bind ``host:port`` now (SO_REUSEADDR, as servers do: TIME_WAIT is free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def port_owner(port: int) -> str:
    """Best-effort description of who listens on ``port`` (for error messages), or '' if unknown."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                try:
                    return f"PID {conn.pid} ({' '.join(psutil.Process(conn.pid).cmdline())[:160]})"
                except psutil.Error:
                    return f"PID {conn.pid}"
    except psutil.Error:
        pass
    return ""


def spawn(
    command: Sequence[str], env: Mapping[str, str], log_file: Path, pid_file: Path, cwd: Path
) -> subprocess.Popen:
    """Start ``command`` in its own session (own process group), output appended to ``log_file``.

    Its own session, so that a Ctrl-C in the caller's terminal does not reach it and so that it can be
    stopped as a group. The PID is written atomically (write then rename) so a reader never sees half.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(command)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    tmp = pid_file.with_suffix(".pid.tmp")
    tmp.write_text(f"{process.pid}\n", encoding="ascii")
    tmp.replace(pid_file)
    return process


def wait_for(
    ready: Callable[[], bool],
    timeout_s: float,
    what: str,
    alive: Callable[[], bool],
    interval_s: float = 0.2,
) -> float:
    """Poll ``ready`` until true; return the seconds waited. Fail early if ``alive`` turns false."""
    start = time.monotonic()
    while True:
        if ready():
            return time.monotonic() - start
        if not alive():
            raise RuntimeError(f"{what}: the process exited before it became ready")
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"{what}: not ready after {timeout_s:.0f} s")
        time.sleep(interval_s)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A group whose only members are zombies still "exists" for killpg; treat zombies as gone.
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            continue
    return False


def terminate_group(pgid: int, grace_s: float) -> str:
    """SIGTERM the process group ``pgid``, SIGKILL it after ``grace_s`` seconds; return what it took.

    Returns "gone" (nothing to stop), "terminated" (exited on SIGTERM) or "killed" (needed SIGKILL).
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return "gone"
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not _group_alive(pgid):
            return "terminated"
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return "terminated"
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.05)
    return "killed"
