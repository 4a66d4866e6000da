r"""Validation and normalisation of one raw interaction event (docs/contracts.md), in pure Python.

:func:`parse_raw` turns one raw line, any byte sequence, into either a normalised event or a reject
reason, and :func:`parse_line` does the same for a line already decoded. No Spark dependency, so the
whole contract is unit-tested directly, and parse_logs is property-tested against it. Duplicate
detection (``duplicate_event_id``) needs all lines at once and lives in parse_logs.

What a line is: the bytes between two ``\n`` (a ``\r`` before the ``\n`` stays in the line, where JSON
treats it as whitespace). A leading UTF-8 byte-order mark is stripped before parsing (editors on
Windows write one) and kept in ``raw``. A line that is not UTF-8 is rejected as ``invalid_utf8``; its
``raw`` is the text with each undecodable byte written ``\xNN``, and ``raw_base64`` holds the exact bytes.

Explicit limits, so that no line depends on the interpreter's (recursion, integer digits):
:data:`MAX_LINE_BYTES` per line (``line_too_long``), :data:`MAX_NESTING` levels of JSON arrays and
objects and :data:`MAX_INT_DIGITS` digits per JSON integer (both ``malformed_json``).
"""

from __future__ import annotations

import base64
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
INVALID_UTF8 = "invalid_utf8"
LINE_TOO_LONG = "line_too_long"
REJECT_REASONS = (
    INVALID_UTF8,
    LINE_TOO_LONG,
    MALFORMED_JSON,
    MISSING_FIELD,
    INVALID_TYPE,
    UNKNOWN_EVENT_TYPE,
    INVALID_TIMESTAMP,
    OUT_OF_RANGE_VALUE,
    DUPLICATE_EVENT_ID,
)

REQUIRED_FIELDS = ("event_id", "user_id", "item_id", "event_type", "ts")

MAX_LINE_BYTES = 1 << 20  # 1 MiB: a real event is a few hundred bytes
MAX_NESTING = 32  # levels of JSON arrays/objects; an event needs 2
# Integers past a double's range are still JSON (``out_of_range_value`` where a number is expected);
# the limit only stops the parse before Python's own 4,300-digit guard decides for us.
MAX_INT_DIGITS = 1000
_BOM = b"\xef\xbb\xbf"
_BLANK_BYTES = b" \t\r\n\x0b\x0c"

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


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"integer of {len(digits.lstrip('-'))} digits exceeds {MAX_INT_DIGITS}")
    return int(digits)


def nesting_depth(text: str) -> int:
    """Deepest level of ``[``/``{`` outside JSON strings (a malformed text still gets a number)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


class RawLine(NamedTuple):
    """One raw line's outcome: ``raw`` is what a person reads (always valid text), ``raw_base64`` the
    exact bytes when they are not UTF-8 (else None), ``parsed`` the verdict."""

    raw: str
    raw_base64: Optional[str]
    parsed: ParsedLine


def is_blank_bytes(data: Optional[bytes]) -> bool:
    """A blank line (empty, or ASCII whitespace only, after an optional BOM) is skipped and not counted."""
    if data is None:
        return True
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    return not data.strip(_BLANK_BYTES)


def parse_raw(data: bytes) -> RawLine:
    """Validate one non-blank raw line given as bytes (see the module docstring for what a line is)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        readable = data.decode("utf-8", errors="backslashreplace")
        detail = f"byte 0x{data[exc.start]:02x} at offset {exc.start} is not UTF-8"
        encoded = base64.b64encode(data).decode("ascii")
        return RawLine(readable, encoded, _reject(INVALID_UTF8, detail))
    if len(data) > MAX_LINE_BYTES:
        return RawLine(text, None, _reject(LINE_TOO_LONG, f"{len(data)} bytes > {MAX_LINE_BYTES}"))
    return RawLine(text, None, parse_line(text[1:] if text.startswith("\ufeff") else text))


def is_blank(line: Optional[str]) -> bool:
    """Blank lines (empty or ASCII whitespace only, after an optional BOM) are skipped and not counted."""
    return line is None or is_blank_bytes(line.encode("utf-8", errors="surrogatepass"))


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
    # Count brackets only when there could be too many: the common line has four.
    if line.count("[") + line.count("{") > MAX_NESTING and nesting_depth(line) > MAX_NESTING:
        return _reject(MALFORMED_JSON, f"JSON nested deeper than {MAX_NESTING} levels")
    try:
        record = json.loads(line, parse_constant=_reject_constant, parse_int=_bounded_int)
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
