"""The raw-event contract (docs/contracts.md), line by line, on the pure validator."""

from __future__ import annotations

import json

import pytest

from spark_jobs.common.events import (
    DUPLICATE_EVENT_ID,
    INVALID_TIMESTAMP,
    INVALID_TYPE,
    MALFORMED_JSON,
    MISSING_FIELD,
    OUT_OF_RANGE_VALUE,
    REJECT_REASONS,
    UNKNOWN_EVENT_TYPE,
    is_blank,
    parse_line,
    parse_timestamp_us,
)

pytestmark = pytest.mark.unit

GOOD = {
    "event_id": "e1",
    "user_id": "u1",
    "item_id": "i1",
    "event_type": "view",
    "ts": "2024-01-02T03:04:05Z",
}
TS_2024_01_02_030405_US = 1704164645 * 1_000_000


def line(**changes) -> str:
    record = dict(GOOD)
    for key, value in changes.items():
        if value is _DROP:
            record.pop(key)
        else:
            record[key] = value
    return json.dumps(record)


_DROP = object()


def test_valid_event_is_normalised():
    parsed = parse_line(line(user_id=42, item_id=7, session_id="s9", extra={"ignored": True}))
    assert parsed.reason is None
    assert (parsed.event_id, parsed.user_id, parsed.item_id) == ("e1", "42", "7")
    assert parsed.event_type == "view"
    assert parsed.event_ts_us == TS_2024_01_02_030405_US
    assert parsed.session_id == "s9"
    assert parsed.value is None


@pytest.mark.parametrize(
    "ts",
    [
        "2024-01-02T03:04:05Z",
        "2024-01-02T03:04:05+00:00",
        "2024-01-02T05:34:05+02:30",
        "2024-01-01T19:04:05-08:00",
        "2024-01-02T04:04:05+0100",
        "2024-01-02 03:04:05Z",
        1704164645000,
    ],
)
def test_timestamps_normalise_to_the_same_utc_instant(ts):
    assert parse_line(line(ts=ts)).event_ts_us == TS_2024_01_02_030405_US


def test_fractional_seconds_keep_microseconds():
    assert parse_timestamp_us("2024-01-02T03:04:05.123456789Z") == TS_2024_01_02_030405_US + 123456
    assert parse_timestamp_us("2024-01-02T03:04:05.5+00:00") == TS_2024_01_02_030405_US + 500000


def test_rating_keeps_its_value():
    parsed = parse_line(line(event_type="rating", value=4.5))
    assert parsed.reason is None and parsed.value == 4.5
    assert parse_line(line(event_type="rating", value=5)).value == 5.0
    assert parse_line(line(event_type="rating", value=0.5)).value == 0.5


# (text line, reason, detail): each check of the validator, on text.
LINE_REJECTS = [
    ("{not json", MALFORMED_JSON, None),
    ('{"event_id": "e1"', MALFORMED_JSON, None),
    ("[1, 2, 3]", MALFORMED_JSON, "top-level JSON list, expected an object"),
    ('"just a string"', MALFORMED_JSON, "top-level JSON str, expected an object"),
    (line(event_id=_DROP), MISSING_FIELD, "event_id"),
    (line(event_id=""), MISSING_FIELD, "event_id"),
    (line(user_id=None), MISSING_FIELD, "user_id"),
    (line(item_id="  "), MISSING_FIELD, "item_id"),
    (line(event_type=_DROP), MISSING_FIELD, "event_type"),
    (line(ts=_DROP), MISSING_FIELD, "ts"),
    (line(event_type="rating"), MISSING_FIELD, "value"),
    (line(event_id=17), INVALID_TYPE, "event_id"),
    (line(user_id=1.5), INVALID_TYPE, "user_id"),
    (line(user_id=True), INVALID_TYPE, "user_id"),
    (line(item_id=["i1"]), INVALID_TYPE, "item_id"),
    (line(event_type=3), INVALID_TYPE, "event_type"),
    (line(ts=1.7e12), INVALID_TYPE, "ts"),
    (line(session_id=12), INVALID_TYPE, "session_id"),
    (line(value="4"), INVALID_TYPE, "value"),
    (line(value=False), INVALID_TYPE, "value"),
    (line(event_type="like"), UNKNOWN_EVENT_TYPE, "like"),
    (line(event_type="VIEW"), UNKNOWN_EVENT_TYPE, "VIEW"),
    (line(ts="2024-01-02T03:04:05"), INVALID_TIMESTAMP, "2024-01-02T03:04:05"),
    (line(ts="2024-02-30T03:04:05Z"), INVALID_TIMESTAMP, "2024-02-30T03:04:05Z"),
    (line(ts="yesterday"), INVALID_TIMESTAMP, "yesterday"),
    (line(ts="2024-01-02T03:04:05+25:00"), INVALID_TIMESTAMP, "2024-01-02T03:04:05+25:00"),
    (line(ts=-5), INVALID_TIMESTAMP, "-5"),
    (line(ts=10**15), INVALID_TIMESTAMP, str(10**15)),
    (line(event_type="rating", value=5.5), OUT_OF_RANGE_VALUE, "rating 5.5 outside [0.5, 5.0]"),
    (line(event_type="rating", value=0), OUT_OF_RANGE_VALUE, "rating 0.0 outside [0.5, 5.0]"),
    (line(event_type="purchase", value=-3), OUT_OF_RANGE_VALUE, "negative value -3.0"),
    (line(event_type="purchase", value=10**400), OUT_OF_RANGE_VALUE, "value too large"),
    (
        '{"event_id":"e","user_id":"u","item_id":"i","event_type":"view","ts":1,"value":NaN}',
        MALFORMED_JSON,
        None,
    ),
]


