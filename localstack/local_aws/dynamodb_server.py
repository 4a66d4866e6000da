"""The local DynamoDB endpoint (``localstack/local_dynamodb``) as a managed background server of the stack."""

from __future__ import annotations

import os
from typing import Dict

from local_aws.http import get_json
from local_aws.service import ManagedService, StartError
from local_aws.settings import HOST, LOCALSTACK_DIR, RESOURCES_FILE, Settings, load_resources

NAME = "local-dynamodb"
MARKER = "local_dynamodb.server"


def environment(settings: Settings) -> Dict[str, str]:
    """The endpoint's environment: LocalStack's folder on the path, the local account, no AWS_* leak."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        {
            "PYTHONPATH": str(LOCALSTACK_DIR),
            "MOTO_ACCOUNT_ID": load_resources()["account_id"],
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    return env


def is_ready(settings: Settings) -> bool:
    """Up and the serving table created; a failed table creation is a start error, not a wait."""
    health = get_json(f"{settings.dynamodb_url}/_local_dynamodb/health")
    if health and health.get("status") == "error":
        raise StartError(f"{NAME}: {health.get('error')}")
    return bool(health and health.get("status") == "ok")


def service(settings: Settings) -> ManagedService:
    """moto's DynamoDB API on 127.0.0.1:``settings.dynamodb_port``, with the serving table."""
    python = settings.project_venv / "bin" / "python"
    return ManagedService(
        name=NAME,
        port=settings.dynamodb_port,
        command=[
            str(python),
            "-m",
            MARKER,
            "--host",
            HOST,
            "--port",
            str(settings.dynamodb_port),
            "--resources",
            str(RESOURCES_FILE),
        ],
        env=environment(settings),
        pid_file=settings.pid_file(NAME),
        log_file=settings.log_file(NAME),
        marker=MARKER,
        ready=lambda: is_ready(settings),
        port_env="LOCAL_DYNAMODB_PORT",
        start_timeout_s=60.0,
    )
