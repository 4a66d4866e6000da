"""How the step runner turns EMR step arguments into a local command (pure functions, no servers)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

import pytest
from local_emr.command import UnsupportedStep, local_command, split_spark_submit
from local_emr.config import RunnerConfig
from local_emr.step_logs import failure_message, step_log_prefix

pytestmark = pytest.mark.localstack

CONFIG = RunnerConfig(
    localstack_url="http://127.0.0.1:4566",
    dynamodb_url="http://127.0.0.1:4581",
    region="us-east-1",
    access_key="test",
    secret_key="test",
    work_dir=Path("/state/emr"),
    jars=(Path("/jars/hadoop-aws.jar"), Path("/jars/sdk.jar")),
    python=Path("/venv/bin/python"),
    spark_conf_dir=Path("/conf"),
)
DAG_STEP = [
    "spark-submit",
    "--deploy-mode",
    "cluster",
    "--master",
    "yarn",
    "--py-files",
    "s3://code/spark_jobs.zip",
    "s3://code/jobs/parse_logs.py",
    "--input",
    "s3://lake/raw/dt=2024-01-01",
    "--max-reject-ratio",
    "0.1",
]


def _option(argv: List[str], name: str) -> List[str]:
    return [argv[i + 1] for i, token in enumerate(argv[:-1]) if token == name]


def test_spark_submit_is_rewritten_for_local_spark() -> None:
    command = local_command("command-runner.jar", DAG_STEP, CONFIG, {"PATH": "/usr/bin"})
    argv = command.argv
    assert argv[0] == "/venv/bin/spark-submit"
    assert _option(argv, "--deploy-mode") == ["client"]
    assert "--master" not in argv
    # On the driver's class path, not in --jars: spark-submit fetches s3:// resources before it loads
    # --jars, and in local mode the executors share the driver's JVM.
    assert _option(argv, "--driver-class-path") == [f"/jars/hadoop-aws.jar{os.pathsep}/jars/sdk.jar"]
    assert "--jars" not in argv
    confs = dict(value.split("=", 1) for value in _option(argv, "--conf"))
    assert confs["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert confs["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:4566"
    assert confs["spark.hadoop.fs.s3a.path.style.access"] == "true"
    # The primary resource, py-files and the application's arguments are kept as they are.
    assert _option(argv, "--py-files") == ["s3://code/spark_jobs.zip"]
    assert argv[-5:] == DAG_STEP[-5:]
    assert any("cluster -> client" in note for note in command.notes)
    env = command.env
    assert env["PATH"].startswith("/venv/bin" + os.pathsep)
    assert env["PYSPARK_PYTHON"] == "/venv/bin/python"
    assert env["SPARK_CONF_DIR"] == "/conf"


def test_step_options_are_merged_not_lost() -> None:
    args = [
        "spark-submit",
        "--jars",
        "s3://code/extra.jar",
        "--driver-class-path",
        "/extra/extra.jar",
        "--conf",
        "spark.hadoop.fs.s3a.endpoint=http://elsewhere",
        "--conf=spark.submit.deployMode=cluster",
        "--verbose",
        "app.py",
        "--conf",
        "not-an-option-of-spark",
    ]
    argv = local_command("command-runner.jar", args, CONFIG, {}).argv
    assert _option(argv, "--jars") == ["s3://code/extra.jar"]
    assert _option(argv, "--driver-class-path") == [
        os.pathsep.join(["/extra/extra.jar", "/jars/hadoop-aws.jar", "/jars/sdk.jar"])
    ]
    # The step's own --conf comes after ours: spark-submit keeps the last value of a key.
    endpoints = [v for v in _option(argv, "--conf") if v.startswith("spark.hadoop.fs.s3a.endpoint=")]
    assert endpoints[-1] == "spark.hadoop.fs.s3a.endpoint=http://elsewhere"
    assert "--conf=spark.submit.deployMode=cluster" not in argv
    assert "--verbose" in argv
    assert argv[-3:] == ["app.py", "--conf", "not-an-option-of-spark"]


def test_split_spark_submit_finds_the_primary_resource() -> None:
    options, rest = split_spark_submit(["--verbose", "--name", "x", "--conf=a=b", "job.py", "--flag"])
    assert options == [("--verbose", None), ("--name", "x"), ("--conf", "a=b")]
    assert rest == ["job.py", "--flag"]


def test_other_commands_run_as_given_and_custom_jars_are_refused() -> None:
    assert local_command("command-runner.jar", ["bash", "-c", "exit 3"], CONFIG, {}).argv == [
        "bash",
        "-c",
        "exit 3",
    ]
    with pytest.raises(UnsupportedStep, match=r"command-runner\.jar"):
        local_command("s3://bucket/app.jar", ["x"], CONFIG, {})
    with pytest.raises(UnsupportedStep):
        local_command("command-runner.jar", [], CONFIG, {})


def test_step_environment_does_not_leak_the_callers_settings() -> None:
    caller = {
        "AWS_PROFILE": "prod",
        "PATH": "/bin",
        "SPARK_HOME": "/other/spark-4",
        "PYTHONPATH": "localstack",
    }
    env = local_command("command-runner.jar", ["true"], CONFIG, caller).env
    assert not {"AWS_PROFILE", "SPARK_HOME", "PYTHONPATH"} & set(env)
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == "http://127.0.0.1:4581"  # boto3's per-service endpoint
    assert env["AWS_ACCESS_KEY_ID"] == "test"


@pytest.mark.parametrize(
    ("log_uri", "expected"),
    [
        ("s3://logs/emr-logs/", ("logs", "emr-logs/j-1/steps/s-1/")),
        ("s3n://logs/emr-logs", ("logs", "emr-logs/j-1/steps/s-1/")),
        ("s3://logs", ("logs", "j-1/steps/s-1/")),
    ],
)
def test_step_log_prefix_follows_emrs_layout(log_uri: str, expected: tuple) -> None:
    assert step_log_prefix(log_uri, "j-1", "s-1") == expected


@pytest.mark.parametrize(
    ("stderr", "stdout", "expected"),
    [
        (
            "WARN x\nFAILED parse_logs: reject ratio 0.4 > 0.1\n",
            "",
            "FAILED parse_logs: reject ratio 0.4 > 0.1",
        ),
        ("26/01/01 WARN MetricsConfig: x\n", "Traceback:\n  File x\nValueError: bad\n", "ValueError: bad"),
        (
            "Exception in thread main java.io.IOException: gone\n",
            "",
            "Exception in thread main java.io.IOException: gone",
        ),
        ("just a last line\n", "", "just a last line"),
        ("", "", "Step command exited with status 7"),
    ],
)
def test_failure_message_names_the_final_error(
    tmp_path: Path, stderr: str, stdout: str, expected: str
) -> None:
    (tmp_path / "stderr").write_text(stderr)
    (tmp_path / "stdout").write_text(stdout)
    assert failure_message(tmp_path, 7) == expected
