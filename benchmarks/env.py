"""Where the benchmarks run: paths, the spark-submit environment, machine facts and versions."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
WORK = ROOT / "var" / "bench"  # intermediate data and raw results (git-ignored)
DOCS = ROOT / "docs"
PACKAGES = ("pyspark", "implicit", "numpy", "scipy", "pandas", "pyarrow", "apache-airflow", "matplotlib")


def spark_env(base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment a job is spark-submitted with here, as ``make run`` sets it: the project's
    virtualenv first on PATH, local Spark defaults, one BLAS thread, loopback only."""
    env = dict(os.environ if base is None else base)
    python = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
    env["PATH"] = f"{Path(python).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("SPARK_CONF_DIR", str(ROOT / "emr_configs" / "local-spark"))
    env["PYSPARK_PYTHON"] = python
    env["PYSPARK_DRIVER_PYTHON"] = python
    env["OPENBLAS_NUM_THREADS"] = "1"
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def spark_submit_command(script: Path, args: List[str]) -> List[str]:
    """``spark-submit <script> <args>`` (spark-submit found on the PATH of :func:`spark_env`)."""
    return ["spark-submit", str(script), *args]


def load_avg() -> List[float]:
    """1, 5 and 15-minute load averages now (runnable processes; this machine has ``os.cpu_count()``
    cores, so a load above that means the benchmarks shared the CPU with other work)."""
    return [round(x, 2) for x in os.getloadavg()]


def _first_line(command: List[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return float("nan")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> Dict[str, object]:
    """Machine, OS, Java, Python and package versions, git commit, date (UTC) and load right now."""
    commit = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _first_line(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "java": _first_line(["java", "-version"]),
        "packages": {name: _version(name) for name in PACKAGES},
        "git_commit": commit + (" (with uncommitted changes)" if dirty not in ("", "unknown") else ""),
        "load_avg": load_avg(),
    }
