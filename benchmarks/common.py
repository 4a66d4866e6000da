"""What the benchmark scripts share: paths, the spark-submit environment, machine facts, the results
document (``var/bench/results/<mode>/<benchmark>.json``), monitored processes and the clickstream."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List

from benchmarks import procmon
from tools.datagen.clickstream import generate

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "bench"  # intermediate data and raw results (git-ignored)
PYTHON = str(ROOT / ".venv/bin/python") if (ROOT / ".venv/bin/python").exists() else sys.executable
EMPTY_JOB = ROOT / "benchmarks" / "workers" / "empty_job.py"
MOVIELENS_RAW = ROOT / "data" / "movielens" / "raw"
RUN_DATE = "1998-04-22"  # the Makefile's RUN_DATE: MovieLens-100K's last day
PACKAGES = ("pyspark", "implicit", "numpy", "scipy", "pandas", "pyarrow", "apache-airflow", "matplotlib")


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
    total = 0
    for pid in procmon.descendants(procmon.snapshot_parents(), root) if tree else {root}:
        with contextlib.suppress(OSError):  # exited since the snapshot
            total += sum(map(int, Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[11:15]))
    return total / os.sysconf("SC_CLK_TCK")


def _first_line(*command: str) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return ((out.stdout or out.stderr).strip().splitlines() or ["unknown"])[0]


def _proc_info(path: str, key: str) -> str:
    lines = Path(path).read_text().splitlines() if Path(path).exists() else []
    return next((x.split(":", 1)[1].strip() for x in lines if x.startswith(key)), "")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> Dict[str, Any]:
    """Machine, OS, Java, Python and package versions and the git commit."""
    memory, git = _proc_info("/proc/meminfo", "MemTotal:"), ("git", "-C", str(ROOT))
    dirty = _first_line(*git, "status", "--porcelain", "--untracked-files=no") not in ("", "unknown")
    info = {"cpu": _proc_info("/proc/cpuinfo", "model name") or platform.processor() or "unknown"}
    info.update(cores=os.cpu_count(), os=f"{platform.system()} {platform.release()}")
    info["memory_gib"] = round(int(memory.split()[0]) / 1024 / 1024, 1) if memory else float("nan")
    info.update(python=platform.python_version(), java=_first_line("java", "-version"))
    info["packages"] = {name: _version(name) for name in PACKAGES}
    commit = _first_line(*git, "rev-parse", "--short", "HEAD")
    return {**info, "git_commit": commit + (" (with uncommitted changes)" if dirty else "")}


def parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser described by ``doc``, with ``--seed``, ``--quick`` and ``--results``."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=42, help="seed of every random choice")
    p.add_argument("--quick", action="store_true", help="small sizes (the make bench-quick variant)")
    p.add_argument("--results", type=Path, default=None, help="results folder (default by mode)")
    return p


def mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir(quick: bool) -> Path:
    return WORK / "results" / ("quick" if quick else "full")


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def begin(name: str, args: argparse.Namespace) -> Dict[str, Any]:
    """A benchmark's results document: its arguments, the machine, its start time and load."""
    doc = {"benchmark": name, "mode": "quick" if args.quick else "full", "seed": args.seed}
    doc["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    return {**doc, "started_utc": now_utc(), "load_avg_start": load_avg(), "machine": machine_info()}


def save(doc: Dict[str, Any], args: argparse.Namespace) -> None:
    doc.update(finished_utc=now_utc(), load_avg_end=load_avg())
    path = (args.results or results_dir(args.quick)) / f"{doc['benchmark']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    print(f"{doc['benchmark']}: results in {path}", flush=True)


def monitored(command: List[str], log: Path) -> procmon.RunResult:
    """``command`` with :func:`spark_env`, its process tree's RSS sampled at 10 Hz; raises if it fails."""
    log.parent.mkdir(parents=True, exist_ok=True)
    result = procmon.run_monitored(command, cwd=ROOT, env=spark_env(), log_path=log)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed (exit {result.returncode}); log: {log}")
    return result


def process_record(result: procmon.RunResult) -> Dict[str, Any]:
    """Wall seconds, peak tree RSS (total and by process name, MiB) and load of a monitored process."""
    peak = result.peak_breakdown  # process name -> RSS bytes at the peak sample, and "processes" -> count
    by_name = {k: v if k == "processes" else round(v / procmon.MIB, 1) for k, v in peak.items()}
    record = {"wall_seconds": result.seconds, "peak_rss_mib": result.peak_rss_bytes / procmon.MIB}
    return {**record, "peak_rss_by_process_mib": by_name, "load_before": list(result.load_before),
            "load_after": list(result.load_after)}  # fmt: skip


def empty_job(log: Path) -> Dict[str, Any]:
    """An empty spark-submit (session, one trivial action, stop): the fixed cost every job pays."""
    result = monitored(["spark-submit", str(EMPTY_JOB)], log)
    ready, done = (result.first_line_at(f"BENCH {x}") for x in ("session_ready", "action_done"))
    return {**process_record(result), "session_ready_seconds": ready, "action_done_seconds": done}


def clickstream(folder: Path, events: int, days: int, seed: int) -> Dict[str, Any]:
    """The seeded clickstream's manifest, generated into ``folder`` unless already there."""
    manifest = folder / "_manifest.json"
    wanted = {"events": events, "days": days, "seed": seed}
    if manifest.exists() and {k: json.loads(manifest.read_text())["parameters"][k] for k in wanted} == wanted:
        print(f"reusing {folder}", flush=True)
        return json.loads(manifest.read_text())
    return generate(folder, events=events, days=days, seed=seed)
