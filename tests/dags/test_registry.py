"""The model registry (recsys_dag.registry) and its CLI on in-process moto S3, which honours
conditional PutObject (If-Match / If-None-Match: *) like S3: a stale ETag gets HTTP 412."""

from __future__ import annotations

import getpass
import json
from datetime import datetime, timezone

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from recsys_dag import registry
from recsys_dag.registry import (
    VERSION_RE,
    RegistryConflict,
    move_latest,
    read_pointer,
    register_version,
    rollback,
    version_id,
)

from tools.ops import registry_cli

pytestmark = pytest.mark.dag

ARTS = "arts"
ROOT_URI = f"s3://{ARTS}/registry"
LATEST = f"{ROOT_URI}/latest.json"
T0 = datetime(2024, 2, 1, 3, 4, 5, 678901, tzinfo=timezone.utc)
T1 = datetime(2024, 2, 2, 9, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def s3(aws_env):
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=ARTS)
        yield client


def put(s3, key: str, body) -> None:
    data = json.dumps(body) if isinstance(body, dict) else body
    s3.put_object(Bucket=ARTS, Key=key, Body=data)


def get(s3, key: str):
    return json.loads(s3.get_object(Bucket=ARTS, Key=key)["Body"].read())


def keys(s3, prefix: str):
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=ARTS, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def stat(s3, prefix: str):
    """{key: (ETag, LastModified)} of every object under ``prefix``."""
    out = {}
    for key in keys(s3, prefix):
        head = s3.head_object(Bucket=ARTS, Key=key)
        out[key] = (head["ETag"], head["LastModified"])
    return out


def pointer_doc(version: str, **extra) -> dict:
    ds = VERSION_RE.match(version).group("ds")
    base = f"{ROOT_URI}/versions/{version}"
    doc = {
        "version": version,
        "ds": ds,
        "run_id": f"scheduled__{ds}",
        "model": f"{base}/model",
        "recommendations": f"{base}/recommendations",
        "metrics": {"model": {"ndcg": 0.3}},
        "promoted_at": f"{ds}T02:30:00Z",
        "lineage": {"code_version": "0.1.0", "partitions_read": [ds], "cluster_id": "j-1"},
        "params": {"factors": 64},
    }
    doc.update(extra)
    return doc


def run_outputs(s3, ds: str, tag: str = "") -> dict:
    """A run's model folder and served lists (tag changes the bytes); returns register_version's sources."""
    run = f"runs/dt={ds}"
    put(s3, f"{run}/model/user_factors/part-0.parquet", f"users{tag}")
    put(s3, f"{run}/model/item_factors/part-0.parquet", f"items{tag}")
    put(s3, f"{run}/model/params.json", {"factors": 64})
    put(s3, f"{run}/recommendations/part-0.parquet", f"recs{tag}")
    return {"model": f"s3://{ARTS}/{run}/model", "recommendations": f"s3://{ARTS}/{run}/recommendations"}


def register(s3, version: str, now=T0) -> dict:
    ds = VERSION_RE.match(version).group("ds")
    return register_version(
        s3,
        f"{ROOT_URI}/versions/{version}",
        run_outputs(s3, ds),
        {"metrics.json": {"model": {"ndcg": 0.3}}, "gate.json": {"promote": True}},
        {"version": version, "pointer": pointer_doc(version)},
        now=now,
    )


class Racer:
    """The S3 client, except that before each of our conditional writes of latest.json another writer
    puts (or, for None, deletes) the next of ``docs`` there: our ETag is stale by the time we write."""

    def __init__(self, s3, docs):
        self._s3, self.docs = s3, list(docs)

    def __getattr__(self, name):
        return getattr(self._s3, name)

    def put_object(self, **kwargs):
        conditional = "IfMatch" in kwargs or "IfNoneMatch" in kwargs
        if kwargs["Key"] == "registry/latest.json" and conditional and self.docs:
            doc = self.docs.pop(0)
            if doc is None:
                self._s3.delete_object(Bucket=ARTS, Key="registry/latest.json")
            else:
                self._s3.put_object(Bucket=ARTS, Key="registry/latest.json", Body=json.dumps(doc))
        return self._s3.put_object(**kwargs)


# --- versions ------------------------------------------------------------------------------------


