"""Fixtures for the DAG suite: a migrated Airflow metadata DB, AWS under moto (in-process, or moto's HTTP
server on 127.0.0.1 with a fault-injecting proxy in front of EMR), and DAG loading."""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dags.fault_proxy import FaultProxy

DAGS = Path(__file__).resolve().parents[2] / "dags"
REGION = "us-east-1"
# The Airflow connection the server-backed tests configure the DAG with (see ``aws_over_http``).
HTTP_CONN_ID = "aws_moto_http"


@pytest.fixture(scope="session")
def airflow_db():
    """A real Airflow metadata database (SQLite in the session's AIRFLOW_HOME), migrated once."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=dict(os.environ),
    )
    return os.environ["AIRFLOW_HOME"]


@pytest.fixture
def aws_env(monkeypatch):
    """Dummy credentials and a region so no test can reach a real AWS account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def load_dag_module(monkeypatch, **overrides):
    """Import the DAG file afresh with config ``overrides`` (the deployment's JSON config)."""
    monkeypatch.setenv("AIRFLOW_VAR_RECSYS_TRAINING_CONFIG", json.dumps(overrides))
    sys.modules.pop("recsys_training", None)
    return importlib.import_module("recsys_training")


@pytest.fixture(scope="session")
def moto_server():
    """moto's HTTP server (every service) on 127.0.0.1, a free port; its URL. Backends are in-process,
    so tests can still set EMR step states through moto's model objects."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def reset_moto_server(url: str) -> None:
    """Empty every moto backend (the server's documented reset endpoint)."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()


def http_connection(endpoint_url: str, emr_endpoint_url: str) -> str:
    """An Airflow AWS connection (JSON, for an AIRFLOW_CONN_* variable): every service at moto, EMR at
    ``emr_endpoint_url``. botocore's own retries are off so each injected fault reaches the DAG's code."""
    extra = {
        "region_name": REGION,
        "endpoint_url": endpoint_url,
        "service_config": {"emr": {"endpoint_url": emr_endpoint_url}},
        "config_kwargs": {
            "s3": {"addressing_style": "path"},
            "retries": {"mode": "standard", "total_max_attempts": 1},
            "connect_timeout": 5,
            "read_timeout": 30,
        },
    }
    return json.dumps({"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra})


@pytest.fixture
def aws_over_http(airflow_db, aws_env, moto_server, monkeypatch):
    """(moto server URL, FaultProxy in front of its EMR API); the connection HTTP_CONN_ID points there."""
    reset_moto_server(moto_server)
    proxy = FaultProxy(moto_server).start()
    monkeypatch.setenv(f"AIRFLOW_CONN_{HTTP_CONN_ID.upper()}", http_connection(moto_server, proxy.url))
    try:
        yield moto_server, proxy
    finally:
        proxy.stop()
        reset_moto_server(moto_server)
