"""benchmarks.procmon: /proc parsing and the process-tree memory sum, on exact texts."""

from __future__ import annotations

import os
import sys

import pytest

from benchmarks.procmon import (
    ProcRow,
    descendants,
    parse_stat_comm,
    parse_stat_ppid,
    parse_statm_rss_bytes,
    run_monitored,
    tree_memory,
    tree_rss_bytes,
)

pytestmark = pytest.mark.unit

STAT = "4242 (java) S 4240 4242 4100 0 -1 4194560 123 0 0 0 5 3 0 0 20 0 30 0 999 7000000000 250000"


def test_parse_stat_reads_pid_ppid_and_name():
    assert parse_stat_ppid(STAT) == (4242, 4240)
    assert parse_stat_comm(STAT) == "java"


def test_parse_stat_survives_spaces_and_parentheses_in_the_name():
    text = "77 (python3 (worker) x) R 12 77 12 0 -1 0 0 0"
    assert parse_stat_ppid(text) == (77, 12)
    assert parse_stat_comm(text) == "python3 (worker) x"


def test_statm_second_field_is_resident_pages():
    assert parse_statm_rss_bytes("1709000 250000 3000 1 0 900000 0", page_bytes=4096) == 250000 * 4096


def test_descendants_follow_the_parent_chain_only():
    parents = {1: 0, 10: 1, 11: 10, 12: 10, 13: 12, 20: 1, 21: 20}
    assert descendants(parents, 10) == {10, 11, 12, 13}
    assert descendants(parents, 13) == {13}
    assert descendants(parents, 99) == {99}  # a root that is gone: just itself


def test_tree_rss_sums_present_pids():
    assert tree_rss_bytes({10: 100, 11: 20, 12: 3}, {10, 12, 99}) == 103


def test_tree_memory_counts_a_shared_address_space_once():
    rows = {
        100: ProcRow(1, "bash", "500 10 5 1 0 100 0"),  # not in the tree's parent map: counted
        101: ProcRow(100, "java", "900000 250000 3000 1 0 800000 0"),
        # posix_spawn child of the JVM before exec: same address space, same statm -> skipped
        102: ProcRow(101, "Thread-4", "900000 250000 3000 1 0 800000 0"),
        103: ProcRow(101, "python", "60000 30000 2000 1 0 40000 0"),
        104: ProcRow(103, "python", "61000 12000 2000 1 0 40000 0"),
    }
    total, by_name = tree_memory(rows)
    page = os.sysconf("SC_PAGE_SIZE")
    assert total == (10 + 250000 + 30000 + 12000) * page
    assert by_name == {
        "processes": 5,
        "bash": 10 * page,
        "java": 250000 * page,
        "python": 42000 * page,
    }


def test_run_monitored_stamps_output_and_samples_memory(tmp_path):
    code = (
        "import sys, time; print('one'); sys.stdout.flush(); time.sleep(0.3); print('two', file=sys.stderr)"
    )
    result = run_monitored([sys.executable, "-c", code], log_path=tmp_path / "log.txt", interval_s=0.05)
    assert result.returncode == 0
    assert [line for _, line in result.lines] == ["one", "two"]
    assert result.first_line_at("two") >= result.first_line_at("one")
    assert result.samples >= 2 and result.peak_rss_bytes > 0
    assert (tmp_path / "log.txt").read_text() == "one\ntwo\n"