def test_version_id():
    assert version_id("2024-01-31", "j-2AB3XYZ") == "2024-01-31_j-2AB3XYZ"
    assert version_id("2024-01-31", "j_2AB 3/x.y") == "2024-01-31_j-2AB-3-x-y"
    for ds in ("2024-1-31", "2024-02-30", "20240131", "", None):
        with pytest.raises(ValueError, match="YYYY-MM-DD"):
            version_id(ds, "j-1")
    for training_id in ("", "   "):
        with pytest.raises(ValueError, match="empty training id"):
            version_id("2024-01-31", training_id)
    assert [bool(VERSION_RE.match(v)) for v in ("2024-01-30", "2024-01-31_j-2AB3XYZ")] == [True, True]
    assert [bool(VERSION_RE.match(v)) for v in ("2024-01-31_", "2024-01-31_a_b", "../x", "x")] == [False] * 4


def test_register_version_copies_then_writes_the_manifest_last(s3):
    sources = run_outputs(s3, "2024-01-31")
    version_uri = f"{ROOT_URI}/versions/2024-01-31_j-1"
    result = register_version(
        s3,
        version_uri,
        sources,
        {"metrics.json": {"ndcg": 0.3}, "gate.json": {"promote": True}},
        {"version": "2024-01-31_j-1", "pointer": {"version": "2024-01-31_j-1"}},
        now=T0,
    )
    written = {
        "version": "2024-01-31_j-1",
        "pointer": {"version": "2024-01-31_j-1"},
        "version_uri": version_uri,
        "objects": {"model": 3, "recommendations": 1},
        "registered_at": "2024-02-01T03:04:05.678901Z",
    }
    assert result == {**written, "registered": True}
    base = "registry/versions/2024-01-31_j-1/"
    assert keys(s3, base) == [
        base + "_manifest.json",
        base + "gate.json",
        base + "metrics.json",
        base + "model/item_factors/part-0.parquet",
        base + "model/params.json",
        base + "model/user_factors/part-0.parquet",
        base + "recommendations/part-0.parquet",
    ]
    assert get(s3, base + "_manifest.json") == written
    assert get(s3, base + "metrics.json") == {"ndcg": 0.3}
    assert s3.get_object(Bucket=ARTS, Key=base + "recommendations/part-0.parquet")["Body"].read() == b"recs"
    raw = s3.get_object(Bucket=ARTS, Key=base + "gate.json")
    assert raw["ContentType"] == "application/json"
    assert raw["Body"].read().decode() == json.dumps({"promote": True}, indent=2, sort_keys=True)


def test_register_version_is_written_once(s3):
    first = register(s3, "2024-01-31_j-1")
    before = stat(s3, "registry/versions/")
    run_outputs(s3, "2024-01-31", tag="-retrained")  # the run's outputs change; the version must not
    second = register(s3, "2024-01-31_j-1", now=T1)
    assert second == {**{k: v for k, v in first.items() if k != "registered"}, "registered": False}
    assert stat(s3, "registry/versions/") == before


def test_register_version_deletes_the_leftovers_of_a_dead_attempt(s3):
    base = "registry/versions/2024-01-31_j-1/"
    put(s3, base + "model/user_factors/part-9-of-a-dead-attempt.parquet", "stale")
    put(s3, base + "metrics.json", {"stale": True})
    register(s3, "2024-01-31_j-1")
    assert base + "model/user_factors/part-9-of-a-dead-attempt.parquet" not in keys(s3, base)
    assert get(s3, base + "metrics.json") == {"model": {"ndcg": 0.3}}
    assert len(keys(s3, base)) == 7


def test_register_version_deletes_more_leftovers_than_one_delete_batch(s3):
    base = "registry/versions/2024-01-31_j-1/"
    for i in range(1003):  # more than one page of ListObjectsV2 and one DeleteObjects batch
        s3.put_object(Bucket=ARTS, Key=f"{base}model/stale/part-{i:05d}", Body=b"")
    register(s3, "2024-01-31_j-1")
    assert keys(s3, base + "model/stale/") == []
    assert len(keys(s3, base)) == 7


def test_register_version_refuses_an_empty_source(s3):
    sources = {**run_outputs(s3, "2024-01-31"), "recommendations": f"s3://{ARTS}/runs/dt=2024-01-31/none"}
    with pytest.raises(ValueError, match=r"no objects under s3://arts/runs/dt=2024-01-31/none"):
        register_version(s3, f"{ROOT_URI}/versions/2024-01-31_j-1", sources, {}, {})
    assert keys(s3, "registry/") == []


