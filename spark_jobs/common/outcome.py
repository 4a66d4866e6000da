"""Each job's own outcome record: a small JSON document written before the process exits.

On EMR a step runs in cluster mode: the step's log is the YARN client's ("Application … finished with
failed status") and the job's own error line is in the driver container's log, which EMR ships to S3
only minutes after the application ends. So a job given ``--outcome URI`` writes, as its last act::

    {"job": "parse_logs", "status": "succeeded" | "failed",
     "reason": "FAILED parse_logs: reject ratio …" | null,       # the line the job logged
     "error": {"type": "JobError", "message": "…", "traceback": "…last lines…"} | null,
     "exit_code": 0 | 2 | 1, "application_id": "application_…" | null,
     "started_at": "2024-01-31T02:03:04.123456+00:00", "ended_at": "…", "seconds": 12.3,
     "argv": […]}

The failure alert reads it first (docs/contracts.md). Writing it goes through Hadoop's FileSystem, as
every small file of the jobs does (s3:// on EMR, s3a:// locally, plain paths), through the job's Spark
session or, when the job failed before it had one, a session started for the purpose. A record that
cannot be written is logged and never changes the job's own exit status.
"""

from __future__ import annotations

import datetime as dt
import json
import traceback
from typing import Any, Dict, List, Optional, Sequence

OPTION = "--outcome"
TRACEBACK_LINES = 30  # the innermost frames and the exception: enough to find the line, small for SNS
MAX_TEXT = 4000  # JSON characters of a message or traceback kept: the record stays a few KB


def outcome_uri(argv: Sequence[str]) -> Optional[str]:
    """The ``--outcome`` value in a job's arguments (``--outcome URI`` or ``--outcome=URI``), or None.

    Read from the raw arguments, not argparse's result, so a job whose arguments do not parse still
    records why it failed.
    """
    for index, token in enumerate(argv):
        if token == OPTION and index + 1 < len(argv):
            return argv[index + 1]
        if token.startswith(OPTION + "="):
            return token.split("=", 1)[1]
    return None


def traceback_tail(exc: BaseException, lines: int = TRACEBACK_LINES) -> str:
    """The last ``lines`` lines of ``exc``'s formatted traceback, at most ``MAX_TEXT`` characters."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return _clip("\n".join(text.rstrip("\n").splitlines()[-lines:]))


def _clip(text: str) -> str:
    """The end of ``text``, cut so that it takes at most ``MAX_TEXT`` characters as a JSON string: the
    record is written as JSON, where a non-ASCII character or a control character takes up to six."""
    if len(json.dumps(text)) <= MAX_TEXT:
        return text
    low, high = 0, min(len(text), MAX_TEXT)  # the longest tail whose JSON form fits, by bisection
    while low < high:
        keep = (low + high + 1) // 2
        if len(json.dumps("…" + text[-keep:])) <= MAX_TEXT:
            low = keep
        else:
            high = keep - 1
    return "…" + text[-low:] if low else "…"


def outcome_record(
    job: str,
    *,
    exit_code: int,
    started_at: dt.datetime,
    ended_at: dt.datetime,
    argv: Sequence[str],
    reason: Optional[str] = None,
    error: Optional[BaseException] = None,
    application_id: Optional[str] = None,
) -> Dict[str, Any]:
    """The outcome document (see the module docstring); ``exit_code`` 0 means succeeded."""
    return {
        "job": job,
        "status": "succeeded" if exit_code == 0 else "failed",
        "reason": _clip(reason) if reason else None,
        "error": None
        if error is None
        else {"type": type(error).__name__, "message": _clip(str(error)), "traceback": traceback_tail(error)},
        "exit_code": exit_code,
        "application_id": application_id,
        "started_at": started_at.isoformat(),
        "ended_at": ended_at.isoformat(),
        "seconds": round((ended_at - started_at).total_seconds(), 3),
        "argv": list(argv),
    }


def application_id() -> Optional[str]:
    """The running Spark application's id, if a session exists (never starts one)."""
    session = _active_session()
    return session.sparkContext.applicationId if session is not None else None


def _active_session():
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover - the jobs always run with pyspark
        return None
    return SparkSession.getActiveSession()


def write_outcome(uri: str, record: Dict[str, Any], job: str) -> List[str]:
    """Write ``record`` to ``uri``; returns problems met (empty when written). Never raises."""
    from spark_jobs.common import fs

    problems: List[str] = []
    try:
        session = _active_session()
        if session is None:
            from spark_jobs.common.session import build_spark

            session = build_spark(job)
        fs.write_json(session, uri, record)
    except Exception as exc:  # the job's own outcome stands; the alert falls back to the logs
        problems.append(f"could not write the outcome record to {uri}: {type(exc).__name__}: {exc}")
    return problems
