"""CLI plumbing shared by the job entry points: argument types and the failure contract.

A job that fails on purpose raises :class:`JobError`; :func:`run_job` logs ``FAILED <job>: <reason>`` and
exits with status 2, so spark-submit, EMR and Airflow all see a failed step with a readable reason. Any
other exception is logged the same way (``FAILED <job>: <Type>: <message>``) before Python prints its
traceback and exits 1. With ``--outcome URI`` (every job accepts it), the job also writes its outcome
record there before exiting (:mod:`spark_jobs.common.outcome`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Callable, NoReturn, Optional, Sequence

from spark_jobs.common import outcome
from spark_jobs.common.joblog import get_logger
from spark_jobs.common.uris import parse_date


class JobError(RuntimeError):
    """A deliberate, explained job failure (bad input, threshold exceeded, missing data)."""


class InvalidArguments(SystemExit):
    """argparse's exit on bad arguments (status 2), keeping its message for the outcome record."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message


class _JobArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self._print_message(f"{self.prog}: error: {message}\n", sys.stderr)
        raise InvalidArguments(f"invalid arguments: {message}")


def date_arg(text: str):
    """argparse type for ``YYYY-MM-DD``."""
    try:
        return parse_date(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def ratio_arg(text: str) -> float:
    """argparse type for a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def positive_int_arg(text: str) -> int:
    """argparse type for an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def json_object_arg(text: str) -> dict:
    """argparse type for a JSON object."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def non_negative_float_arg(text: str) -> float:
    """argparse type for a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def new_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An argument parser whose help shows defaults, with the ``--outcome`` option every job has."""
    parser = _JobArgumentParser(
        prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        outcome.OPTION,
        default=None,
        metavar="URI",
        help="write this run's outcome record (JSON: status, reason, traceback tail) here before exiting",
    )
    return parser


def run_job(job: str, main: Callable[[Optional[Sequence[str]]], None], argv: Optional[Sequence[str]] = None):
    """Run ``main(argv)``: exit status 0, 2 (:class:`JobError`, bad arguments) or 1 (anything else).

    Failures are logged as ``FAILED <job>: <reason>``; with ``--outcome URI`` the outcome record is
    written before the process exits, whatever happened.
    """
    log = get_logger(job)
    arguments = list(sys.argv[1:] if argv is None else argv)
    started = dt.datetime.now(dt.timezone.utc)
    exit_code, reason, error = 0, None, None
    try:
        main(argv)
    except JobError as exc:
        exit_code, reason, error = 2, f"FAILED {job}: {exc}", exc
    except InvalidArguments as exc:
        exit_code, reason = 2, f"FAILED {job}: {exc.message}"
    except SystemExit as exc:  # --help (0), or a library calling sys.exit
        exit_code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        reason = f"FAILED {job}: exited with status {exit_code}" if exit_code else None
        if exit_code == 0:
            raise
    except BaseException as exc:  # recorded, then re-raised so Python prints the traceback
        exit_code, reason, error = 1, f"FAILED {job}: {type(exc).__name__}: {exc}", exc
    if reason:
        log.error("%s", reason)
    uri = outcome.outcome_uri(arguments)
    if uri:
        record = outcome.outcome_record(
            job,
            exit_code=exit_code,
            started_at=started,
            ended_at=dt.datetime.now(dt.timezone.utc),
            argv=arguments,
            reason=reason,
            error=error,
            application_id=outcome.application_id(),
        )
        for problem in outcome.write_outcome(uri, record, job):
            log.warning("%s", problem)
    if error is not None and not isinstance(error, JobError):
        raise error
    if exit_code:
        sys.exit(exit_code)
