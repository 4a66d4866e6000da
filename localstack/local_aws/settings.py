"""Where the local AWS stack lives and listens: paths, ports and the resources file, in one place.

Environment overrides (all optional): ``LOCALSTACK_PORT`` (default 4566), ``LOCAL_EMR_PORT`` (4580),
``LOCAL_DYNAMODB_PORT`` (4581),
``LOCAL_AWS_STATE_DIR`` (runtime state: PID files, logs, LocalStack's FILESYSTEM_ROOT; default
``var/localstack``) and ``LOCAL_AWS_JARS_DIR`` (the S3A jars; default ``var/jars``). Relative paths are
taken from the project root, so the stack behaves the same whatever the caller's working directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

ROOT = Path(__file__).resolve().parents[2]
LOCALSTACK_DIR = ROOT / "localstack"
RESOURCES_FILE = LOCALSTACK_DIR / "resources.json"
HOST = "127.0.0.1"  # loopback only, always: nothing of the local stack may be reachable from the network
DEFAULT_LOCALSTACK_PORT = 4566
DEFAULT_EMR_PORT = 4580
DEFAULT_DYNAMODB_PORT = 4581


def _path(env: Mapping[str, str], name: str, default: str) -> Path:
    path = Path(env.get(name) or default)
    return path if path.is_absolute() else ROOT / path


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name) or str(default)
    try:
        port = int(raw)
    except ValueError:
        raise SystemExit(f"ERROR: {name}={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise SystemExit(f"ERROR: {name}={port} is out of range (1-65535)")
    return port


@dataclass(frozen=True)
class Settings:
    """Resolved locations and ports of one local stack instance (absolute paths)."""

    state_dir: Path
    jars_dir: Path
    localstack_port: int
    emr_port: int
    dynamodb_port: int = DEFAULT_DYNAMODB_PORT
    project_venv: Path = ROOT / ".venv"
    localstack_venv: Path = ROOT / ".venv-localstack"

    @property
    def localstack_url(self) -> str:
        return f"http://{HOST}:{self.localstack_port}"

    @property
    def emr_url(self) -> str:
        return f"http://{HOST}:{self.emr_port}"

    @property
    def dynamodb_url(self) -> str:
        return f"http://{HOST}:{self.dynamodb_port}"

    @property
    def filesystem_root(self) -> Path:
        """LocalStack's FILESYSTEM_ROOT: kept between runs (the first start builds a cache, ~5 s)."""
        return self.state_dir / "filesystem"

    @property
    def emr_work_dir(self) -> Path:
        """Per-step working directories of the local EMR endpoint (captured output, staged files)."""
        return self.state_dir / "emr"

    def pid_file(self, service: str) -> Path:
        return self.state_dir / f"{service}.pid"

    def log_file(self, service: str) -> Path:
        return self.state_dir / f"{service}.log"


def load_settings(env: Optional[Mapping[str, str]] = None) -> Settings:
    """Settings from the environment (``os.environ`` by default), defaults as in resources.json."""
    env = os.environ if env is None else env
    return Settings(
        state_dir=_path(env, "LOCAL_AWS_STATE_DIR", "var/localstack"),
        jars_dir=_path(env, "LOCAL_AWS_JARS_DIR", "var/jars"),
        localstack_port=_port(env, "LOCALSTACK_PORT", DEFAULT_LOCALSTACK_PORT),
        emr_port=_port(env, "LOCAL_EMR_PORT", DEFAULT_EMR_PORT),
        dynamodb_port=_port(env, "LOCAL_DYNAMODB_PORT", DEFAULT_DYNAMODB_PORT),
    )


def load_resources(path: Path = RESOURCES_FILE) -> dict[str, Any]:
    """The machine-readable description of what the stack creates (buckets, topic, queue, identity)."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