@pytest.mark.parametrize("raw,reason,detail", LINE_REJECTS)
def test_reject_reasons_of_text_lines(raw, reason, detail):
    parsed = parse_line(raw)
    assert parsed.reason == reason
    if detail is not None:
        assert parsed.detail == detail
    assert parsed.event_id is None


def test_first_failing_check_wins():
    # Both a missing field and an unknown type: missing_field is checked first.
    assert parse_line(line(user_id=_DROP, event_type="zap")).reason == MISSING_FIELD
    # Unknown type and bad timestamp: the type is checked first.
    assert parse_line(line(event_type="zap", ts="nope")).reason == UNKNOWN_EVENT_TYPE


@pytest.mark.parametrize(
    "raw,blank", [("", True), ("   ", True), ("\t\r", True), (None, True), ("{}", False)]
)
def test_blank_lines(raw, blank):
    assert is_blank(raw) is blank


_EVENT = b'{"event_id":"a","user_id":1,"item_id":2,"event_type":"view","ts":0}'


# (bytes, reason or None, detail): what a line is, and the checks made on its bytes.
RAW_LINES = [
    (_EVENT, None, None),
    (b"\xef\xbb\xbf" + _EVENT, None, None),  # a leading BOM is stripped
    (_EVENT + b"\r", None, None),  # CR before the line feed: JSON whitespace
    (b"\xe9" + _EVENT, "invalid_utf8", "byte 0xe9 at offset 0 is not UTF-8"),
    (b"[" * 33 + b"]" * 33, "malformed_json", "JSON nested deeper than 32 levels"),
    (b"[" * 32 + b"]" * 32, "malformed_json", "top-level JSON list, expected an object"),
    (b'{"n":' + b"9" * 1001 + b"}", "malformed_json", "integer of 1001 digits exceeds 1000"),
    (_EVENT[:-1] + b',"value":' + b"9" * 1000 + b"}", "out_of_range_value", "value too large"),
    (_EVENT[:-1] + b',"pad":"' + b"x" * (1 << 20) + b'"}', "line_too_long", None),
]


@pytest.mark.parametrize("data,reason,detail", RAW_LINES)
def test_raw_bytes_limits_and_what_a_line_is(data, reason, detail):
    from spark_jobs.common.events import parse_raw

    raw, raw_base64, parsed = parse_raw(data)
    assert parsed.reason == reason
    if detail is not None:
        assert parsed.detail == detail
    assert (raw_base64 is not None) == (reason == "invalid_utf8")
    if reason is None:
        assert parsed.event_id == "a" and raw == data.decode("utf-8")  # raw keeps the BOM and the CR


def test_every_reject_reason_has_a_case():
    """Between them, the text cases and the byte cases above give every reason the validator decides;
    the duplicate rule needs several lines and is parse_logs' (tests/unit/test_parse_logs.py)."""
    covered = {reason for _, reason, _ in LINE_REJECTS + RAW_LINES if reason is not None}
    assert covered == set(REJECT_REASONS) - {DUPLICATE_EVENT_ID}