def test_list_versions(s3):
    register(s3, "2024-01-30_j-0", now=T0)
    register(s3, "2024-01-31_j-1", now=T0)
    register(s3, "2024-01-31_j-2", now=T1)
    put(s3, "registry/versions/2024-02-01_j-3/model/part-0", "half a copy")
    put(s3, "registry/versions/2024-01-29/_manifest.json", {"version": "2024-01-29"})
    listed = registry.list_versions(s3, ROOT_URI)
    assert [(v["version"], v["complete"], v["registered_at"]) for v in listed] == [
        ("2024-02-01_j-3", False, None),
        ("2024-01-31_j-2", True, "2024-02-02T09:00:00.000000Z"),
        ("2024-01-31_j-1", True, "2024-02-01T03:04:05.678901Z"),
        ("2024-01-30_j-0", True, "2024-02-01T03:04:05.678901Z"),
        ("2024-01-29", True, None),
    ]
    assert listed[0]["uri"] == f"{ROOT_URI}/versions/2024-02-01_j-3"


# --- the pointer ---------------------------------------------------------------------------------


def test_read_pointer_normalises_old_and_new_shapes(s3):
    assert read_pointer(s3, LATEST) is None
    old = {
        "version": "2024-01-30",
        "uri": f"{ROOT_URI}/versions/2024-01-30",
        "model_uri": f"{ROOT_URI}/versions/2024-01-30/model",
        "metrics": {"model": {"ndcg": 0.2}},
        "objects": 4,
        "run_id": "scheduled__2024-01-30",
        "source": "s3://arts/runs/dt=2024-01-30/model",
    }
    new_model, new_recs = (
        f"{ROOT_URI}/versions/2024-01-31_j-1/{name}" for name in ("model", "recommendations")
    )
    thin = {"version": "2024-01-01", "model_uri": "s3://nowhere", "metrics": {"a": 1}}
    cases = [
        (old, "2024-01-30", old["model_uri"], old["model_uri"] + "/recommendations", old["metrics"]),
        (thin, "2024-01-01", "s3://nowhere", "s3://nowhere/recommendations", {"a": 1}),
        ({"version": "2024-01-30", "metrics": {"a": 1}}, "2024-01-30", None, None, {"a": 1}),
        (pointer_doc("2024-01-31_j-1"), "2024-01-31", new_model, new_recs, {"model": {"ndcg": 0.3}}),
    ]
    for doc, ds, model, recommendations, metrics in cases:
        put(s3, "registry/latest.json", doc)
        pointer = read_pointer(s3, LATEST)
        etag = s3.head_object(Bucket=ARTS, Key="registry/latest.json")["ETag"]
        assert pointer == registry.Pointer(doc, etag, doc["version"], ds, model, recommendations, metrics)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[1, 2]", "not a JSON object"),
        ("{oops", "not JSON"),
        ('{"metrics": {}}', "no usable version"),
        ('{"version": "latest"}', "no usable version"),
    ],
)
def test_read_pointer_refuses_a_broken_latest(s3, body, message):
    put(s3, "registry/latest.json", body)
    with pytest.raises(ValueError, match=message):
        read_pointer(s3, LATEST)


def test_move_latest_moves_forward_and_records_history(s3):
    first = move_latest(s3, LATEST, pointer_doc("2024-01-30_j-0"), now=T0)
    assert first == registry.MoveResult(True, "latest.json moved to 2024-01-30_j-0 (was absent)", None, 0)
    second = move_latest(s3, LATEST, pointer_doc("2024-01-31_j-1"), now=T1)
    assert second == registry.MoveResult(
        True, "latest.json moved to 2024-01-31_j-1 (was 2024-01-30_j-0)", pointer_doc("2024-01-30_j-0"), 0
    )
    assert get(s3, "registry/latest.json") == pointer_doc("2024-01-31_j-1")
    assert keys(s3, "registry/history/") == [
        "registry/history/20240201T030405678901Z_promote_2024-01-30_j-0.json",
        "registry/history/20240202T090000000000Z_promote_2024-01-31_j-1.json",
    ]
    assert get(s3, "registry/history/20240202T090000000000Z_promote_2024-01-31_j-1.json") == {
        **pointer_doc("2024-01-31_j-1"),
        "previous_version": "2024-01-30_j-0",
    }
    # A retrained model of the same date (another cluster) replaces the one before it.
    third = move_latest(s3, LATEST, pointer_doc("2024-01-31_j-2"))
    assert (third.moved, third.previous["version"]) == (True, "2024-01-31_j-1")


