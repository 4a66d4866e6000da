"""The local EMR endpoint (``localstack/local_emr``) as a managed background server of the stack."""

from __future__ import annotations

import json
import os
from typing import Dict

from local_aws import proc, setup_env
from local_aws.http import get_json
from local_aws.service import ManagedService
from local_aws.settings import HOST, LOCALSTACK_DIR, RESOURCES_FILE, Settings, load_resources

NAME = "local-emr"
MARKER = "local_emr.server"


def environment(settings: Settings) -> Dict[str, str]:
    """The endpoint's environment: the project's venv first on PATH (spark-submit), LocalStack's address."""
    resources = load_resources()
    venv_bin = settings.project_venv / "bin"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        {
            "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(LOCALSTACK_DIR),
            "MOTO_ACCOUNT_ID": resources["account_id"],
            "AWS_ACCESS_KEY_ID": resources["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": resources["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": resources["region"],
            "LOCAL_EMR_LOCALSTACK_URL": settings.localstack_url,
            "LOCAL_EMR_DYNAMODB_URL": settings.dynamodb_url,
            "LOCAL_EMR_WORK_DIR": str(settings.emr_work_dir),
            "LOCAL_EMR_JARS": os.pathsep.join(str(path) for path in setup_env.jar_paths(settings)),
            "LOCAL_EMR_RESOURCES": str(RESOURCES_FILE),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    return env


def kill_leftover_steps(settings: Settings) -> None:
    """Kill step process groups the endpoint recorded but could not stop itself (it was SIGKILLed).

    The endpoint keeps ``running-steps.json`` up to date: one entry per running step with the PID of
    its process-group leader and that process's start time, so a recycled PID is never signalled.
    """
    path = settings.emr_work_dir / "running-steps.json"
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    for entry in entries:
        if proc.started_at(int(entry["pid"])) == entry["create_time"]:
            proc.terminate_group(int(entry["pid"]), grace_s=5.0)
    path.unlink(missing_ok=True)


def is_ready(settings: Settings) -> bool:
    health = get_json(f"{settings.emr_url}/_local_emr/health")
    return bool(health and health.get("status") == "ok")


def service(settings: Settings) -> ManagedService:
    """The moto-based EMR API plus step runner on 127.0.0.1:``settings.emr_port``."""
    python = settings.project_venv / "bin" / "python"

    def before_start() -> None:
        settings.emr_work_dir.mkdir(parents=True, exist_ok=True)
        kill_leftover_steps(settings)

    return ManagedService(
        name=NAME,
        port=settings.emr_port,
        command=[str(python), "-m", MARKER, "--host", HOST, "--port", str(settings.emr_port)],
        env=environment(settings),
        pid_file=settings.pid_file(NAME),
        log_file=settings.log_file(NAME),
        marker=MARKER,
        ready=lambda: is_ready(settings),
        port_env="LOCAL_EMR_PORT",
        start_timeout_s=60.0,
        # The endpoint stops its running steps (each up to a few seconds) before it exits.
        stop_grace_s=30.0,
        before_start=before_start,
        after_stop=lambda: kill_leftover_steps(settings),
    )
