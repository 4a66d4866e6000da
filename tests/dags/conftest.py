"""Fixtures for the DAG suite: a migrated Airflow metadata DB, AWS under moto, and DAG loading."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILE = DAGS / "recsys_training.py"
REGION = "us-east-1"


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
