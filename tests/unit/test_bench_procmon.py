"""benchmarks.common's process monitoring: the process-tree memory sum on exact rows, and on real process
trees (psutil through local_aws.proc)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from benchmarks.common import monitored, sample_tree_rss, tree_memory

pytestmark = pytest.mark.unit

MIB = 1024 * 1024


def test_tree_memory_counts_a_shared_address_space_once():
    java = (250 * MIB, 900 * MIB, 3 * MIB, 1, 0, 800 * MIB, 0)
    rows = {
        100: (1, "bash", (10 * MIB, 500 * MIB, 5, 1, 0, 100, 0)),  # parent not in the tree: counted
        101: (100, "java", java),
        # posix_spawn child of the JVM before exec: same address space, same figures -> skipped
        102: (101, "Thread-4", java),
        103: (101, "python", (30 * MIB, 60 * MIB, 2, 1, 0, 40, 0)),
        104: (103, "python", (12 * MIB, 61 * MIB, 2, 1, 0, 40, 0)),
    }
    total, by_name = tree_memory(rows)
    assert total == (10 + 250 + 30 + 12) * MIB
    assert by_name == {"processes": 5, "bash": 10 * MIB, "java": 250 * MIB, "python": 42 * MIB}


def test_sample_tree_rss_sums_a_real_tree():
    # A python child that starts a sleep child and reports its PID: a two-process tree.
    code = (
        "import subprocess, sys; print(subprocess.Popen(['sleep', '30']).pid, flush=True); sys.stdin.read()"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    sleep_pid = int(parent.stdout.readline())
    try:
        total, by_name = sample_tree_rss(parent.pid)
        assert by_name["processes"] == 2, by_name
        assert by_name.get("sleep", 0) > 0 and total > by_name["sleep"]
    finally:
        os.kill(sleep_pid, signal.SIGKILL)
        parent.stdin.close()
        parent.wait(timeout=10)
    assert sample_tree_rss(parent.pid) == (0, {"processes": 0})  # reaped: nothing left to sample


def test_monitored_stamps_output_samples_memory_and_raises_on_failure(tmp_path):
    code = (
        "import sys, time; print('one'); sys.stdout.flush(); time.sleep(0.3); print('two', file=sys.stderr)"
    )
    result = monitored([sys.executable, "-c", code], tmp_path / "log.txt", interval_s=0.05)
    assert [line for _, line in result.lines] == ["one", "two"]
    assert result.first_line_at("two") >= result.first_line_at("one")
    assert len(result.rss_trace) >= 2 and result.peak_rss_bytes > 0
    assert (tmp_path / "log.txt").read_text() == "one\ntwo\n"
    with pytest.raises(RuntimeError, match="exit 3"):
        monitored([sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "fails.txt")
