"""Publishing a day of parsed events: attempts are written aside, a pointer written last names the good one.

S3 has no rename and Spark writes ``_SUCCESS`` after every write, so neither a folder's existence nor
its ``_SUCCESS`` says "this day passed its checks". Layout of one day (``<parsed>/dt=YYYY-MM-DD/``)::

    _attempts/<attempt id>/part-*.parquet, _stats.json    every run of parse_logs for the day
    _PUBLISHED.json                                        {"attempt", "events", "rejects", "stats", ...}

``_PUBLISHED.json`` is written last, and only when the attempt is within the reject ratio; one PUT, so
a reader sees the old pointer or the new one. A failing rerun leaves the previous pointer, and the
data it names, as they were. Readers (build_features) go through the pointer only; the ``_`` prefixes
hide the attempts from Spark and pyarrow, so reading the day folder directly reads nothing rather than
a mix of attempts. After publishing, attempts other than the new and the previously published one are
deleted (a reader that has just read the old pointer still finds its data).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Union

from spark_jobs.common import fs

if TYPE_CHECKING:  # local_pointer is read by tools without pyspark imported
    from pyspark.sql import SparkSession
from spark_jobs.common.uris import join_uri

POINTER = "_PUBLISHED.json"
ATTEMPTS = "_attempts"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def new_attempt_id(application_id: str, now: dt.datetime, token: Optional[str] = None) -> str:
    """``<UTC yyyymmddTHHMMSSZ>-<application id>-<8 hex>``: sorts by start time, names the Spark
    application whose logs tell its story, and the random token keeps two runs in one application (and
    second) apart."""
    token = token or uuid.uuid4().hex[:8]
    return f"{now.astimezone(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{_UNSAFE.sub('_', application_id)}-{token}"


def attempt_uri(day_uri: str, attempt_id: str) -> str:
    """Where attempt ``attempt_id`` of the day at ``day_uri`` writes."""
    return join_uri(day_uri, ATTEMPTS, attempt_id)


def pointer_uri(day_uri: str) -> str:
    return join_uri(day_uri, POINTER)


def read_pointer(spark: SparkSession, day_uri: str) -> Optional[Dict[str, Any]]:
    """The day's published pointer, or None if the day was never published."""
    uri = pointer_uri(day_uri)
    return fs.read_json(spark, uri) if fs.exists(spark, uri) else None


def publish(
    spark: SparkSession, day_uri: str, pointer: Dict[str, Any], also_prune: Sequence[str] = ()
) -> List[str]:
    """Write ``pointer`` (it must name ``attempt``), then prune older attempts; returns the pruned ids.

    ``also_prune``: other day folders with the same attempts (the rejects), pruned alike.
    """
    previous = read_pointer(spark, day_uri)
    fs.write_json(spark, pointer_uri(day_uri), pointer)
    keep = {pointer["attempt"], (previous or {}).get("attempt")}
    pruned = set()
    for root in (day_uri, *also_prune):
        for name in fs.list_folders(spark, join_uri(root, ATTEMPTS)):
            if name not in keep:
                fs.delete(spark, attempt_uri(root, name))
                pruned.add(name)
    return sorted(pruned)


def day_state(spark: SparkSession, day_uri: str) -> Dict[str, Any]:
    """``{"state": "published" | "unpublished" | "missing", "pointer": dict | None, "attempts": [...]}``.

    ``unpublished``: the day folder exists (some attempt ran) but no attempt passed its checks.
    """
    pointer = read_pointer(spark, day_uri)
    if pointer is not None:
        return {"state": "published", "pointer": pointer, "attempts": None}
    if not fs.exists(spark, day_uri):
        return {"state": "missing", "pointer": None, "attempts": []}
    attempts = fs.list_folders(spark, join_uri(day_uri, ATTEMPTS))
    return {"state": "unpublished", "pointer": None, "attempts": attempts}


def local_pointer(day_dir: Union[str, Path]) -> Dict[str, Any]:
    """The pointer of a day folder on local disk, read without Spark (tools, tests, benchmarks).

    Raises FileNotFoundError, naming the folder, when the day was never published.
    """
    path = Path(day_dir) / POINTER
    if not path.exists():
        raise FileNotFoundError(f"{Path(day_dir)} has no {POINTER}: the day was never published")
    return json.loads(path.read_text(encoding="utf-8"))
