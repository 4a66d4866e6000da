"""parse_logs on tiny inputs in a real local Spark session: exact outputs, rejects, stats, failure mode."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
from pathlib import Path

import pytest

from spark_jobs import parse_logs
from spark_jobs.common.cli import JobError
from spark_jobs.common.events import MAX_LINE_BYTES, REJECT_REASONS

pytestmark = pytest.mark.spark

NOT_UTF8 = b"\xe9t\xe9"  # Latin-1 "été"


def event(event_id, ts="2024-01-02T03:04:05Z", **extra):
    record = {"event_id": event_id, "user_id": "u1", "item_id": "i1", "event_type": "view", "ts": ts}
    record.update(extra)
    return json.dumps(record)


def lines_df(spark, lines):
    return spark.createDataFrame([(line,) for line in lines], "value string")


def test_validate_lines_skips_blank_lines_and_keeps_raw(spark):
    rows = parse_logs.validate_lines(lines_df(spark, [event("a"), "", "  ", "oops"])).collect()
    assert [(r["raw"], r["reason"]) for r in rows] == [(event("a"), None), ("oops", "malformed_json")]


def test_duplicates_keep_the_earliest_copy(spark):
    first = event("dup", ts="2024-01-02T03:04:05Z", item_id="early")
    later = event("dup", ts="2024-01-02T09:00:00Z", item_id="late")
    repeat = event("dup", ts="2024-01-02T03:04:05Z", item_id="early")
    marked = parse_logs.mark_duplicates(
        parse_logs.validate_lines(lines_df(spark, [later, first, repeat, event("solo"), "bad"]))
    )
    accepted = parse_logs.accepted_events(marked).collect()
    assert sorted((r["event_id"], r["item_id"]) for r in accepted) == [("dup", "early"), ("solo", "i1")]
    rejects = sorted((r["raw"], r["reason"]) for r in parse_logs.rejected_lines(marked).collect())
    assert rejects == sorted(
        [(later, "duplicate_event_id"), (repeat, "duplicate_event_id"), ("bad", "malformed_json")]
    )


def test_accepted_events_schema_and_normalisation(spark):
    raw = [
        event("a", ts="2024-01-02T05:04:05+02:00", user_id=7, item_id=99, session_id="s"),
        event("b", ts=1704164645000, event_type="rating", value=3.5),
    ]
    marked = parse_logs.mark_duplicates(parse_logs.validate_lines(lines_df(spark, raw)))
    out = parse_logs.accepted_events(marked)
    assert out.columns == list(parse_logs.EVENT_COLUMNS)
    rows = {r["event_id"]: r for r in out.collect()}
    assert rows["a"]["user_id"] == "7" and rows["a"]["item_id"] == "99" and rows["a"]["session_id"] == "s"
    assert rows["a"]["event_ts"] == dt.datetime(2024, 1, 2, 3, 4, 5)  # UTC (session time zone)
    assert rows["a"]["value"] is None
    assert rows["b"]["event_ts"] == dt.datetime(2024, 1, 2, 3, 4, 5)
    assert rows["b"]["value"] == 3.5


def _one_line_per_reason():
    bad = {
        "malformed_json": "{nope",
        "missing_field": event("m1", user_id=None),
        "invalid_type": event("t1", user_id=1.5),
        "unknown_event_type": event("k1", event_type="zap"),
        "invalid_timestamp": event("x1", ts="2024-01-02"),
        "out_of_range_value": event("r1", event_type="rating", value=9),
        "duplicate_event_id": event("g1"),
        "line_too_long": event("l1", session_id="s" * MAX_LINE_BYTES),
    }
    good = [event("g1"), event("g2"), event("g3")]
    return good, bad


def test_run_writes_outputs_rejects_and_reconciled_stats(spark, tmp_path):
    good, bad = _one_line_per_reason()
    day = tmp_path / "raw" / "dt=2024-01-02"
    day.mkdir(parents=True)
    (day / "part-0.jsonl").write_text("\n".join([*good[:2], "", *bad.values()]) + "\n\n")
    with gzip.open(day / "part-1.jsonl.gz", "wb") as handle:  # .gz input is read transparently
        handle.write(good[2].encode() + b"\n" + NOT_UTF8 + b"\n")
    bad["invalid_utf8"] = "\\xe9t\\xe9"  # the readable form; the exact bytes are in raw_base64
    out, rej = tmp_path / "parsed", tmp_path / "rejects"

    stats = parse_logs.run(spark, str(day), str(out), str(rej))

    assert stats["lines"] == 12 and stats["accepted"] == 3 and stats["rejected"] == 9
    assert stats["rejected_by_reason"] == {reason: 1 for reason in REJECT_REASONS}
    pointer = json.loads((out / "_PUBLISHED.json").read_text())
    assert pointer["stats"] == stats and pointer["events"] == stats["output"]
    attempt = Path(pointer["events"])
    assert attempt == out / "_attempts" / stats["attempt"]
    assert (
        json.loads((attempt / "_stats.json").read_text())["rejected_by_reason"] == stats["rejected_by_reason"]
    )
    assert sorted(r["event_id"] for r in spark.read.parquet(str(attempt)).collect()) == ["g1", "g2", "g3"]
    reject_files = list(Path(pointer["rejects"]).glob("part-*.json"))
    assert len(reject_files) == 1  # one readable file
    written = [json.loads(row) for row in reject_files[0].read_text().splitlines()]
    assert sorted((r["reason"], r["raw"]) for r in written) == sorted((k, v) for k, v in bad.items())
    assert [base64.b64decode(r["raw_base64"]) for r in written if "raw_base64" in r] == [NOT_UTF8]


def published(out: Path) -> dict:
    return json.loads((out / "_PUBLISHED.json").read_text())


def test_a_rerun_publishes_a_new_attempt_and_keeps_only_the_previous_one(spark, tmp_path):
    day = tmp_path / "raw"
    day.mkdir()
    (day / "a.jsonl").write_text(event("a") + "\n" + event("b") + "\n")
    out, rej = tmp_path / "parsed", tmp_path / "rejects"
    attempts = []
    for _ in range(3):
        attempts.append(parse_logs.run(spark, str(day), str(out), str(rej))["attempt"])
        assert published(out)["attempt"] == attempts[-1]
    assert len(set(attempts)) == 3
    assert sorted(p.name for p in (out / "_attempts").iterdir()) == sorted(attempts[1:])
    assert sorted(p.name for p in (rej / "_attempts").iterdir()) == sorted(attempts[1:])
    assert spark.read.parquet(published(out)["events"]).count() == 2
    # The attempts are hidden from a reader of the day folder: it sees no data, not a mix of attempts.
    with pytest.raises(Exception, match=r"UNABLE_TO_INFER_SCHEMA|Unable to infer schema"):
        spark.read.parquet(str(out)).count()


def test_a_day_over_the_reject_ratio_is_not_published_and_the_published_one_stays(spark, tmp_path):
    day = tmp_path / "raw"
    day.mkdir()
    (day / "a.jsonl").write_text("\n".join([event("a"), event("b")]) + "\n")
    out, rej = tmp_path / "parsed", tmp_path / "rejects"
    good = parse_logs.run(spark, str(day), str(out), str(rej), max_reject_ratio=0.25)

    (day / "a.jsonl").write_text("\n".join([event("a"), "bad", "worse", event("c")]) + "\n")
    with pytest.raises(
        JobError,
        match=r"ratio 0\.5000 \(2/4 lines\) exceeds --max-reject-ratio 0\.25: attempt \S+ not published",
    ):
        parse_logs.run(spark, str(day), str(out), str(rej), max_reject_ratio=0.25)
    assert published(out)["attempt"] == good["attempt"]
    assert sorted(r["event_id"] for r in spark.read.parquet(published(out)["events"]).collect()) == ["a", "b"]
    (failed,) = [p for p in (out / "_attempts").iterdir() if p.name != good["attempt"]]
    assert json.loads((failed / "_stats.json").read_text())["rejected"] == 2  # kept for a person to read
    assert spark.read.parquet(str(failed)).count() == 2
    assert spark.read.json(str(rej / "_attempts" / failed.name)).count() == 2


@pytest.mark.unit
def test_attempt_ids_sort_by_time_and_name_the_application():
    import datetime as dt

    from spark_jobs.common.published import new_attempt_id

    first = new_attempt_id(
        "application_1706659200000_0001",
        dt.datetime(2024, 1, 31, 2, 3, 4, tzinfo=dt.timezone.utc),
        "ab12cd34",
    )
    assert first == "20240131T020304Z-application_1706659200000_0001-ab12cd34"
    later = new_attempt_id("local-17/x", dt.datetime(2024, 1, 31, 2, 3, 5, tzinfo=dt.timezone.utc))
    assert later > first and "/" not in later


def test_ratio_at_the_limit_passes(spark, tmp_path):
    day = tmp_path / "raw"
    day.mkdir()
    (day / "a.jsonl").write_text("\n".join([event("a"), "bad"]) + "\n")
    stats = parse_logs.run(spark, str(day), str(tmp_path / "o"), str(tmp_path / "r"), max_reject_ratio=0.5)
    assert stats["reject_ratio"] == 0.5


def test_empty_input_is_an_error(spark, tmp_path):
    day = tmp_path / "raw"
    day.mkdir()
    (day / "a.jsonl").write_text("\n  \n")
    with pytest.raises(JobError, match="no input lines"):
        parse_logs.run(spark, str(day), str(tmp_path / "o"), str(tmp_path / "r"))


def test_build_stats_refuses_a_broken_reconciliation():
    with pytest.raises(JobError, match="reconciliation failed"):
        parse_logs.build_stats(10, {"malformed_json": 2}, 7)


def test_cli_arguments():
    args = parse_logs.parse_args(
        ["--input", "s3://b/raw", "--output", "o", "--rejects", "r", "--max-reject-ratio", "0.1"]
    )
    assert (args.input, args.output, args.rejects, args.max_reject_ratio) == ("s3://b/raw", "o", "r", 0.1)
    with pytest.raises(SystemExit):
        parse_logs.parse_args(["--input", "i", "--output", "o", "--rejects", "r", "--max-reject-ratio", "2"])


def test_duplicate_check_partitions_follow_the_input_bytes_not_the_file_count(spark, tmp_path, monkeypatch):
    # Many small files (one split's worth of open cost each) stay at the session's partitions; the
    # count grows by one per PARTITION_INPUT_BYTES of input.
    line = b'{"event_id": "e", "user_id": "u", "item_id": "i", "event_type": "view", "ts": 0}\n'
    for n in range(40):
        (tmp_path / f"part-{n:03d}.jsonl").write_bytes(line * 10)
    lines = parse_logs.read_lines(spark, str(tmp_path))
    total = 40 * 10 * len(line)
    assert parse_logs.input_bytes(lines) == total
    configured = int(spark.conf.get("spark.sql.shuffle.partitions"))
    assert parse_logs.duplicate_check_partitions(spark, lines) == configured
    per_partition = total // (configured + 3)
    monkeypatch.setattr(parse_logs, "PARTITION_INPUT_BYTES", per_partition)
    expected = -(-total // per_partition)  # ceil
    assert expected > configured
    assert parse_logs.duplicate_check_partitions(spark, lines) == expected
