"""benchmarks.native_parse: the same verdicts and fields as parse_logs' Python validator, line by line, on a
generated clickstream (every kind of bad line) and on hand-written edge cases of each rule."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from pyspark.sql import functions as F

from benchmarks.native_parse import REQUIRED_CONF, validate_lines_native
from spark_jobs.common.events import MAX_LINE_BYTES, MAX_NESTING
from spark_jobs.parse_logs import read_lines, validate_lines
from tools.datagen.clickstream import generate

pytestmark = pytest.mark.spark

# As the benchmark compares them: raw_base64 stands in for raw on lines that are not UTF-8 (shown apart).
COMPARED = ("reason", "event_id", "user_id", "item_id", "event_type", "event_ts_us", "session_id")
GOOD = {"event_id": "e1", "user_id": 7, "item_id": "i9", "event_type": "view", "ts": 1706695200000}


def line(**fields):
    return json.dumps({**GOOD, **fields})


EDGE_CASES = [
    line(),
    line(ts="2024-01-31T10:00:00Z", session_id="s1"),
    line(ts="2024-01-31T10:00:00.123456+05:30"),
    line(ts=" 2024-01-31T10:00:00Z "),  # stripped, as Python does
    line(ts="2024-02-30T10:00:00Z"),  # no such day
    line(ts="2024-01-31T24:00:00Z"),
    line(ts=-1),
    line(ts=True),
    line(event_type="rating", value=4.5),
    line(event_type="rating", value=7),
    line(event_type="rating"),
    line(event_type="purchase", value=-3),
    line(value="12"),
    line(event_type="teleport"),
    line(event_type=["view"]),
    line(event_id=12),
    line(user_id=1.5),
    line(user_id="  "),
    line(item_id=None),
    line(session_id=5),
    '{"event_id": "e1"',
    line() + " " + line(),
    line() + "]",
    "[" * (MAX_NESTING + 2) + "]" * (MAX_NESTING + 2),
    line(extra=[[[[1]]]]),
    line(extra=json.loads("[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1))),
    line(event_id="x" * (MAX_LINE_BYTES + 1)),
    '{"event_id": "a\\u00"}',
    "\ufeff" + line(),
    "   ",
    "",
    "not json",
    "[1, 2]",
    line(value=float("inf")).replace("Infinity", "1e400"),
]


@pytest.fixture
def native_conf(spark):
    conf = {**REQUIRED_CONF, "spark.sql.chunkBase64String.enabled": "false"}
    before = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)
    yield spark
    for key, value in before.items():
        spark.conf.unset(key) if value is None else spark.conf.set(key, value)


def rows(frame):
    columns = [F.coalesce("raw_base64", "raw"), *COMPARED, F.col("value").cast("double")]
    return Counter(tuple(row) for row in frame.select(*columns).collect())


def test_the_native_expressions_give_python_s_verdicts(native_conf, tmp_path):
    spark = native_conf
    generate(tmp_path / "raw", events=3000, days=1, malformed_ratio=0.1, seed=7, quiet=True)
    edge = tmp_path / "edge" / "part.jsonl"
    edge.parent.mkdir()
    edge.write_bytes("\n".join(EDGE_CASES).encode() + b"\n" + b'{"event_id": "\xff\xfe"}\n')
    for folder in (tmp_path / "raw", edge.parent):
        lines = read_lines(spark, str(folder))
        python, native = rows(validate_lines(lines)), rows(validate_lines_native(lines))
        assert python - native == native - python == Counter()
    assert {r[1] for r in rows(validate_lines(read_lines(spark, str(edge.parent))))} >= {
        None, "malformed_json", "missing_field", "invalid_type", "invalid_timestamp", "unknown_event_type",
        "out_of_range_value", "line_too_long", "invalid_utf8",
    }  # fmt: skip


def test_a_session_without_the_required_settings_is_refused(spark):
    with pytest.raises(ValueError, match="needs"):
        validate_lines_native(spark.createDataFrame([("{}",)], "value string"))