def test_move_latest_never_moves_back_in_logical_date(s3):
    move_latest(s3, LATEST, pointer_doc("2024-02-03_j-9"))
    before = stat(s3, "registry/")
    for older in ("2024-01-31_j-1", "2024-02-02_j-99", "2023-12-31_j-1", "2024-02-02"):  # any earlier date
        ds = older[:10]
        result = move_latest(s3, LATEST, pointer_doc(older))
        assert result == registry.MoveResult(
            False,
            f"production is 2024-02-03_j-9 (ds 2024-02-03), newer than {ds}: latest.json left alone",
            pointer_doc("2024-02-03_j-9"),
            0,
        ), older
    assert stat(s3, "registry/") == before


def test_move_latest_compares_with_an_old_layout_pointer_by_its_version_date(s3):
    put(s3, "registry/latest.json", {"version": "2024-02-03", "metrics": {}})
    assert not move_latest(s3, LATEST, pointer_doc("2024-01-31_j-1")).moved
    result = move_latest(s3, LATEST, pointer_doc("2024-02-04_j-1"))
    assert result.reason == "latest.json moved to 2024-02-04_j-1 (was 2024-02-03)"


def test_move_latest_is_idempotent_for_the_same_version(s3):
    move_latest(s3, LATEST, pointer_doc("2024-01-31_j-1"))
    before = stat(s3, "registry/")
    result = move_latest(s3, LATEST, pointer_doc("2024-01-31_j-1", promoted_at="later"))
    assert result == registry.MoveResult(
        False, "latest.json already names 2024-01-31_j-1", pointer_doc("2024-01-31_j-1"), 0
    )
    assert stat(s3, "registry/") == before


def test_move_latest_refuses_a_document_without_version_or_ds(s3):
    for doc in ({"ds": "2024-01-31"}, {"version": "2024-01-31_j-1"}, {"version": "x", "ds": "2024-01-31"}):
        with pytest.raises(ValueError):
            move_latest(s3, LATEST, doc)
    assert keys(s3, "registry/") == []


def test_a_racing_older_writer_is_seen_and_replaced(s3):
    move_latest(s3, LATEST, pointer_doc("2024-01-29_j-0"))
    racer = Racer(s3, [pointer_doc("2024-01-30_j-5")])
    result = move_latest(racer, LATEST, pointer_doc("2024-01-31_j-1"), now=T1)
    assert result == registry.MoveResult(
        True, "latest.json moved to 2024-01-31_j-1 (was 2024-01-30_j-5)", pointer_doc("2024-01-30_j-5"), 1
    )
    assert get(s3, "registry/latest.json") == pointer_doc("2024-01-31_j-1")
    history = get(s3, "registry/history/20240202T090000000000Z_promote_2024-01-31_j-1.json")
    assert history["previous_version"] == "2024-01-30_j-5"


def test_a_racing_newer_writer_is_not_overwritten(s3):
    move_latest(s3, LATEST, pointer_doc("2024-01-29_j-0"))
    racer = Racer(s3, [pointer_doc("2024-02-03_j-9")])
    result = move_latest(racer, LATEST, pointer_doc("2024-01-31_j-1"))
    assert result == registry.MoveResult(
        False,
        "production is 2024-02-03_j-9 (ds 2024-02-03), newer than 2024-01-31: latest.json left alone",
        pointer_doc("2024-02-03_j-9"),
        1,
    )
    assert get(s3, "registry/latest.json") == pointer_doc("2024-02-03_j-9")


def test_a_racing_writer_creating_or_deleting_latest_is_seen(s3):
    created = move_latest(Racer(s3, [pointer_doc("2024-01-30_j-5")]), LATEST, pointer_doc("2024-01-31_j-1"))
    assert (created.moved, created.previous["version"], created.conflicts) == (True, "2024-01-30_j-5", 1)
    deleted = move_latest(Racer(s3, [None]), LATEST, pointer_doc("2024-02-01_j-2"))
    assert (deleted.moved, deleted.previous, deleted.conflicts) == (True, None, 1)
    assert get(s3, "registry/latest.json")["version"] == "2024-02-01_j-2"


