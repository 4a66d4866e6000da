"""The registry's conditional writes on LocalStack's S3, and the rollback CLI as a process against it."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from recsys_dag import registry

pytestmark = pytest.mark.localstack

ROOT = Path(__file__).resolve().parents[2]


def doc(version: str) -> dict:
    return {"version": version, "ds": version[:10], "metrics": {"model": {"ndcg": 0.3}}}


class Racer:
    """The S3 client, except that another writer puts the next of ``docs`` into latest.json right before
    each of our conditional writes of it."""

    def __init__(self, s3, bucket: str, key: str, docs):
        self._s3, self.bucket, self.key, self.docs = s3, bucket, key, list(docs)

    def __getattr__(self, name):
        return getattr(self._s3, name)

    def put_object(self, **kwargs):
        if kwargs["Key"] == self.key and ("IfMatch" in kwargs or "IfNoneMatch" in kwargs) and self.docs:
            self._s3.put_object(Bucket=self.bucket, Key=self.key, Body=json.dumps(self.docs.pop(0)))
        return self._s3.put_object(**kwargs)


@pytest.fixture
def reg(s3, resources, test_prefix):
    """(bucket, registry root URI, latest.json key) in this test's own prefix."""
    bucket = resources["buckets"]["artifacts"]
    root = f"s3://{bucket}/{test_prefix}/registry"
    return bucket, root, f"{test_prefix}/registry/latest.json"


def test_a_stale_etag_gets_412_and_move_latest_decides_again(s3, reg):
    bucket, root, key = reg
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(doc("2024-01-29_j-0")), IfNoneMatch="*")
    stale = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(doc("2024-01-30_j-1")), IfMatch=stale)
    for condition in ({"IfMatch": stale}, {"IfNoneMatch": "*"}):
        with pytest.raises(ClientError) as raised:
            s3.put_object(Bucket=bucket, Key=key, Body=b"{}", **condition)
        error = raised.value.response
        assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
            "PreconditionFailed",
            412,
        )
    assert json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())["version"] == "2024-01-30_j-1"

    latest = f"{root}/latest.json"
    newer = registry.move_latest(
        Racer(s3, bucket, key, [doc("2024-02-03_j-9")]), latest, doc("2024-01-31_j-2")
    )
    assert (newer.moved, newer.conflicts) == (False, 1)
    assert newer.reason.startswith("production is 2024-02-03_j-9 (ds 2024-02-03), newer than 2024-01-31")

    older = registry.move_latest(
        Racer(s3, bucket, key, [doc("2024-02-04_j-3")]), latest, doc("2024-02-05_j-4")
    )
    assert older == registry.MoveResult(
        True, "latest.json moved to 2024-02-05_j-4 (was 2024-02-04_j-3)", doc("2024-02-04_j-3"), 1
    )
    with pytest.raises(registry.RegistryConflict):
        racer = Racer(s3, bucket, key, [doc(f"2024-02-06_j-{i}") for i in range(2)])
        registry.move_latest(racer, latest, doc("2024-02-07_j-5"), max_attempts=2)
    assert json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) == doc("2024-02-06_j-1")


def cli(resources, local_stack, *args):
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": resources["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": resources["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": resources["region"],
    }
    env.pop("AWS_PROFILE", None)
    return subprocess.run(
        [sys.executable, "-m", "tools.ops.registry_cli", *args, "--endpoint-url", local_stack.localstack_url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_rollback_moves_the_pointer(s3, reg, resources, local_stack, test_prefix):
    bucket, root, key = reg
    for version in ("2024-01-30_j-0", "2024-01-31_j-1"):
        run = f"{test_prefix}/runs/{version}"
        s3.put_object(Bucket=bucket, Key=f"{run}/model/params.json", Body=b"{}")
        s3.put_object(Bucket=bucket, Key=f"{run}/recommendations/part-0.parquet", Body=b"recs")
        sources = {
            "model": f"s3://{bucket}/{run}/model",
            "recommendations": f"s3://{bucket}/{run}/recommendations",
        }
        version_uri = f"{root}/versions/{version}"
        registry.register_version(s3, version_uri, sources, {"metrics.json": {}}, {"pointer": doc(version)})
        assert registry.move_latest(s3, f"{root}/latest.json", doc(version)).moved

    moved = cli(
        resources, local_stack, "rollback", "--registry", root, "--version", "2024-01-30_j-0", "--reason", "t"
    )
    assert (moved.returncode, moved.stdout) == (
        0,
        "latest.json moved to 2024-01-30_j-0 (was 2024-01-31_j-1)\n",
    )
    latest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert latest["version"] == "2024-01-30_j-0"
    assert latest["rolled_back"]["from_version"] == "2024-01-31_j-1"
    assert latest["rolled_back"]["reason"] == "t"
    assert latest["rolled_back"]["by"].startswith(getpass.getuser())
    history = s3.list_objects_v2(Bucket=bucket, Prefix=f"{test_prefix}/registry/history/")["Contents"]
    assert sorted(o["Key"].rsplit("/", 1)[1].split("_")[1] for o in history) == [
        "promote",
        "promote",
        "rollback",
    ]

    again = cli(
        resources, local_stack, "rollback", "--registry", root, "--version", "2024-01-30_j-0", "--reason", "t"
    )
    assert (
        again.returncode == 2
        and again.stderr == "ERROR: latest.json already names 2024-01-30_j-0: nothing to roll back\n"
    )

    shown = cli(resources, local_stack, "show", "--registry", root)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == "latest.json -> 2024-01-30_j-0"
    assert "  rolled_back      from 2024-01-31_j-1 by " in shown.stdout
