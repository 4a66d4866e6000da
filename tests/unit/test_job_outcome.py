"""Every job records its own outcome before it exits: the failure alert's first source of the cause."""

from __future__ import annotations

import json

import pytest

from spark_jobs.common import outcome
from spark_jobs.common.cli import JobError, new_parser, run_job


@pytest.mark.unit
@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--input", "x", "--outcome", "s3://b/o.json"], "s3://b/o.json"),
        (["--outcome=s3://b/o.json", "--input", "x"], "s3://b/o.json"),
        (["--input", "x"], None),
        (["--input", "x", "--outcome"], None),  # no value: argparse will refuse it, nothing to write to
    ],
)
def test_outcome_uri_is_read_from_raw_arguments(argv, expected):
    assert outcome.outcome_uri(argv) == expected


@pytest.mark.unit
def test_record_stays_small_whatever_the_error():
    import datetime as dt

    def deep(n):
        if n == 0:
            raise RecursionError("deep")
        deep(n - 1)

    def huge_line():
        raise ValueError("x" * 1_000_000)

    def many_lines():  # KeyError's message is the repr of its argument: every newline doubles
        raise KeyError("\n".join(["line"] * 100_000))

    def not_ascii():  # six JSON characters per character
        raise ValueError("\u00e9\u4e2d\U0001f600" * 300_000)

    now = dt.datetime(2024, 1, 31, tzinfo=dt.timezone.utc)
    shapes = (
        ("ValueError", huge_line),
        ("KeyError", many_lines),
        ("ValueError", not_ascii),
        ("RecursionError", lambda: deep(500)),
    )
    for name, fail in shapes:  # a huge message, many lines, non-ASCII text, a deep traceback
        try:
            fail()
        except Exception as exc:
            error = exc
        record = outcome.outcome_record(
            "demo", exit_code=1, started_at=now, ended_at=now, argv=[], reason="\u00e9" * 100_000, error=error
        )
        assert record["status"] == "failed" and record["error"]["type"] == name
        assert len(json.dumps(record)) < 3 * outcome.MAX_TEXT + 1000, name


def _main_raising(exc):
    def main(argv):
        parser = new_parser("demo", "demo job")
        parser.add_argument("--size", type=int, required=True)
        parser.parse_args(argv)
        raise exc

    return main


@pytest.mark.spark
def test_a_job_error_is_recorded_then_exits_2(spark, tmp_path):
    target = tmp_path / "outcomes" / "demo.json"
    with pytest.raises(SystemExit) as exited:
        run_job(
            "demo",
            _main_raising(JobError("reject ratio 0.3 exceeds 0.1")),
            ["--size", "1", "--outcome", str(target)],
        )
    assert exited.value.code == 2
    record = json.loads(target.read_text())
    assert record["status"] == "failed" and record["exit_code"] == 2
    assert record["reason"] == "FAILED demo: reject ratio 0.3 exceeds 0.1"
    assert record["application_id"] == spark.sparkContext.applicationId
    assert record["argv"] == ["--size", "1", "--outcome", str(target)]
    assert "JobError" in record["error"]["traceback"]


@pytest.mark.spark
def test_an_unexpected_exception_is_recorded_and_re_raised(spark, tmp_path):
    target = tmp_path / "demo.json"
    with pytest.raises(KeyError):
        run_job("demo", _main_raising(KeyError("user_idx")), ["--size", "1", "--outcome", str(target)])
    record = json.loads(target.read_text())
    assert (record["status"], record["exit_code"]) == ("failed", 1)
    assert record["reason"] == "FAILED demo: KeyError: 'user_idx'"
    assert "KeyError: 'user_idx'" in record["error"]["traceback"]


@pytest.mark.spark
def test_bad_arguments_are_recorded_with_argparse_message(spark, tmp_path):
    target = tmp_path / "demo.json"
    with pytest.raises(SystemExit) as exited:
        run_job("demo", _main_raising(AssertionError()), ["--size", "many", "--outcome", str(target)])
    assert exited.value.code == 2
    record = json.loads(target.read_text())
    assert record["reason"] == "FAILED demo: invalid arguments: argument --size: invalid int value: 'many'"


@pytest.mark.spark
def test_success_is_recorded_too(spark, tmp_path):
    target = tmp_path / "demo.json"
    run_job("demo", lambda argv: None, ["--outcome", str(target)])
    record = json.loads(target.read_text())
    assert (record["status"], record["exit_code"], record["reason"], record["error"]) == (
        "succeeded",
        0,
        None,
        None,
    )


@pytest.mark.spark
def test_an_unwritable_outcome_never_changes_the_exit_status(spark, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    problems = outcome.write_outcome(str(blocker / "x.json"), {"status": "failed"}, "demo")
    assert len(problems) == 1 and problems[0].startswith(f"could not write the outcome record to {blocker}")
    unwritable = ["--size", "1", "--outcome", str(blocker / "x.json")]
    with pytest.raises(SystemExit) as exited:
        run_job("demo", _main_raising(JobError("boom")), unwritable)
    assert exited.value.code == 2
    # Nor any other: an unexpected exception is still re-raised, bad arguments exit 2, success returns.
    with pytest.raises(KeyError, match="user_idx"):
        run_job("demo", _main_raising(KeyError("user_idx")), unwritable)
    with pytest.raises(SystemExit) as exited:
        run_job("demo", _main_raising(AssertionError()), ["--size", "many", *unwritable[2:]])
    assert exited.value.code == 2
    assert run_job("demo", lambda argv: None, unwritable[2:]) is None  # no SystemExit: status 0


# Each job's required options (the rest have defaults); parse_args exits on anything else.
JOB_ARGUMENTS = {
    "parse_logs": ["--input", "i", "--output", "o", "--rejects", "r"],
    "build_features": ["--events", "e", "--run-date", "2024-01-01", "--output", "o"],
    "train_cf": ["--features", "f", "--output", "o"],
    "tune_trial": ["--features", "f", "--output", "o", "--name", "n"],
    "evaluate": ["--features", "f", "--recommendations", "r", "--output", "o"],
    "load_serving": ["--recommendations", "r", "--features", "f", "--version", "v", "--table", "t"],
}


@pytest.mark.unit
def test_every_job_accepts_the_outcome_option():
    import importlib

    from recsys_dag.locations import JOBS, TUNING_JOBS

    assert set(JOB_ARGUMENTS) == set(JOBS + TUNING_JOBS)  # every job both DAGs run
    for job, required in JOB_ARGUMENTS.items():
        args = importlib.import_module(f"spark_jobs.{job}").parse_args(
            [*required, "--outcome", "s3://b/k.json"]
        )
        assert args.outcome == "s3://b/k.json", job