def test_a_pointer_that_keeps_changing_raises_registry_conflict(s3):
    move_latest(s3, LATEST, pointer_doc("2024-01-29_j-0"))
    racer = Racer(s3, [pointer_doc(f"2024-01-30_j-{i}") for i in range(3)])
    with pytest.raises(RegistryConflict) as raised:
        move_latest(racer, LATEST, pointer_doc("2024-01-31_j-1"), max_attempts=3)
    assert str(raised.value) == (
        "could not move s3://arts/registry/latest.json to 2024-01-31_j-1: it changed under us 3 times in "
        "3 attempts (now 2024-01-30_j-2)"
    )
    assert get(s3, "registry/latest.json") == pointer_doc("2024-01-30_j-2")  # the other writer's, intact
    assert [k for k in keys(s3, "registry/history/") if "2024-01-31_j-1" in k] == []


class LostResponse:
    """The S3 client, except that the first conditional write of latest.json lands but its caller gets
    the 412 that botocore's retry of it (after a lost response) would meet."""

    def __init__(self, s3):
        self._s3, self.lost = s3, False

    def __getattr__(self, name):
        return getattr(self._s3, name)

    def put_object(self, **kwargs):
        response = self._s3.put_object(**kwargs)
        if kwargs["Key"] == "registry/latest.json" and not self.lost:
            self.lost = True
            error = {"Error": {"Code": "PreconditionFailed"}, "ResponseMetadata": {"HTTPStatusCode": 412}}
            raise ClientError(error, "PutObject")
        return response


def test_our_own_write_met_on_a_retry_is_a_move(s3):
    move_latest(s3, LATEST, pointer_doc("2024-01-30_j-0"))
    result = move_latest(LostResponse(s3), LATEST, pointer_doc("2024-01-31_j-1"), now=T1)
    assert result == registry.MoveResult(
        True, "latest.json moved to 2024-01-31_j-1 (was 2024-01-30_j-0)", pointer_doc("2024-01-30_j-0"), 1
    )
    history = get(s3, "registry/history/20240202T090000000000Z_promote_2024-01-31_j-1.json")
    assert history["previous_version"] == "2024-01-30_j-0"


def test_a_stale_etag_is_a_412_on_moto(s3):
    put(s3, "registry/latest.json", {"version": "2024-01-30"})
    stale = s3.head_object(Bucket=ARTS, Key="registry/latest.json")["ETag"]
    put(s3, "registry/latest.json", {"version": "2024-01-31"})
    with pytest.raises(ClientError) as raised:
        s3.put_object(Bucket=ARTS, Key="registry/latest.json", Body=b"{}", IfMatch=stale)
    assert raised.value.response["Error"]["Code"] == "PreconditionFailed"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


# --- rollback ------------------------------------------------------------------------------------


def test_rollback_to_a_complete_version(s3):
    for version in ("2024-01-30_j-0", "2024-01-31_j-1"):
        register(s3, version)
        move_latest(s3, LATEST, pointer_doc(version), now=T0)
    result = rollback(s3, ROOT_URI, "2024-01-30_j-0", by="alice", reason="ndcg dropped online", now=T1)
    assert result == registry.MoveResult(
        True, "latest.json moved to 2024-01-30_j-0 (was 2024-01-31_j-1)", pointer_doc("2024-01-31_j-1"), 0
    )
    expected = {
        **pointer_doc("2024-01-30_j-0"),
        "promoted_at": "2024-02-02T09:00:00.000000Z",
        "rolled_back": {
            "from_version": "2024-01-31_j-1",
            "by": "alice",
            "reason": "ndcg dropped online",
            "at": "2024-02-02T09:00:00.000000Z",
        },
    }
    assert get(s3, "registry/latest.json") == expected
    assert get(s3, "registry/history/20240202T090000000000Z_rollback_2024-01-30_j-0.json") == {
        **expected,
        "previous_version": "2024-01-31_j-1",
    }
    # Rolling back does not pin: the next night's model moves production forward again.
    assert move_latest(s3, LATEST, pointer_doc("2024-02-01_j-2")).moved


