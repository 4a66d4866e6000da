"""local_aws.proc, the one local process supervisor: PID files, readiness, stopping by PID, on real
processes (python and sleep children; nothing of psutil is mocked)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, List

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "localstack"))  # as the stack's tests do
from local_aws import proc

pytestmark = pytest.mark.unit

# A leader that reports its child's PID, then sleeps; ``IGNORE_TERM`` makes the child (and, with
# ``LEADER_TOO``, the leader) ignore SIGTERM, as a stuck worker would.
TREE = """
import os, signal, subprocess, sys, time
child = ["import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN) if {ignore} else None",
         "print('child', 'ready', flush=True); time.sleep(60)"]
if {leader_too}:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print(subprocess.Popen([sys.executable, "-c", "; ".join(child)]).pid, flush=True)
time.sleep(60)
"""


@pytest.fixture()
def started() -> Iterator[List[subprocess.Popen]]:
    """Processes a test spawned; whatever is left of their groups is SIGKILLed at the end."""
    processes: List[subprocess.Popen] = []
    yield processes
    for process in processes:
        proc.kill_group(process.pid)
        process.wait(timeout=10)


def spawn_tree(
    tmp_path: Path, started: List[subprocess.Popen], ignore: bool = False, leader_too: bool = False
) -> subprocess.Popen:
    """Spawn the TREE program through proc.spawn and wait until its child is up (it logs "child ready";
    the log's header holds the program, where the words are apart)."""
    code = TREE.format(ignore=ignore, leader_too=leader_too)
    log, pid_file = tmp_path / "tree.log", tmp_path / "tree.pid"
    process = proc.spawn([sys.executable, "-c", code], os.environ, log, pid_file, cwd=tmp_path)
    started.append(process)
    proc.wait_for(lambda: "child ready" in log.read_text(), 10, "tree", lambda: process.poll() is None, 0.05)
    return process


def test_read_pid_of_missing_and_unreadable_files(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    assert proc.read_pid(pid_file) is None  # missing
    pid_file.write_text("4242\n")
    assert proc.read_pid(pid_file) == 4242
    pid_file.write_text("not a pid\n")
    assert proc.read_pid(pid_file) is None


def test_spawn_records_the_pid_logs_and_is_recognised_by_its_marker(
    tmp_path: Path, started: List[subprocess.Popen]
) -> None:
    log, pid_file = tmp_path / "logs" / "sleeper.log", tmp_path / "run" / "sleeper.pid"
    process = proc.spawn(["sleep", "30"], os.environ, log, pid_file, cwd=tmp_path)
    started.append(process)
    assert proc.read_pid(pid_file) == process.pid
    assert not pid_file.with_suffix(".pid.tmp").exists()  # written, then renamed into place
    assert "starting: sleep 30" in log.read_text()
    assert os.getpgid(process.pid) == process.pid  # its own session and process group
    assert proc.is_ours(process.pid, "sleep 30")
    assert not proc.is_ours(process.pid, "local_emr.server")  # someone else's marker
    assert proc.started_at(process.pid) == psutil.Process(process.pid).create_time()
    assert proc.rss_mib(process.pid) > 0

    assert proc.terminate_group(process.pid, grace_s=5) == "terminated"
    assert not proc.is_ours(process.pid, "sleep 30")  # exited (a zombie until reaped): not ours
    process.wait(timeout=5)
    assert proc.started_at(process.pid) is None and proc.rss_mib(process.pid) == 0.0
    assert proc.terminate_group(process.pid, grace_s=5) == "gone"


def test_a_stale_pid_file_is_not_ours(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    pid_file = tmp_path / "stale.pid"
    pid_file.write_text(f"{dead.pid}\n")  # a crashed server's file: its PID is free (or reused)
    assert not proc.is_ours(proc.read_pid(pid_file), "true")
    pid_file.write_text(f"{os.getpid()}\n")  # recycled by an unrelated live process
    assert not proc.is_ours(proc.read_pid(pid_file), "local_emr.server")
    assert not proc.is_ours(None, "anything")


def test_wait_for_returns_fails_early_or_times_out() -> None:
    deadline = time.monotonic() + 0.3
    assert proc.wait_for(lambda: time.monotonic() > deadline, 5, "x", lambda: True, 0.05) >= 0.25
    with pytest.raises(RuntimeError, match="x: the process exited before it became ready"):
        proc.wait_for(lambda: False, 5, "x", lambda: False, 0.05)
    with pytest.raises(TimeoutError, match="x: not ready after 0 s"):
        proc.wait_for(lambda: False, 0.2, "x", lambda: True, 0.05)


def test_terminate_group_stops_the_whole_tree_on_sigterm(tmp_path: Path, started: List) -> None:
    leader = spawn_tree(tmp_path, started)
    tree = proc.tree(leader.pid)
    assert len(tree) == 2 and proc.rss_mib(leader.pid) > 0
    assert proc.terminate_group(leader.pid, grace_s=10) == "terminated"
    assert all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in tree)


def test_terminate_group_kills_a_child_that_ignores_sigterm(tmp_path: Path, started: List) -> None:
    leader = spawn_tree(tmp_path, started, ignore=True)
    child = proc.tree(leader.pid)[1]
    began = time.monotonic()
    assert proc.terminate_group(leader.pid, grace_s=0.5) == "killed"
    assert time.monotonic() - began >= 0.5  # it had its grace period first
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_leader_only_signals_the_leader_once_and_kills_its_leftovers(tmp_path: Path, started: List) -> None:
    # The child ignores SIGTERM: it would hold a whole-group wait for the grace period. With leader_only
    # the leader's exit ends the wait and the leftover child is SIGKILLed at once.
    leader = spawn_tree(tmp_path, started, ignore=True)
    child = proc.tree(leader.pid)[1]
    began = time.monotonic()
    assert proc.terminate_groups([leader.pid], grace_s=30, leader_only=True) == {leader.pid: "terminated"}
    assert time.monotonic() - began < 10
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_several_groups_share_one_grace_period(tmp_path: Path, started: List) -> None:
    stubborn = [spawn_tree(tmp_path / str(i), started, ignore=True, leader_too=True) for i in range(2)]
    began = time.monotonic()
    how = proc.terminate_groups([p.pid for p in stubborn], grace_s=1, leader_only=True)
    assert how == {p.pid: "killed" for p in stubborn}
    assert time.monotonic() - began < 1.9  # one grace period, not one each
    assert all(psutil.Process(p.pid).status() == psutil.STATUS_ZOMBIE for p in stubborn)  # unreaped


def test_port_free_and_its_owner() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert not proc.port_is_free("127.0.0.1", port)
        assert proc.port_owner(port).startswith(f"PID {os.getpid()}")
    assert proc.port_is_free("127.0.0.1", port)


def test_kill_group_of_nothing_is_harmless() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    assert proc.kill_group(dead.pid) is False
