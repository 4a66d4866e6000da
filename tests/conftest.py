"""Shared fixtures: one local Spark session per test session (starting Spark costs ~5-10 s)."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Airflow reads its configuration when first imported: point it at a throw-away home (SQLite metadata DB)
# and at this project's DAGs before any test module imports it. Never a developer's real AIRFLOW_HOME.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="recsys-airflow-test-")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.pop("AIRFLOW_VAR_RECSYS_TRAINING_CONFIG", None)
sys.path.insert(0, str(ROOT / "dags"))  # as Airflow does for its DAGs folder
# py4j logs "Closing down clientserver connection" from __del__ at interpreter exit, after pytest has
# closed the captured stream it would write to.
logging.getLogger("py4j").setLevel(logging.WARNING)
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


@pytest.fixture(scope="session")
def spark():
    """A small local Spark session (2 threads, 2 shuffle partitions, UTC, loopback only)."""
    from spark_jobs.common.session import build_spark

    os.environ.setdefault("PYSPARK_SUBMIT_ARGS", "--master local[2] pyspark-shell")
    session = build_spark(
        "recsys-tests",
        {
            "spark.master": "local[2]",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.host": "127.0.0.1",
        },
    )
    yield session
    session.stop()


# The suites under these folders share one local stack (its ports, buckets and alert inbox) and run in
# file order, so under pytest-xdist (make test) they count as one file, run by one worker.
SHARED_STACK_SUITES = ("tests/localstack/", "tests/e2e/")


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: without the plugin it is never called
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile``, except that every suite of the shared local stack is one unit of work.

    (pytest-xdist's own ``loadgroup`` marks do nothing under pytest 9.2: it renames items through an
    attribute the node id no longer reads.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedStackScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(SHARED_STACK_SUITES):
                return "shared local stack"
            return super()._split_scope(nodeid)

    return SharedStackScheduling(config, log)