def test_rollback_to_an_old_layout_version(s3):
    base = "registry/versions/2024-01-30"
    put(s3, f"{base}/model/part-0.parquet", "factors")
    old_manifest = {
        "version": "2024-01-30",
        "uri": f"s3://{ARTS}/{base}",
        "model_uri": f"s3://{ARTS}/{base}/model",
        "metrics": {"model": {"ndcg": 0.2}},
        "objects": 1,
        "run_id": "scheduled__2024-01-30",
        "source": "s3://arts/runs/dt=2024-01-30/model",
    }
    put(s3, f"{base}/_manifest.json", old_manifest)
    move_latest(s3, LATEST, pointer_doc("2024-01-31_j-1"))
    rollback(s3, ROOT_URI, "2024-01-30", by="bob", reason="bad", now=T1)
    assert get(s3, "registry/latest.json") == {
        "version": "2024-01-30",
        "ds": "2024-01-30",
        "model": f"s3://{ARTS}/{base}/model",
        "recommendations": f"s3://{ARTS}/{base}/model/recommendations",
        "metrics": {"model": {"ndcg": 0.2}},
        "run_id": "scheduled__2024-01-30",
        "promoted_at": "2024-02-02T09:00:00.000000Z",
        "rolled_back": {
            "from_version": "2024-01-31_j-1",
            "by": "bob",
            "reason": "bad",
            "at": "2024-02-02T09:00:00.000000Z",
        },
    }
    pointer = read_pointer(s3, LATEST)
    assert (pointer.ds, pointer.recommendations) == (
        "2024-01-30",
        f"s3://{ARTS}/{base}/model/recommendations",
    )


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("2024-01-30_j-half", "unknown or incomplete"),
        ("2024-01-29_j-nope", "unknown or incomplete"),
        ("2024-01-31_j-1", "already names 2024-01-31_j-1"),
        ("../latest", "not a registry version"),
    ],
)
def test_rollback_refuses_incomplete_unknown_or_current_versions(s3, version, message):
    register(s3, "2024-01-31_j-1")
    move_latest(s3, LATEST, pointer_doc("2024-01-31_j-1"))
    put(s3, "registry/versions/2024-01-30_j-half/model/part-0.parquet", "no manifest: died mid-copy")
    before = stat(s3, "registry/")
    with pytest.raises(ValueError, match=message):
        rollback(s3, ROOT_URI, version, by="alice", reason="test")
    assert stat(s3, "registry/") == before


def test_rollback_needs_who_and_why(s3):
    register(s3, "2024-01-30_j-0")
    for by, reason in (("", "why"), ("alice", " ")):
        with pytest.raises(ValueError, match="who"):
            rollback(s3, ROOT_URI, "2024-01-30_j-0", by=by, reason=reason)


def test_rollback_racing_a_promotion_records_what_it_replaced(s3):
    register(s3, "2024-01-30_j-0")
    move_latest(s3, LATEST, pointer_doc("2024-01-31_j-1"))
    racer = Racer(s3, [pointer_doc("2024-02-01_j-2")])
    result = rollback(racer, ROOT_URI, "2024-01-30_j-0", by="alice", reason="bad", now=T1)
    assert (result.moved, result.conflicts, result.previous["version"]) == (True, 1, "2024-02-01_j-2")
    assert get(s3, "registry/latest.json")["rolled_back"]["from_version"] == "2024-02-01_j-2"


# --- the CLI -------------------------------------------------------------------------------------


