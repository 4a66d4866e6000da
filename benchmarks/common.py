"""What the benchmark scripts share: paths, the spark-submit environment, machine facts, the command line
and results document (``var/bench/results/<mode>/<benchmark>.json``), monitored processes and the
clickstream. Process trees come from psutil through ``local_aws.proc``, the project's process supervisor."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import psutil

from tools.datagen.clickstream import generate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "localstack"))  # local_aws, as tests reach it
from local_aws import proc

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "bench"  # intermediate data and raw results (git-ignored)
PYTHON = str(ROOT / ".venv/bin/python") if (ROOT / ".venv/bin/python").exists() else sys.executable
EMPTY_JOB = ROOT / "benchmarks" / "workers" / "empty_job.py"
MOVIELENS_RAW = ROOT / "data" / "movielens" / "raw"
RUN_DATE = "1998-04-22"  # the Makefile's RUN_DATE: MovieLens-100K's last day
PACKAGES = ("pyspark", "implicit", "numpy", "scipy", "pandas", "pyarrow", "apache-airflow", "matplotlib")
MIB = 2**20


def spark_env() -> Dict[str, str]:
    """The environment ``make run`` spark-submits with: the venv first on PATH, local Spark defaults, one
    BLAS thread, loopback only."""
    env = {**os.environ, "PATH": f"{Path(PYTHON).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.update(PYSPARK_PYTHON=PYTHON, PYSPARK_DRIVER_PYTHON=PYTHON, OPENBLAS_NUM_THREADS="1")
    env.setdefault("SPARK_CONF_DIR", str(ROOT / "emr_configs" / "local-spark"))
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def load_avg() -> List[float]:
    """1, 5 and 15-minute load averages (above the core count: the CPU was shared with other work)."""
    return [round(x, 2) for x in os.getloadavg()]


def cpu_seconds(root: int, tree: bool = True) -> float:
    """User + system CPU seconds (reaped children included) of ``root`` and, if ``tree``, descendants."""
    total = 0.0
    for process in proc.tree(root) if tree else [psutil.Process(root)]:
        with contextlib.suppress(psutil.Error):  # exited since the tree was listed
            total += sum(process.cpu_times()[:4])  # user, system, children_user, children_system
    return total


def _first_line(*command: str) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return ((out.stdout or out.stderr).strip().splitlines() or ["unknown"])[0]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> Dict[str, Any]:
    """Machine, OS, Java, Python and package versions and the git commit."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((x.split(":", 1)[1].strip() for x in cpuinfo if x.startswith("model name")), "")
    git = ("git", "-C", str(ROOT))
    dirty = _first_line(*git, "status", "--porcelain", "--untracked-files=no") not in ("", "unknown")
    commit = _first_line(*git, "rev-parse", "--short", "HEAD") + (" (with uncommitted changes)" * dirty)
    return {"cpu": cpu or platform.processor() or "unknown", "cores": os.cpu_count(),
            "os": f"{platform.system()} {platform.release()}",
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "java": _first_line("java", "-version"),
            "packages": {name: _version(name) for name in PACKAGES}, "git_commit": commit}  # fmt: skip


def results_dir(quick: bool) -> Path:
    return WORK / "results" / ("quick" if quick else "full")


def mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parser(doc: str, work: Optional[str] = None) -> argparse.ArgumentParser:
    """An argument parser described by ``doc``: ``--seed``, ``--quick``, ``--results`` and, given ``work``,
    ``--work`` (default ``var/bench/<work>``)."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=42, help="seed of every random choice")
    p.add_argument("--quick", action="store_true", help="small sizes (the make bench-quick variant)")
    p.add_argument("--results", type=Path, default=None, help="results folder (default by mode)")
    if work:
        p.add_argument("--work", type=Path, default=WORK / work, help="data, outputs and logs folder")
    return p


def begin(name: str, p: argparse.ArgumentParser, argv: Optional[Sequence[str]]):
    """``(args, doc)``: the parsed ``argv`` and the benchmark's results document (its arguments, the
    machine, its start time and load)."""
    args = p.parse_args(argv)
    doc = {"benchmark": name, "mode": "quick" if args.quick else "full", "seed": args.seed}
    doc["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    return args, {**doc, "started_utc": now_utc(), "load_avg_start": load_avg(), "machine": machine_info()}


def save(doc: Dict[str, Any], args: argparse.Namespace) -> int:
    """Writes ``doc`` (with its end time and load) into the results folder; 0, the exit status."""
    doc.update(finished_utc=now_utc(), load_avg_end=load_avg())
    path = (args.results or results_dir(args.quick)) / f"{doc['benchmark']}.json"
    mkdir(path.parent)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    print(f"{doc['benchmark']}: results in {path}", flush=True)
    return 0


Rows = Mapping[int, Tuple[int, str, Tuple[int, ...]]]  # pid -> (ppid, name, psutil memory_info(), bytes)


def tree_memory(rows: Rows) -> Tuple[int, Dict[str, int]]:
    """``(rss_bytes, by_name)`` summed over one tree's ``rows``; ``by_name["processes"]`` is their count.

    A child whose memory figures equal its parent's shares the parent's address space (a JVM child between
    ``posix_spawn``'s clone and its exec, or a fresh fork): counted once. The sum counts shared pages once
    per process, so it is an upper bound on physical memory."""
    by_name: Dict[str, int] = {"processes": len(rows)}
    for ppid, name, memory in rows.values():
        if ppid not in rows or rows[ppid][2] != memory:
            by_name[name] = by_name.get(name, 0) + memory[0]
    return sum(v for k, v in by_name.items() if k != "processes"), by_name


def sample_tree_rss(root: int) -> Tuple[int, Dict[str, int]]:
    """``(rss_bytes, by_name)`` of ``root``'s process tree now (:func:`tree_memory`); ``(0, ...)`` if gone."""
    rows = {}
    for process in proc.tree(root):
        with contextlib.suppress(psutil.Error), process.oneshot():  # exited since the tree was listed
            rows[process.pid] = (process.ppid(), process.name(), tuple(process.memory_info()))
    return tree_memory(rows)


@dataclass
class Run:
    """A monitored command: wall seconds, peak tree RSS (bytes; by process name at the peak sample), the
    load around it, output lines and RSS samples (each stamped in seconds since the start)."""

    seconds: float
    peak_rss_bytes: int
    peak_breakdown: Dict[str, int]
    load_before: Tuple[float, ...]
    load_after: Tuple[float, ...]
    lines: List[Tuple[float, str]]
    rss_trace: List[Tuple[float, int]]

    def first_line_at(self, needle: str) -> Optional[float]:
        """Seconds since start of the first output line containing ``needle`` (None if absent)."""
        return next((t for t, line in self.lines if needle in line), None)

    def record(self) -> Dict[str, Any]:
        """Wall seconds, peak tree RSS (total and by process name, MiB) and the load around it."""
        by_name = {k: v if k == "processes" else round(v / MIB, 1) for k, v in self.peak_breakdown.items()}
        return {"wall_seconds": self.seconds, "peak_rss_mib": self.peak_rss_bytes / MIB,
                "peak_rss_by_process_mib": by_name, "load_before": list(self.load_before),
                "load_after": list(self.load_after)}  # fmt: skip


def monitored(command: Sequence[str], log: Path, interval_s: float = 0.1) -> Run:
    """``command`` with :func:`spark_env` in the project folder, its process tree's RSS sampled every
    ``interval_s`` s by a thread; stdout and stderr merged (spark-submit relays the driver's stderr),
    stamped and copied to ``log``. Raises if it fails."""
    load_before, started, done = os.getloadavg(), time.perf_counter(), threading.Event()
    peak, trace, lines = [0, {}], [], []
    child = subprocess.Popen(list(command), cwd=ROOT, env=spark_env(), text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, errors="replace")  # fmt: skip

    def sample() -> None:
        while not done.is_set():
            rss, by_name = sample_tree_rss(child.pid)
            trace.append((time.perf_counter() - started, rss))
            if rss > peak[0]:
                peak[:] = rss, by_name
            done.wait(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with open(mkdir(log.parent) / log.name, "w") as out:
            for line in child.stdout or ():
                lines.append((time.perf_counter() - started, line.rstrip("\n")))
                out.write(line)
        returncode = child.wait()
    finally:
        done.set()
        sampler.join()
    if returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed (exit {returncode}); log: {log}")
    return Run(time.perf_counter() - started, *peak, load_before, os.getloadavg(), lines, trace)


def empty_job(log: Path) -> Dict[str, Any]:
    """An empty spark-submit (session, one trivial action, stop): the fixed cost every job pays."""
    run = monitored(["spark-submit", str(EMPTY_JOB)], log)
    ready, done = (run.first_line_at(f"BENCH {x}") for x in ("session_ready", "action_done"))
    return {**run.record(), "session_ready_seconds": ready, "action_done_seconds": done}


def clickstream(folder: Path, events: int, days: int, seed: int) -> Dict[str, Any]:
    """The seeded clickstream's manifest, generated into ``folder`` unless already there."""
    manifest, wanted = folder / "_manifest.json", {"events": events, "days": days, "seed": seed}
    if manifest.exists() and {k: json.loads(manifest.read_text())["parameters"][k] for k in wanted} == wanted:
        print(f"reusing {folder}", flush=True)
        return json.loads(manifest.read_text())
    return generate(folder, events=events, days=days, seed=seed)
