"""Run a command and sample the resident memory of its whole process tree.

A spark-submit is a tree: the launcher exec's the JVM, the JVM starts the Python driver and forks
``pyspark.daemon`` workers. Peak memory of "the job" is the largest *sum* of RSS over the root and all
its descendants seen at any sample (shared pages count once per process, so the sum is an upper bound
on physical memory). Samples are taken every ``interval_s`` (0.1 s = 10 Hz) by a background thread.

The process tree and its memory come from psutil through ``local_aws.proc`` (the one local process
supervisor); the sum over a tree is a pure function over rows, unit-tested with exact values.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "localstack"))  # local_aws.proc
from local_aws import proc

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


def parse_statm_rss_bytes(statm_text: str, page_bytes: int = PAGE_BYTES) -> int:
    """Resident set size in bytes from ``/proc/<pid>/statm`` (second field, in pages).

    Kept for benchmarks/bench_serving.py; new code reads memory with psutil (``proc.rss_mib``)."""
    return int(statm_text.split()[1]) * page_bytes


def descendants(parents: Mapping[int, int], root: int) -> Set[int]:
    """``root`` and every process whose chain of parents (``pid -> ppid``) reaches it."""
    children: Dict[int, List[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    tree, stack = {root}, [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in tree:
                tree.add(child)
                stack.append(child)
    return tree


def snapshot_parents() -> Dict[int, int]:
    """``pid -> ppid`` for every process visible now (for benchmarks/common.py's CPU sums)."""
    return {p.pid: p.info["ppid"] for p in psutil.process_iter(["ppid"]) if p.info["ppid"] is not None}


class ProcRow(NamedTuple):
    """What one sample needs of a process: its parent, name and psutil ``memory_info()`` (bytes).

    ``memory`` is ``(rss, vms, shared, text, lib, data, dirty)`` on Linux: /proc's statm, in bytes.
    """

    ppid: int
    name: str
    memory: Tuple[int, ...]


def tree_memory(rows: Mapping[int, ProcRow]) -> Tuple[int, Dict[str, int]]:
    """``(rss_bytes, by_name)`` summed over ``rows`` (one tree), each address space counted once.

    A child whose memory figures are identical to its parent's shares the parent's address space: a JVM
    child between ``posix_spawn``'s clone and its exec (named after the Java thread, e.g. ``Thread-4``),
    or a process forked an instant ago. Counting it again would double the JVM's footprint for that
    sample, so it is skipped. ``by_name`` maps each name to its summed RSS and ``"processes"`` to the count.
    """
    total = 0
    by_name: Dict[str, int] = {"processes": len(rows)}
    for row in rows.values():
        parent = rows.get(row.ppid)
        if parent is not None and parent.memory == row.memory:
            continue
        rss = row.memory[0]
        total += rss
        by_name[row.name] = by_name.get(row.name, 0) + rss
    return total, by_name


def sample_tree_rss(root: int) -> Tuple[int, Dict[str, int]]:
    """``(rss_bytes, by_name)`` of ``root``'s process tree right now (see :func:`tree_memory`)."""
    rows: Dict[int, ProcRow] = {}
    for process in proc.tree(root):
        try:
            with process.oneshot():
                rows[process.pid] = ProcRow(process.ppid(), process.name(), tuple(process.memory_info()))
        except psutil.Error:  # exited (or became unreadable) since the tree was listed
            continue
    return tree_memory(rows)


@dataclass
class RunResult:
    """One monitored command: wall seconds, peak tree RSS (bytes), and its output lines, each stamped
    with seconds since the start (so phases can be read off the job's own log lines)."""

    command: List[str]
    returncode: int
    seconds: float
    peak_rss_bytes: int
    peak_breakdown: Dict[str, int]  # at the peak sample: comm -> RSS bytes, and "processes" -> count
    samples: int
    load_before: Tuple[float, float, float]
    load_after: Tuple[float, float, float]
    lines: List[Tuple[float, str]] = field(default_factory=list)
    rss_trace: List[Tuple[float, int]] = field(default_factory=list)  # (seconds, bytes) every sample

    @property
    def peak_rss_mib(self) -> float:
        return self.peak_rss_bytes / MIB

    def first_line_at(self, needle: str) -> Optional[float]:
        """Seconds since start of the first output line containing ``needle`` (None if absent)."""
        return next((t for t, line in self.lines if needle in line), None)


class _Sampler(threading.Thread):
    def __init__(self, root: int, interval_s: float):
        super().__init__(daemon=True)
        self.root, self.interval_s = root, interval_s
        self.started = time.perf_counter()
        self.peak, self.samples = 0, 0
        self.peak_breakdown: Dict[str, int] = {}
        self.trace: List[Tuple[float, int]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            rss, by_name = sample_tree_rss(self.root)
            self.samples += 1
            self.trace.append((time.perf_counter() - self.started, rss))
            if rss > self.peak:
                self.peak, self.peak_breakdown = rss, by_name
            self.stop_event.wait(self.interval_s)


def run_monitored(
    command: Sequence[str],
    *,
    cwd: Optional[Path] = None,
    env: Optional[Mapping[str, str]] = None,
    interval_s: float = 0.1,
    log_path: Optional[Path] = None,
) -> RunResult:
    """Run ``command`` to completion, sampling its process tree's RSS every ``interval_s`` seconds.

    stdout and stderr are merged (spark-submit relays the Python driver's stderr on its stdout), read
    line by line, stamped, kept in the result and copied to ``log_path`` if given.
    """
    load_before = os.getloadavg()
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    sampler = _Sampler(proc.pid, interval_s)
    sampler.start()
    lines: List[Tuple[float, str]] = []
    with contextlib.ExitStack() as stack:
        stack.callback(sampler.join)
        stack.callback(sampler.stop_event.set)
        log = stack.enter_context(open(log_path, "w")) if log_path else None
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.perf_counter() - started, line.rstrip("\n")))
            if log:
                log.write(line)
        returncode = proc.wait()
    seconds = time.perf_counter() - started
    return RunResult(
        command=list(command),
        returncode=returncode,
        seconds=seconds,
        peak_rss_bytes=sampler.peak,
        peak_breakdown=sampler.peak_breakdown,
        samples=sampler.samples,
        load_before=load_before,
        load_after=os.getloadavg(),
        lines=lines,
        rss_trace=sampler.trace,
    )
