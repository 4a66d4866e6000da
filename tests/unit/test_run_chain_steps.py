"""The chain's commands are steps.json's, rendered as the DAG renders it, with local locations."""

from __future__ import annotations

from pathlib import Path

import pytest
from recsys_dag.locations import JOBS

from tools.local.run_chain import (
    client_mode,
    engine_config,
    local_config,
    localize,
    localize_args,
    project_version,
    step_commands,
)

pytestmark = pytest.mark.unit
WORK = Path("/chain-work")


@pytest.fixture(scope="module")
def commands():
    cfg = engine_config({**local_config(project_version()), "factors": 7}, "implicit:bpr")
    return cfg, step_commands(cfg, "2024-03-05", WORK)


def test_every_step_of_the_template_in_order(commands):
    _, steps = commands
    assert tuple(steps) == JOBS


def test_each_command_is_a_client_mode_spark_submit_of_the_packaged_job(commands):
    cfg, steps = commands
    code = WORK / cfg.artifact_bucket / cfg.code_prefix / cfg.code_version
    for name, argv in steps.items():
        assert argv[0] == "spark-submit"
        assert argv[argv.index("--deploy-mode") + 1] == "client"
        assert argv[argv.index("--py-files") + 1] == str(code / "spark_jobs.zip")
        assert str(code / "jobs" / f"{name}.py") in argv
        assert not [arg for arg in argv if "s3://" in arg], name


def test_the_config_reaches_the_arguments(commands):
    cfg, steps = commands
    train = steps["train_cf"]
    values = {train[i]: train[i + 1] for i in range(len(train) - 1) if train[i].startswith("--")}
    assert values["--factors"] == "7" and values["--algorithm"] == "bpr"
    assert values["--num-threads"] == str(cfg.train_driver_cores)
    assert values["--run-date"] == "2024-03-05"
    # Each engine writes under a runs prefix of its own.
    assert values["--output"] == str(WORK / cfg.artifact_bucket / "runs/implicit-bpr/dt=2024-03-05/model")


def test_localize_maps_bucket_and_key_under_the_work_folder():
    assert localize("s3://lake/raw/dt=1", WORK) == WORK / "lake" / "raw" / "dt=1"
    assert localize_args(["--x", "s3://b/k/", "plain"], WORK) == ["--x", f"{WORK}/b/k/", "plain"]
    with pytest.raises(ValueError):
        localize("file:///tmp", WORK)


def test_client_mode_rewrites_only_the_deploy_mode():
    argv = ["spark-submit", "--deploy-mode", "cluster", "--driver-cores", "4", "job.py", "--deploy-mode", "x"]
    assert client_mode(argv) == [
        "spark-submit", "--deploy-mode", "client", "--driver-cores", "4", "job.py", "--deploy-mode", "x"
    ]  # fmt: skip
