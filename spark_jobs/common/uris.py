"""URI helpers. Jobs take URIs: ``s3://bucket/prefix`` on EMR, local paths or ``file://`` locally."""

from __future__ import annotations

import datetime as dt
import re

_DT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def join_uri(base: str, *parts: str) -> str:
    """Join URI segments with single slashes: ``join_uri("s3://b/p/", "dt=2024-01-01")``."""
    out = base.rstrip("/")
    for part in parts:
        out = out + "/" + part.strip("/")
    return out


def parse_date(text: str) -> dt.date:
    """Parse ``YYYY-MM-DD`` strictly (raises ValueError otherwise)."""
    if not _DT_RE.match(text):
        raise ValueError(f"expected a date as YYYY-MM-DD, got {text!r}")
    return dt.date.fromisoformat(text)


def dt_partition(base: str, day: dt.date) -> str:
    """The ``dt=YYYY-MM-DD`` folder of ``base`` for ``day``."""
    return join_uri(base, f"dt={day.isoformat()}")


def lookback_days(run_date: dt.date, days: int) -> list[dt.date]:
    """The ``days`` calendar days ending at ``run_date`` (inclusive), oldest first."""
    if days < 1:
        raise ValueError("lookback must be at least 1 day")
    return [run_date - dt.timedelta(days=offset) for offset in range(days - 1, -1, -1)]
