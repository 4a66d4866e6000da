"""Any byte sequence is input: properties of the validator, and the Spark job checked against it.

``events.parse_raw`` is the specification. Hypothesis generates lines (valid events, near-valid events,
arbitrary bytes); the validator must give every line one verdict without raising, and parse_logs, run in
a real Spark session, must give each line the verdict the validator gives it (plus the duplicate rule).
Seeds are fixed (``derandomize``) so ``make test`` is deterministic; the ``@example`` cases are inputs
that once crashed the job or that the contract names (invalid UTF-8, NUL, BOM, CR, deep nesting, huge
numbers, an over-long line).
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from spark_jobs import parse_logs
from spark_jobs.common import events
from spark_jobs.common.events import EVENT_TYPES, REJECT_REASONS, is_blank_bytes, parse_raw

GOOD = b'{"event_id":"e0","user_id":1,"item_id":2,"event_type":"view","ts":0}'
NAMED_CASES = [
    b"\xff\xfe not utf-8",
    b"\x00",
    b"\xef\xbb\xbf" + GOOD.replace(b"e0", b"bom"),
    GOOD.replace(b"e0", b"cr") + b"\r",
    b"\r",
    b"[" * 10_000,
    b'{"event_id":"n","user_id":' + b"9" * 5_000 + b',"item_id":2,"event_type":"view","ts":0}',
    b'{"event_id":"big","user_id":1,"item_id":2,"event_type":"rating","ts":0,"value":1e999}',
    b'{"event_id":"ts","user_id":1,"item_id":2,"event_type":"view","ts":253402300800000}',
    b'{"event_id":"x"' + b" " * (events.MAX_LINE_BYTES) + b"}",
    b"\xed\xa0\x80",  # an encoded surrogate: not UTF-8
]

ids = st.one_of(st.text(max_size=8), st.integers(-(10**45), 10**45), st.none(), st.booleans())
timestamps = st.one_of(
    st.integers(-1, 253402300800000),
    st.sampled_from(["2024-01-02T03:04:05Z", "2024-01-02T03:04:05+02:00", "2024-13-02T00:00:00Z", "x"]),
    st.floats(allow_nan=True),
)
records = st.fixed_dictionaries(
    {"event_id": st.text(min_size=1, max_size=6), "user_id": ids, "item_id": ids, "ts": timestamps},
    optional={
        "event_type": st.sampled_from([*EVENT_TYPES, "zap", ""]),
        "value": st.one_of(
            st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.text(max_size=3)
        ),
        "session_id": st.one_of(st.text(max_size=4), st.integers()),
    },
)


@st.composite
def raw_lines(draw) -> bytes:
    """A line without its ``\\n``: a JSON record, a record cut or corrupted, or arbitrary bytes."""
    kind = draw(st.sampled_from(["record", "near", "bytes"]))
    if kind == "bytes":
        data = draw(st.binary(max_size=64))
    else:
        data = json.dumps(draw(records), ensure_ascii=draw(st.booleans())).encode("utf-8")
        if kind == "near":
            cut = draw(st.integers(0, len(data)))
            data = data[:cut] + draw(st.binary(max_size=3)) + data[cut + draw(st.integers(0, 2)) :]
    return data.replace(b"\n", b"")


@settings(max_examples=400, derandomize=True, deadline=None)
@given(raw_lines())
@pytest.mark.unit
def test_every_line_gets_exactly_one_readable_lossless_verdict(data):
    for line in [data, *NAMED_CASES]:
        if is_blank_bytes(line):
            continue
        raw, raw_base64, parsed = parse_raw(line)
        assert parsed.reason is None or parsed.reason in REJECT_REASONS
        assert (parsed.reason is None) == (parsed.event_id is not None)
        raw.encode("utf-8")  # always text a person (and a JSON writer) can handle
        if raw_base64 is None:
            assert raw.encode("utf-8") == line  # lossless as it is
        else:
            assert parsed.reason == "invalid_utf8" and base64.b64decode(raw_base64) == line


def expected_outcome(lines):
    """What parse_logs must produce for ``lines``, from the validator and the duplicate rule alone."""
    verdicts = [parse_raw(line) for line in lines if not is_blank_bytes(line)]
    accepted = [v for v in verdicts if v.parsed.reason is None]
    survivors = {}
    for v in accepted:  # the earliest (event time, raw text) copy of an event_id survives
        key = (v.parsed.event_ts_us, v.raw.encode("utf-8"))
        best = survivors.get(v.parsed.event_id)
        if best is None or key < (best.parsed.event_ts_us, best.raw.encode("utf-8")):
            survivors[v.parsed.event_id] = v
    kept = Counter(
        (p.event_id, p.user_id, p.item_id, p.event_type, p.event_ts_us, p.session_id, p.value)
        for p in (v.parsed for v in survivors.values())
    )
    rejects = Counter((v.raw, v.raw_base64, v.parsed.reason) for v in verdicts if v.parsed.reason)
    duplicates = Counter(
        (v.raw, None, "duplicate_event_id") for v in accepted if survivors[v.parsed.event_id] is not v
    )
    # Exact repeats: which copy survives is immaterial, but each repeat is one duplicate reject.
    return kept, rejects + duplicates, len(verdicts)


def job_outcome(spark, root):
    stats = parse_logs.run(spark, str(root / "in"), str(root / "out"), str(root / "rej"))
    rows = spark.read.parquet(stats["output"]).collect()  # the attempt's events (published: no ratio set)
    kept = Counter(
        (
            r["event_id"],
            r["user_id"],
            r["item_id"],
            r["event_type"],
            None if r["event_ts"] is None else _micros(r["event_ts"]),
            r["session_id"],
            r["value"],
        )
        for r in rows
    )
    rejects = Counter()
    for path in sorted(Path(stats["rejects"]).glob("*.json")):
        for text in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(text)
            rejects[(record["raw"], record.get("raw_base64"), record["reason"])] += 1
    return kept, rejects, stats


def _micros(ts) -> int:
    import datetime as dt

    delta = ts - dt.datetime(1970, 1, 1)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


@pytest.mark.spark
@settings(
    max_examples=8,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(raw_lines(), min_size=1, max_size=30))
@example([*NAMED_CASES, GOOD, GOOD, GOOD.replace(b'"ts":0', b'"ts":5')])
def test_the_spark_job_gives_each_line_the_validators_verdict(spark, tmp_path_factory, lines):
    root = tmp_path_factory.mktemp("prop")
    (root / "in").mkdir()
    (root / "in" / "part.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    want_kept, want_rejects, non_blank = expected_outcome(lines)
    if non_blank == 0:
        return  # an empty day is refused by design (tested in test_parse_logs)
    kept, rejects, stats = job_outcome(spark, root)
    assert stats["lines"] == non_blank == stats["accepted"] + stats["rejected"]
    assert kept == want_kept
    assert rejects == want_rejects
