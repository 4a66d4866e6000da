"""build_features transforms on tiny DataFrames: weights, decay, support, indices, split, and run()."""

from __future__ import annotations

import argparse
import datetime as dt
import json

import pytest

from spark_jobs import build_features as bf
from spark_jobs.common import published
from spark_jobs.common.cli import JobError
from spark_jobs.common.published import attempt_uri
from spark_jobs.common.schemas import PARSED_EVENTS

pytestmark = pytest.mark.spark

REF = dt.datetime(2024, 1, 11, tzinfo=dt.timezone.utc)  # end of run date 2024-01-10


def events_df(spark, rows):
    """rows: (event_id, user, item, type, 'YYYY-MM-DD HH:MM', value)."""
    data = [(e, u, i, t, dt.datetime.strptime(ts, "%Y-%m-%d %H:%M"), None, v) for e, u, i, t, ts, v in rows]
    return spark.createDataFrame(data, PARSED_EVENTS)


def test_parse_weights_overrides_defaults_and_validates():
    assert bf.parse_weights("view=0.5, purchase=10") == {
        "view": 0.5,
        "click": 2.0,
        "add_to_cart": 4.0,
        "purchase": 10.0,
    }
    for bad in ("like=1", "view", "view=x", "view=0", "view=-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            bf.parse_weights(bad)


def test_weights_and_half_life_decay(spark):
    events = events_df(
        spark,
        [
            ("a", "u", "i", "view", "2024-01-11 00:00", None),  # age 0 d
            ("b", "u", "i", "purchase", "2024-01-04 00:00", None),  # age 7 d
            ("c", "u", "i", "rating", "2023-12-28 00:00", 4.0),  # age 14 d
            ("d", "u", "i", "click", "2024-01-12 00:00", None),  # after the reference: not boosted
        ],
    )
    out = bf.weight_events(events, bf.DEFAULT_WEIGHTS, 0.5, 7.0, REF)
    weights = {r["event_id"]: r["weight"] for r in out.collect()}
    assert weights == pytest.approx({"a": 1.0, "b": 8.0 * 0.5, "c": 4.0 * 0.5 * 0.25, "d": 2.0})


def test_no_decay_when_half_life_is_zero(spark):
    events = events_df(spark, [("a", "u", "i", "add_to_cart", "2020-01-01 00:00", None)])
    assert bf.weight_events(events, bf.DEFAULT_WEIGHTS, 1.0, 0.0, REF).first()["weight"] == 4.0


def test_aggregate_pairs_sums_confidence_and_keeps_last_ts(spark):
    events = events_df(
        spark,
        [
            ("a", "u1", "i1", "view", "2024-01-10 01:00", None),
            ("b", "u1", "i1", "click", "2024-01-10 05:00", None),
            ("c", "u2", "i1", "view", "2024-01-09 01:00", None),
        ],
    )
    pairs = bf.aggregate_pairs(bf.weight_events(events, bf.DEFAULT_WEIGHTS, 1.0, 0.0, REF))
    got = {
        (r["user_id"], r["item_id"]): (r["confidence"], r["last_ts"], r["n_events"]) for r in pairs.collect()
    }
    assert got == {
        ("u1", "i1"): (3.0, dt.datetime(2024, 1, 10, 5, 0), 2),
        ("u2", "i1"): (1.0, dt.datetime(2024, 1, 9, 1, 0), 1),
    }


def test_rank_copies_marks_the_earliest_copy_of_each_event_id(spark):
    events = events_df(
        spark,
        [
            ("a", "u1", "i1", "view", "2024-01-10 01:00", None),
            ("a", "u1", "i1", "view", "2024-01-09 01:00", None),
            ("b", "u1", "i2", "view", "2024-01-10 01:00", None),
        ],
    )
    kept = bf.rank_copies(events).where("_copy = 1")
    rows = sorted((r["event_id"], r["event_ts"]) for r in kept.collect())
    assert rows == [("a", dt.datetime(2024, 1, 9, 1, 0)), ("b", dt.datetime(2024, 1, 10, 1, 0))]


def test_min_support_iterates_to_a_core(spark):
    # u3 has one item; dropping u3 leaves i3 with one user; dropping i3 leaves u2 with one item.
    pairs = spark.createDataFrame(
        [("u1", "i1"), ("u1", "i2"), ("u4", "i1"), ("u4", "i2"), ("u2", "i2"), ("u2", "i3"), ("u3", "i3")],
        "user_id string, item_id string",
    )
    core, rounds, size = bf.apply_min_support(pairs, min_user_items=2, min_item_users=2)
    assert size == 4
    assert sorted((r["user_id"], r["item_id"]) for r in core.collect()) == [
        ("u1", "i1"),
        ("u1", "i2"),
        ("u4", "i1"),
        ("u4", "i2"),
    ]
    assert rounds >= 2


def test_index_ids_are_contiguous_and_ordered_by_id(spark):
    pairs = spark.createDataFrame([("b",), ("a",), ("c",), ("a",)], "user_id string")
    ids, n = bf.index_ids(pairs, "user_id", "user_idx")
    rows = ids.orderBy("user_idx").collect()
    assert n == 3
    assert [(r["user_idx"], r["user_id"]) for r in rows] == [(0, "a"), (1, "b"), (2, "c")]


def test_index_ids_are_contiguous_across_many_partitions(spark):
    # Ids spread over several range partitions: each partition's offset is the size of those before it.
    ids = [f"u{n:05d}" for n in range(0, 3000, 3)]
    values = spark.createDataFrame([(i,) for i in reversed(ids)] * 2, "user_id string").repartition(7)
    settings = {"spark.sql.shuffle.partitions": "5", "spark.sql.adaptive.coalescePartitions.enabled": "false"}
    saved = {key: spark.conf.get(key) for key in settings}
    try:
        for key, value in settings.items():
            spark.conf.set(key, value)
        frame, n = bf.index_ids(values, "user_id", "user_idx")
        rows = frame.orderBy("user_idx").collect()
    finally:
        for key, value in saved.items():
            spark.conf.set(key, value)
    assert n == len(ids)
    assert [(r["user_idx"], r["user_id"]) for r in rows] == list(enumerate(ids))


def test_split_holds_out_each_users_latest_items(spark):
    day = dt.datetime(2024, 1, 1)
    rows = [(0, item, 1.0, day + dt.timedelta(hours=item)) for item in range(10)]  # u0: 10 items
    rows += [(1, 0, 1.0, day), (1, 1, 1.0, day), (1, 2, 1.0, day)]  # u1: 3 items, all tied
    rows += [(2, 0, 1.0, day), (2, 1, 1.0, day)]  # u2: too few for a holdout
    indexed = spark.createDataFrame(rows, "user_idx int, item_idx int, confidence double, last_ts timestamp")
    split = bf.split_holdout(indexed, 0.25, 3)
    held = sorted((r["user_idx"], r["item_idx"]) for r in split.where("is_holdout").collect())
    # u0: floor(10 * 0.25) = 2 latest (items 9, 8); u1: max(1, floor(0.75)) = 1, tie -> lowest index.
    assert held == [(0, 8), (0, 9), (1, 0)]


def _write_day(spark, root, day, rows, publish=True):
    """One day as parse_logs leaves it: an attempt, published unless ``publish`` is False."""
    day_uri = str(root / f"dt={day}")
    attempt = attempt_uri(day_uri, f"test-{day}")
    events_df(spark, rows).write.mode("overwrite").parquet(attempt)
    if publish:
        published.publish(spark, day_uri, {"attempt": f"test-{day}", "events": attempt})


def test_run_writes_features_and_manifest(spark, tmp_path):
    events = tmp_path / "parsed"
    users_items = [("u1", ["i1", "i2", "i3"]), ("u2", ["i1", "i2", "i3"]), ("u3", ["i1", "i2"])]
    rows, n = [], 0
    for user, items in users_items:
        for hour, item in enumerate(items):
            n += 1
            rows.append((f"e{n}", user, item, "view", f"2024-01-10 {hour:02d}:00", None))
    _write_day(spark, events, "2024-01-10", rows)
    _write_day(spark, events, "2024-01-09", [rows[0]])  # a replayed event: deduplicated
    out = tmp_path / "features"

    manifest = bf.run(
        spark, str(events), dt.date(2024, 1, 10), str(out), lookback=3, half_life_days=0, min_window_share=0.5
    )

    assert manifest["events_read"] == 9 and manifest["duplicate_events_dropped"] == 1
    assert len(manifest["partitions_read"]) == 2 and len(manifest["partitions_missing"]) == 1
    assert (manifest["users"], manifest["items"], manifest["pairs"]) == (3, 3, 8)
    # u1 and u2 (3 items each) hold out their latest item (i3); u3 (2 items) keeps both.
    assert (manifest["train_nnz"], manifest["holdout_nnz"], manifest["holdout_users"]) == (6, 2, 2)
    assert json.loads((out / "manifest.json").read_text())["pairs"] == 8
    holdout = spark.read.parquet(str(out / "holdout")).collect()
    items = {r["item_idx"]: r["item_id"] for r in spark.read.parquet(str(out / "items")).collect()}
    assert sorted((r["user_idx"], items[r["item_idx"]]) for r in holdout) == [(0, "i3"), (1, "i3")]
    assert spark.read.parquet(str(out / "train")).schema.names == [
        "user_idx",
        "item_idx",
        "confidence",
        "last_ts",
    ]


def test_only_published_days_are_read_and_too_few_fail_naming_them(spark, tmp_path):
    events = tmp_path / "parsed"
    rows = [(f"e{n}", f"u{n % 3}", f"i{n % 4}", "view", "2024-01-10 00:00", None) for n in range(24)]
    _write_day(spark, events, "2024-01-10", rows)
    _write_day(spark, events, "2024-01-09", rows[:6], publish=False)  # rejected by parse_logs
    out = tmp_path / "features"
    # 1 of 3 days published (2024-01-08 is missing): 33% >= 0.3 is enough; the rejected day is not read.
    manifest = bf.run(spark, str(events), dt.date(2024, 1, 10), str(out), lookback=3, min_window_share=0.3)
    assert manifest["events_read"] == 24
    assert [uri.rsplit("/", 1)[-1] for uri in manifest["partitions_unpublished"]] == ["dt=2024-01-09"]
    assert [uri.rsplit("/", 1)[-1] for uri in manifest["partitions_missing"]] == ["dt=2024-01-08"]
    with pytest.raises(
        JobError,
        match=r"only 1 of 3 days \(33%\) of 2024-01-08\.\.2024-01-10 are published .* below "
        r"--min-window-share 0\.5: not published \(rejected or incomplete\): dt=2024-01-09; "
        r"missing: dt=2024-01-08",
    ):
        bf.run(spark, str(events), dt.date(2024, 1, 10), str(out), lookback=3, min_window_share=0.5)


@pytest.mark.unit
def test_absent_days_are_named_as_ranges():
    uris = [f"s3://b/parsed/dt=2024-01-{day:02d}" for day in (1, 2, 3, 5, 7, 8)]
    assert bf._day_names(uris) == (
        "dt=2024-01-01..dt=2024-01-03 (3 days), dt=2024-01-05, dt=2024-01-07..dt=2024-01-08 (2 days)"
    )
    assert bf._day_names([]) == "none"


def test_run_without_any_partition_is_a_clear_error(spark, tmp_path):
    with pytest.raises(JobError, match="no parsed events under"):
        bf.run(spark, str(tmp_path / "nothing"), dt.date(2024, 1, 10), str(tmp_path / "out"))


def test_run_with_nothing_left_after_support_is_a_clear_error(spark, tmp_path):
    _write_day(
        spark, tmp_path / "parsed", "2024-01-10", [("e1", "u1", "i1", "view", "2024-01-10 00:00", None)]
    )
    with pytest.raises(JobError, match="no \\(user, item\\) pairs left after minimum support"):
        bf.run(spark, str(tmp_path / "parsed"), dt.date(2024, 1, 10), str(tmp_path / "out"), lookback=1)


def _validation_events():
    """One day of views (hour = recency) over items i1..i6, every item with >= 2 users."""
    per_user = {
        "u1": [("i1", 1), ("i2", 2), ("i3", 3), ("i4", 4), ("i5", 5), ("i6", 6)],
        "u2": [("i1", 5), ("i2", 4), ("i3", 3), ("i4", 2), ("i5", 1)],
        "u3": [("i2", 7), ("i4", 7), ("i6", 7)],  # all tied: by item index
        "u4": [("i1", 8), ("i3", 9)],  # too few items for either holdout
        "u5": [("i5", 3), ("i6", 3), ("i1", 2), ("i2", 3), ("i3", 1), ("i4", 0)],  # ties at hour 3
    }
    rows = []
    for user, items in per_user.items():
        for item, hour in items:
            rows.append((f"e{len(rows)}", user, item, "view", f"2024-01-10 {hour:02d}:00", None))
    return rows


def _pairs(spark, uri):
    return {(r["user_idx"], r["item_idx"]): r["last_ts"] for r in spark.read.parquet(str(uri)).collect()}


def test_validation_split_is_cut_from_train_by_time_and_leaves_the_nightly_alone(spark, tmp_path):
    events = tmp_path / "parsed"
    _write_day(spark, events, "2024-01-10", _validation_events())
    out = tmp_path / "features"
    common = dict(lookback=1, half_life_days=0, holdout_fraction=0.2, min_items_for_holdout=3)

    manifest = bf.run(spark, str(events), dt.date(2024, 1, 10), str(out), validation_fraction=0.4, **common)
    train, holdout = _pairs(spark, out / "train"), _pairs(spark, out / "holdout")
    fit, held = _pairs(spark, out / "validation" / "fit"), _pairs(spark, out / "validation" / "holdout")
    assert (
        spark.read.parquet(str(out / "validation" / "fit")).schema
        == spark.read.parquet(str(out / "train")).schema
    )
    assert spark.read.parquet(str(out / "validation" / "holdout")).columns == [
        "user_idx",
        "item_idx",
        "confidence",
        "last_ts",
    ]
    # A partition of train/ (same rows), and nothing of the nightly holdout.
    assert set(fit) | set(held) == set(train) and not set(fit) & set(held)
    assert {**fit, **held} == train
    assert not (set(fit) | set(held)) & set(holdout)
    for user in {u for u, _ in held}:
        validation_ts = [ts for (u, _), ts in held.items() if u == user]
        fit_ts = [ts for (u, _), ts in fit.items() if u == user]
        holdout_ts = [ts for (u, _), ts in holdout.items() if u == user]
        assert fit_ts, f"user {user} kept nothing to fit on"
        assert min(validation_ts) >= max(fit_ts)
        assert not holdout_ts or max(validation_ts) <= min(holdout_ts)
    # Per user (train items n -> max(1, floor(0.4 n)) if n >= 3): u1 5 -> 2, u2 4 -> 1, u3 2 -> 0,
    # u4 2 -> 0, u5 5 -> 2.
    users = {r["user_id"]: r["user_idx"] for r in spark.read.parquet(str(out / "users")).collect()}
    held_per_user = {user: sum(1 for u, _ in held if u == idx) for user, idx in users.items()}
    assert held_per_user == {"u1": 2, "u2": 1, "u3": 0, "u4": 0, "u5": 2}
    assert manifest["validation"] == {
        "fraction": 0.4,
        "fit_nnz": len(fit),
        "holdout_nnz": len(held),
        "holdout_users": 3,
    }
    assert manifest["validation"]["fit_nnz"] + manifest["validation"]["holdout_nnz"] == manifest["train_nnz"]
    assert manifest["params"]["validation_fraction"] == 0.4
    assert json.loads((out / "manifest.json").read_text())["validation"] == manifest["validation"]

    # Fraction 0 (the nightly) into the same folder: the same outputs, no validation/ (the stale one
    # removed), and a manifest that differs only by the null block and the recorded parameter.
    before = {
        name: sorted(tuple(r) for r in spark.read.parquet(str(out / name)).collect())
        for name in ("train", "holdout", "users", "items", "window")
    }
    nightly = bf.run(spark, str(events), dt.date(2024, 1, 10), str(out), **common)
    after = {name: sorted(tuple(r) for r in spark.read.parquet(str(out / name)).collect()) for name in before}
    assert after == before
    assert not (out / "validation").exists()
    assert nightly["validation"] is None and nightly["params"]["validation_fraction"] == 0.0
    assert set(nightly) == set(manifest)

    def strip(m):
        params = {key: value for key, value in m["params"].items() if key != "validation_fraction"}
        return {**{key: value for key, value in m.items() if key != "validation"}, "params": params}

    assert strip(nightly) == strip(manifest)


def test_split_validation_applies_the_holdout_rule_to_training_rows(spark):
    day = dt.datetime(2024, 1, 1)
    rows = [(0, item, 1.0, day + dt.timedelta(hours=item)) for item in range(5)]
    rows += [(1, 0, 1.0, day), (1, 1, 1.0, day)]  # two training items: no validation
    train = spark.createDataFrame(rows, "user_idx int, item_idx int, confidence double, last_ts timestamp")
    split = bf.split_validation(train, 0.5, 3)
    assert split.columns == ["user_idx", "item_idx", "confidence", "last_ts", "is_validation"]
    marked = sorted((r["user_idx"], r["item_idx"]) for r in split.where("is_validation").collect())
    assert marked == [(0, 3), (0, 4)]  # floor(5 * 0.5) = 2 latest


@pytest.mark.unit
def test_validation_fraction_option():
    required = ["--events", "e", "--run-date", "2024-01-10", "--output", "o"]
    assert bf.parse_args(required).validation_fraction == 0.0
    assert bf.parse_args([*required, "--validation-fraction", "0.2"]).validation_fraction == 0.2
    with pytest.raises(SystemExit):
        bf.parse_args([*required, "--validation-fraction", "1.5"])
