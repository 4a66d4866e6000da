"""CLI plumbing shared by the job entry points: argument types and the failure contract.

A job that fails on purpose raises :class:`JobError`; :func:`run_job` logs ``FAILED <job>: <reason>`` and
exits with status 2, so spark-submit, EMR and Airflow all see a failed step with a readable reason.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional, Sequence

from spark_jobs.common.joblog import get_logger
from spark_jobs.common.uris import parse_date


class JobError(RuntimeError):
    """A deliberate, explained job failure (bad input, threshold exceeded, missing data)."""


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
    """An argument parser whose help shows defaults."""
    return argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )


def run_job(job: str, main: Callable[[Optional[Sequence[str]]], None], argv: Optional[Sequence[str]] = None):
    """Run ``main(argv)``; turn a :class:`JobError` into a logged failure and exit status 2."""
    log = get_logger(job)
    try:
        main(argv)
    except JobError as exc:
        log.error("FAILED %s: %s", job, exc)
        sys.exit(2)
