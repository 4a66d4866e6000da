"""Validation and normalisation of one raw interaction event (docs/contracts.md), in pure Python.

:func:`parse_line` turns one raw JSON line into either a normalised event or a reject reason. It has no
Spark dependency so the whole contract is unit-tested directly; parse_logs applies it to every line.
Duplicate detection (``duplicate_event_id``) needs all lines at once and lives in parse_logs.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any, Dict, NamedTuple, Optional

EVENT_TYPES = ("view", "click", "add_to_cart", "purchase", "rating")
RATING_MIN, RATING_MAX = 0.5, 5.0

# Reject reasons, in the order the checks run (a line gets the first that applies).
MALFORMED_JSON = "malformed_json"
MISSING_FIELD = "missing_field"
INVALID_TYPE = "invalid_type"
UNKNOWN_EVENT_TYPE = "unknown_event_type"
INVALID_TIMESTAMP = "invalid_timestamp"
OUT_OF_RANGE_VALUE = "out_of_range_value"
DUPLICATE_EVENT_ID = "duplicate_event_id"
REJECT_REASONS = (
    MALFORMED_JSON,
    MISSING_FIELD,
    INVALID_TYPE,
    UNKNOWN_EVENT_TYPE,
    INVALID_TIMESTAMP,
    OUT_OF_RANGE_VALUE,
    DUPLICATE_EVENT_ID,
)

REQUIRED_FIELDS = ("event_id", "user_id", "item_id", "event_type", "ts")

# ISO-8601 date-time with a mandatory offset (Z or ±HH:MM / ±HHMM); fraction up to nanoseconds.
_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?"
    r"(Z|z|[+-]\d{2}(?::?\d{2})?)$"
)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
# Epoch milliseconds accepted: 1970-01-01 to 9999-12-31 (what a Spark timestamp and Python can hold).
_MAX_EPOCH_MS = 253402300799999


class ParsedLine(NamedTuple):
    """Outcome for one non-blank line: ``reason`` is None for an accepted event."""

    reason: Optional[str]
    detail: Optional[str]
    event_id: Optional[str] = None
    user_id: Optional[str] = None
    item_id: Optional[str] = None
    event_type: Optional[str] = None
    event_ts_us: Optional[int] = None  # microseconds since the epoch, UTC
    session_id: Optional[str] = None
    value: Optional[float] = None


def _reject(reason: str, detail: str) -> ParsedLine:
    return ParsedLine(reason=reason, detail=detail)


def _reject_constant(token: str) -> float:
    # json.loads accepts NaN/Infinity by default; they are not JSON and not valid values.
    raise ValueError(f"non-standard JSON constant {token}")


def is_blank(line: Optional[str]) -> bool:
    """Blank lines (empty or whitespace only) are skipped and not counted."""
    return line is None or not line.strip()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_timestamp_us(raw: Any) -> Optional[int]:
    """UTC microseconds since the epoch for an ISO-8601-with-offset string or integer epoch milliseconds.

    Returns None when the value is of the right type but not a valid timestamp (no offset, impossible
    date, out of range). The caller checks the type first.
    """
    if _is_int(raw):
        if 0 <= raw <= _MAX_EPOCH_MS:
            return raw * 1000
        return None
    match = _ISO_RE.match(raw.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        if offset in ("Z", "z"):
            tz = dt.timezone.utc
        else:
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            hours, minutes = int(digits[:2]), int(digits[2:] or 0)
            if hours > 23 or minutes > 59:
                return None
            tz = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
        micros = int((fraction or "0").ljust(6, "0")[:6])
        moment = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tzinfo=tz
        )
    except (ValueError, OverflowError):
        return None
    delta = moment - _EPOCH
    if delta.days < 0:
        return None
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_line(line: str) -> ParsedLine:
    """Validate and normalise one non-blank raw line (see the contract in docs/contracts.md).

    Ids become strings, ``ts`` becomes UTC microseconds, ``value`` a float. Unknown fields are ignored.
    """
    try:
        record = json.loads(line, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        return _reject(MALFORMED_JSON, str(exc)[:200])
    if not isinstance(record, dict):
        return _reject(MALFORMED_JSON, f"top-level JSON {type(record).__name__}, expected an object")

    for field in REQUIRED_FIELDS:
        value = record.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            return _reject(MISSING_FIELD, field)

    event_id, user_id, item_id = record["event_id"], record["user_id"], record["item_id"]
    event_type, ts = record["event_type"], record["ts"]
    session_id, value = record.get("session_id"), record.get("value")
    if not isinstance(event_id, str):
        return _reject(INVALID_TYPE, "event_id")
    for name, ident in (("user_id", user_id), ("item_id", item_id)):
        if not (isinstance(ident, str) or _is_int(ident)):
            return _reject(INVALID_TYPE, name)
    if not isinstance(event_type, str):
        return _reject(INVALID_TYPE, "event_type")
    if not (isinstance(ts, str) or _is_int(ts)):
        return _reject(INVALID_TYPE, "ts")
    if session_id is not None and not isinstance(session_id, str):
        return _reject(INVALID_TYPE, "session_id")
    if value is not None and not _is_number(value):
        return _reject(INVALID_TYPE, "value")

    if event_type not in EVENT_TYPES:
        return _reject(UNKNOWN_EVENT_TYPE, event_type[:100])
    if event_type == "rating" and value is None:
        return _reject(MISSING_FIELD, "value")

    ts_us = parse_timestamp_us(ts)
    if ts_us is None:
        return _reject(INVALID_TIMESTAMP, str(ts)[:100])

    if value is not None:
        try:
            value = float(value)
        except OverflowError:  # an integer too large for a double
            return _reject(OUT_OF_RANGE_VALUE, "value too large")
        if not math.isfinite(value):
            return _reject(OUT_OF_RANGE_VALUE, str(value))
        if event_type == "rating" and not RATING_MIN <= value <= RATING_MAX:
            return _reject(OUT_OF_RANGE_VALUE, f"rating {value} outside [{RATING_MIN}, {RATING_MAX}]")
        if value < 0:
            return _reject(OUT_OF_RANGE_VALUE, f"negative value {value}")

    return ParsedLine(
        reason=None,
        detail=None,
        event_id=event_id,
        user_id=str(user_id),
        item_id=str(item_id),
        event_type=event_type,
        event_ts_us=ts_us,
        session_id=session_id,
        value=value,
    )


def as_dict(parsed: ParsedLine) -> Dict[str, Any]:
    """The parsed line as a plain dict (for tests and debugging)."""
    return parsed._asdict()
