"""spark_jobs/load_serving.py: a local Spark session writing into moto's DynamoDB server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serving.client import Recommender
from serving.pointer import read_loaded, switch
from serving.table import user_key
from spark_jobs.common.cli import JobError
from spark_jobs.load_serving import run, task_failure
from tests.serving.conftest import CREDENTIALS, EXPIRES_AT, NOW, REGION

pytestmark = pytest.mark.spark

VERSION = "2024-01-31_j-2AB3XYZ"


def served_lists(spark, path, rows):
    frame = spark.createDataFrame(
        rows, "user_id string, rank int, item_id string, score double, source string"
    )
    frame.write.mode("overwrite").parquet(str(path))
    return str(path)


@pytest.fixture
def features(spark, tmp_path):
    """Four items; distinct users in train + holdout: item 20 (3), 10 (2, index 0), 30 (2, index 2)."""
    root = tmp_path / "features"
    pairs = "user_idx int, item_idx int"
    spark.createDataFrame([(0, 0), (0, 1), (1, 1), (2, 1), (1, 2)], pairs).write.parquet(str(root / "train"))
    spark.createDataFrame([(1, 0), (2, 2)], pairs).write.parquet(str(root / "holdout"))
    spark.createDataFrame(
        [(0, "10"), (1, "20"), (2, "30"), (3, "40")], "item_idx int, item_id string"
    ).write.parquet(str(root / "items"))
    return str(root)


def lists_rows():
    rows = [(str(u), r, f"m{u}-{r}", 1.0 / r, "model") for u in range(40) for r in range(1, 4)]
    rows += [("p1", 1, "20", 3.0, "popularity"), ("p1", 2, "10", 2.0, "popularity")]
    return rows


def client_kwargs(endpoint):
    return {"endpoint_url": endpoint, "region_name": REGION, **CREDENTIALS}


def test_loads_every_list_and_marks_the_version(spark, tmp_path, features, client, table, dynamodb_endpoint):
    recs = served_lists(spark, tmp_path / "recs", lists_rows())
    summary_uri = str(tmp_path / "summary.json")
    summary = run(
        spark,
        recs,
        features,
        VERSION,
        table,
        client_kwargs=client_kwargs(dynamodb_endpoint),
        expires_at=EXPIRES_AT,
        max_items=2,
        threads=2,
        partitions=3,
        summary_uri=summary_uri,
    )
    assert (
        summary["users"],
        summary["lists_written"],
        summary["model_users"],
        summary["popularity_users"],
    ) == (
        41,
        41,
        40,
        1,
    )
    assert summary["partitions"] == 3 and summary["popularity_items"] == 2
    assert json.loads(Path(summary_uri).read_text())["lists_written"] == 41
    marker = read_loaded(client, table, VERSION)
    assert (marker.lists, marker.popularity_items, marker.expires_at) == (41, 2, EXPIRES_AT)
    # Every user's list is in the table (not only as many as the counts say), and nothing else of them.
    pages = client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    keys = {item["pk"]["S"] for page in pages for item in page["Items"]}
    users = {user_id for user_id, *_ in lists_rows()}
    assert {key for key in keys if key.startswith(f"{VERSION}#")} == {user_key(VERSION, u) for u in users}

    switch(client, table, VERSION, now_epoch=NOW)
    recommender = Recommender(table, client=client)
    known = recommender.recommend("7", n=10)
    assert known.source == "model" and [i.item_id for i in known.items] == ["m7-1", "m7-2"]  # max_items
    fallback = recommender.recommend("p1")
    assert fallback.source == "popularity" and [i.item_id for i in fallback.items] == ["20", "10"]
    stranger = recommender.recommend("never-seen")
    assert stranger.source == "popularity"
    assert [(i.item_id, i.score) for i in stranger.items] == [("20", 3.0), ("10", 2.0)]  # ties by index

    # The live version is never written into again.
    with pytest.raises(JobError, match="live version"):
        run(
            spark,
            recs,
            features,
            VERSION,
            table,
            client_kwargs=client_kwargs(dynamodb_endpoint),
            expires_at=EXPIRES_AT,
        )


def test_malformed_lists_are_refused_before_any_write(
    spark, tmp_path, features, client, table, dynamodb_endpoint
):
    rows = [*lists_rows(), ("7", 5, "x", 0.1, "model"), ("p1", 3, "40", 1.0, "model")]
    recs = served_lists(spark, tmp_path / "recs", rows)
    with pytest.raises(JobError, match=r"1 users mix sources \(e.g. \['p1'\]\), 1 users have ranks"):
        run(
            spark,
            recs,
            features,
            VERSION,
            table,
            client_kwargs=client_kwargs(dynamodb_endpoint),
            expires_at=EXPIRES_AT,
        )
    assert client.scan(TableName=table)["Count"] == 0


def test_a_task_failure_becomes_the_job_reason(spark, tmp_path, features, client, table, dynamodb_endpoint):
    # A list too large for one item fails its task; the job fails with that task's own error line.
    rows = [("big", r, f"{r}-" + "x" * 700, 1.0, "model") for r in range(1, 101)]
    recs = served_lists(spark, tmp_path / "recs", rows)
    with pytest.raises(JobError) as caught:
        run(
            spark,
            recs,
            features,
            VERSION,
            table,
            client_kwargs=client_kwargs(dynamodb_endpoint),
            expires_at=EXPIRES_AT,
        )
    assert str(caught.value).startswith(
        f"loading {VERSION} failed in a task: serving.table.ItemTooLarge: {VERSION}#big: 100 items"
    )
    assert read_loaded(client, table, VERSION) is None
    assert task_failure(RuntimeError("no python here")) is None
