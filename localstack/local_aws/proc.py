"""Local background processes: start one with its PID in a file, wait until it is ready, recognise it
later by that PID, measure its process tree, and stop its process group (SIGTERM, then SIGKILL).

The one supervisor of the local stack (local_aws, local_emr), ``make airflow`` (tools/local/airflow_stack.py)
and the benchmarks' memory sampler (benchmarks/common.py). Code outside localstack/ imports it as
``local_aws.proc`` with localstack/ on sys.path, as the tests and benchmarks/bench_serving.py reach
local_aws. Process facts come from psutil, not from parsing /proc.

A PID file alone is not proof: the PID may have been recycled by an unrelated process after a crash.
A process counts as ours only if it is alive and its command line contains the service's marker, so a
stale PID file never leads to signalling a stranger. Processes are found by recorded PID, never by name.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import psutil


def read_pid(pid_file: Path) -> Optional[int]:
    """PID recorded in ``pid_file``, or None if the file is missing or unreadable."""
    try:
        return int(pid_file.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (an exited child not yet reaped is gone for us)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


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


def tree(pid: int) -> List[psutil.Process]:
    """``pid`` and every descendant it has now (by parent links); [] if ``pid`` is gone."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants in MiB (shared pages once per process); 0.0 if gone."""
    total = 0
    for process in tree(pid):
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:  # exited since the tree was listed
            continue
    return total / 2**20


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
    """Start ``command`` in its own session, output appended to ``log_file``, PID recorded in ``pid_file``.

    Its own session, so that a Ctrl-C in the caller's terminal does not reach it (the caller decides how
    it is stopped) and so that its PID is also the ID of a process group holding all its children. The
    PID is written atomically (write then rename) so a reader never sees half.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        # Logs are appended across runs: a header says where each run starts.
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
    pid_file.parent.mkdir(parents=True, exist_ok=True)
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
    """Poll ``ready`` every ``interval_s`` s until true; return the seconds waited.

    Raises RuntimeError as soon as ``alive`` turns false, TimeoutError after ``timeout_s`` seconds.
    """
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


def kill_group(pgid: int) -> bool:
    """SIGKILL whatever is left in process group ``pgid``; False if nothing was."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def terminate_groups(pgids: Sequence[int], grace_s: float, leader_only: bool = False) -> Dict[int, str]:
    """Stop the process groups ``pgids`` together: SIGTERM, then SIGKILL after ``grace_s`` seconds.

    Returns, per group, "gone" (nothing to stop), "terminated" (exited on SIGTERM) or "killed" (needed
    SIGKILL). ``leader_only``: SIGTERM only the leader and wait for it alone, then SIGKILL the rest of
    its group at once; for a leader that stops its own children and must get exactly one SIGTERM.
    """
    how: Dict[int, str] = {}
    for pgid in pgids:
        try:
            (os.kill if leader_only else os.killpg)(pgid, signal.SIGTERM)
            how[pgid] = "terminated"
        except ProcessLookupError:
            how[pgid] = "gone"
    alive = _alive if leader_only else _group_alive
    waiting = [pgid for pgid in pgids if how[pgid] != "gone"]
    deadline = time.monotonic() + grace_s
    while True:
        waiting = [pgid for pgid in waiting if alive(pgid)]
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    for pgid in waiting:
        if kill_group(pgid):
            how[pgid] = "killed"
    killed = waiting
    if leader_only:  # whatever the leaders left behind (e.g. workers a scheduler did not stop)
        killed = [pgid for pgid in pgids if kill_group(pgid)]
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and any(_group_alive(pgid) for pgid in killed):
        time.sleep(0.05)
    return how


def terminate_group(pgid: int, grace_s: float) -> str:
    """SIGTERM process group ``pgid``, SIGKILL it after ``grace_s`` seconds (see terminate_groups)."""
    return terminate_groups([pgid], grace_s)[pgid]