def test_cli_rollback_and_show(s3, capsys):
    for version in ("2024-01-30_j-0", "2024-01-31_j-1"):
        register(s3, version)
        move_latest(s3, LATEST, pointer_doc(version))
    put(s3, "registry/versions/2024-02-01_j-2/model/part-0", "half")
    args = [
        "rollback",
        "--registry",
        ROOT_URI,
        "--version",
        "2024-01-30_j-0",
        "--reason",
        "bad",
        "--by",
        "ci",
    ]
    assert registry_cli.main(args) == 0
    assert capsys.readouterr().out == "latest.json moved to 2024-01-30_j-0 (was 2024-01-31_j-1)\n"
    assert get(s3, "registry/latest.json")["rolled_back"]["by"] == "ci"

    assert registry_cli.main(["show", "--registry", ROOT_URI]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "latest.json -> 2024-01-30_j-0"
    assert out[2].split()[0] == "promoted_at" and out[2].split()[1].endswith("Z")
    assert out[4] == f"  recommendations  {ROOT_URI}/versions/2024-01-30_j-0/recommendations"
    assert out[5].startswith("  rolled_back      from 2024-01-31_j-1 by ci at ") and out[5].endswith(": bad")
    assert out[6] == "versions (3, newest first):"
    assert [line.split()[:2] for line in out[7:]] == [
        ["2024-02-01_j-2", "INCOMPLETE"],
        ["2024-01-31_j-1", "complete"],
        ["*", "2024-01-30_j-0"],
    ]


def _loaded(dynamodb, table: str, version: str, expires_at: int) -> None:
    """``version`` loaded in ``table`` as load_serving leaves it (one list, popularity, marker)."""
    from serving.load import finish_load
    from serving.table import RankedList

    popular = RankedList(("i1",), (1.0,), "popularity")
    finish_load(
        dynamodb, table, version, popularity=popular, lists_written=1, lists_expected=1, expires_at=expires_at
    )


def test_cli_rollback_moves_the_serving_pointer_with_latest_json(s3, capsys):
    import time

    from serving import pointer
    from serving.table import ensure_table

    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    ensure_table(dynamodb, "serve", wait_delay_s=1)
    later = int(time.time()) + 86400
    for version in ("2024-01-30_j-0", "2024-01-31_j-1"):
        register(s3, version)
        move_latest(s3, LATEST, pointer_doc(version))
        _loaded(dynamodb, "serve", version, later)
        pointer.switch(dynamodb, "serve", version, now_epoch=int(time.time()))
    args = ["rollback", "--registry", ROOT_URI, "--reason", "bad", "--by", "ci", "--serving-table", "serve"]

    assert registry_cli.main([*args, "--version", "2024-01-30_j-0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "latest.json moved to 2024-01-30_j-0 (was 2024-01-31_j-1)",
        "serving table serve: pointer moved to 2024-01-30_j-0 (was 2024-01-31_j-1)",
    ]
    live = pointer.read_pointer(dynamodb, "serve")
    assert (live.version, live.action, live.by, live.reason) == ("2024-01-30_j-0", "rollback", "ci", "bad")

    # A version whose lists are not (or no longer) in the table: refused before latest.json moves.
    register(s3, "2024-01-29_j-9")
    before = get(s3, "registry/latest.json")
    assert registry_cli.main([*args, "--version", "2024-01-29_j-9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ERROR: 2024-01-29_j-9's lists are not loaded in the serving table serve")
    _loaded(dynamodb, "serve", "2024-01-29_j-9", int(time.time()) - 1)  # loaded once, expired since
    assert registry_cli.main([*args, "--version", "2024-01-29_j-9"]) == 2
    assert "2024-01-29_j-9's lists are expired" in capsys.readouterr().err
    assert get(s3, "registry/latest.json") == before
    assert pointer.read_pointer(dynamodb, "serve").version == "2024-01-30_j-0"


def test_cli_errors_are_one_line_and_exit_2(s3, capsys):
    register(s3, "2024-01-30_j-0")
    register(s3, "2024-01-31_j-1")
    move_latest(s3, LATEST, pointer_doc("2024-01-31_j-1"))
    for version, reason, message in (
        ("2024-01-29_j-x", "r", "version 2024-01-29_j-x is unknown or incomplete"),
        ("2024-01-31_j-1", "r", "latest.json already names 2024-01-31_j-1"),
        ("../latest", "r", "not a registry version (<YYYY-MM-DD>[_<token>]): '../latest'"),
        ("2024-01-30_j-0", " ", "a rollback needs who (by) and why (reason)"),
    ):
        args = ["rollback", "--registry", ROOT_URI, "--version", version, "--reason", reason, "--by", "ci"]
        assert registry_cli.main(args) == 2, version
        err = capsys.readouterr().err
        assert err.startswith(f"ERROR: {message}") and err.count("\n") == 1, err


def test_cli_default_by_names_the_os_user_and_the_caller(s3):
    assert registry_cli.default_by() == f"{getpass.getuser()} (arn:aws:sts::123456789012:user/moto)"


def test_cli_default_by_without_sts_is_the_os_user(aws_env):
    # Nothing listens on port 9 of loopback: STS is unreachable, the OS user is still recorded.
    assert registry_cli.default_by("http://127.0.0.1:9") == getpass.getuser()
