"""Run a command and sample the resident memory of its whole process tree from /proc.

A spark-submit is a tree: the launcher exec's the JVM, the JVM starts the Python driver and forks
``pyspark.daemon`` workers. Peak memory of "the job" is the largest *sum* of RSS over the root and all
its descendants seen at any sample (shared pages count once per process, so the sum is an upper bound
on physical memory). Samples are taken every ``interval_s`` (0.1 s = 10 Hz) by a background thread.

The parsing helpers are pure functions over /proc text so they are unit-tested with exact values.
Linux only (EMR, CI and developer machines here are Linux).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


def parse_stat_ppid(stat_text: str) -> Tuple[int, int]:
    """``(pid, ppid)`` from the text of ``/proc/<pid>/stat``.

    The command name (field 2) is in parentheses and may itself contain spaces and parentheses, so the
    fields after it are found from the *last* closing parenthesis.
    """
    head, _, tail = stat_text.rpartition(")")
    pid = int(head.split("(", 1)[0])
    fields = tail.split()
    return pid, int(fields[1])  # fields[0] is the state, fields[1] the parent pid


def parse_stat_comm(stat_text: str) -> str:
    """The command name (``comm``, without parentheses) from the text of ``/proc/<pid>/stat``."""
    return stat_text[stat_text.index("(") + 1 : stat_text.rindex(")")]


def parse_statm_rss_bytes(statm_text: str, page_bytes: int = PAGE_BYTES) -> int:
    """Resident set size in bytes from ``/proc/<pid>/statm`` (second field, in pages)."""
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


def tree_rss_bytes(rss: Mapping[int, int], tree: Iterable[int]) -> int:
    """Sum of ``rss[pid]`` over the pids of ``tree`` (pids that vanished count 0)."""
    return sum(rss.get(pid, 0) for pid in tree)


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as handle:
            return handle.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def snapshot_parents(proc: str = "/proc") -> Dict[int, int]:
    """``pid -> ppid`` for every process visible now."""
    parents: Dict[int, int] = {}
    for entry in os.listdir(proc):
        if entry.isdigit():
            text = _read(f"{proc}/{entry}/stat")
            if text:
                pid, ppid = parse_stat_ppid(text)
                parents[pid] = ppid
    return parents


class ProcRow(NamedTuple):
    """What one sample needs of a process: its parent, name and ``/proc/<pid>/statm`` text."""

    ppid: int
    comm: str
    statm: str


def tree_memory(rows: Mapping[int, ProcRow]) -> Tuple[int, Dict[str, int]]:
    """``(rss_bytes, by_name)`` summed over ``rows`` (one tree), each address space counted once.

    A child whose statm is identical to its parent's shares the parent's address space: a JVM child
    between ``posix_spawn``'s clone and its exec (named after the Java thread, e.g. ``Thread-4``), or
    a process forked an instant ago. Counting it again would double the JVM's footprint for that sample,
    so it is skipped. ``by_name`` maps each ``comm`` to its summed RSS and ``"processes"`` to the count.
    """
    total = 0
    by_name: Dict[str, int] = {"processes": len(rows)}
    for row in rows.values():
        parent = rows.get(row.ppid)
        if parent is not None and parent.statm == row.statm:
            continue
        rss = parse_statm_rss_bytes(row.statm)
        total += rss
        by_name[row.comm] = by_name.get(row.comm, 0) + rss
    return total, by_name


def sample_tree_rss(root: int, proc: str = "/proc") -> Tuple[int, Dict[str, int]]:
    """``(rss_bytes, by_name)`` of ``root``'s process tree right now (see :func:`tree_memory`)."""
    rows: Dict[int, ProcRow] = {}
    for pid in descendants(snapshot_parents(proc), root):
        stat, statm = _read(f"{proc}/{pid}/stat"), _read(f"{proc}/{pid}/statm")
        if stat and statm:
            rows[pid] = ProcRow(parse_stat_ppid(stat)[1], parse_stat_comm(stat), statm.strip())
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
