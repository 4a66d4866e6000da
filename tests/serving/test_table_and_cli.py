"""ensure_table and the CLI against moto's DynamoDB server."""

from __future__ import annotations

import json
import uuid

import pytest

from serving import cli
from serving.pointer import switch
from serving.table import TTL_ATTRIBUTE, ensure_table
from tests.serving.conftest import CREDENTIALS, NOW, REGION, load_version

pytestmark = pytest.mark.unit

V1, V2 = "2024-01-30_j-AAA", "2024-01-31_j-BBB"


def test_ensure_table_is_idempotent_and_enables_ttl(client):
    name = f"serving-{uuid.uuid4().hex[:12]}"
    first = ensure_table(client, name, wait_delay_s=1)
    assert first["created"] and first["ttl_enabled_now"] and first["billing_mode"] == "PAY_PER_REQUEST"
    again = ensure_table(client, name, wait_delay_s=1)
    assert not again["created"] and not again["ttl_enabled_now"] and again["arn"] == first["arn"]
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", TTL_ATTRIBUTE)
    described = client.describe_table(TableName=name)["Table"]
    assert described["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]


def test_ensure_table_provisioned(client):
    name = f"serving-{uuid.uuid4().hex[:12]}"
    result = ensure_table(client, name, billing_mode="PROVISIONED", read_capacity=5, write_capacity=7)
    assert result["created"]
    throughput = client.describe_table(TableName=name)["Table"]["ProvisionedThroughput"]
    assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (5, 7)


def test_ensure_table_refuses_a_table_of_another_shape(client):
    name = f"other-{uuid.uuid4().hex[:12]}"
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(ValueError, match="key schema"):
        ensure_table(client, name)


@pytest.fixture
def aws_env(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_recommend_pointer_and_rollback(client, table, dynamodb_endpoint, aws_env, tmp_path, capsys):
    common = ("--table", table, "--endpoint-url", dynamodb_endpoint, "--region", REGION)
    code, _, err = run_cli(capsys, "recommend", *common, "--user", "1")
    assert code == 2 and "no live version" in err

    load_version(client, table, V1, ["1"], prefix="v1")
    load_version(client, table, V2, ["1"], prefix="v2")
    switch(client, table, V1, now_epoch=NOW)
    switch(client, table, V2, now_epoch=NOW)
    titles = tmp_path / "items.jsonl"
    titles.write_text(json.dumps({"item_id": "v2-1-0", "title": "Toy Story (1995)"}) + "\n")

    code, out, _ = run_cli(capsys, "recommend", *common, "--user", "1", "--n", "2", "--titles", str(titles))
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith(f"version {V2}  user 1  source model  items 2")
    assert lines[2].split()[:4] == ["1", "v2-1-0", "1", "model"] and lines[2].endswith("Toy Story (1995)")
    assert lines[3].split()[:2] == ["2", "v2-1-1"] and lines[3].endswith("?")

    code, out, _ = run_cli(
        capsys, "rollback", *common, "--version", V1, "--reason", "CTR dropped", "--by", "bob"
    )
    assert code == 0 and f"pointer moved to {V1}" in out
    code, out, _ = run_cli(capsys, "pointer", *common)
    assert code == 0 and out.startswith(f"live {V1} (ds 2024-01-30, 1 lists)")
    assert "rollback" in out and "by bob: CTR dropped" in out and f"{V2} -> {V1}" in out

    code, _, err = run_cli(capsys, "rollback", *common, "--version", "2023-01-01_j-X", "--reason", "x")
    assert code == 2 and "not loaded" in err


def test_cli_ensure_table(dynamodb_endpoint, aws_env, capsys):
    name = f"serving-{uuid.uuid4().hex[:12]}"
    code, out, _ = run_cli(
        capsys, "ensure-table", "--table", name, "--endpoint-url", dynamodb_endpoint, "--region", REGION
    )
    assert code == 0 and json.loads(out)["created"] is True


def test_cli_an_aws_error_is_one_line_and_exit_1(dynamodb_endpoint, monkeypatch, capsys):
    """No credentials anywhere: botocore's own words on one line, no traceback."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # earlier tests' session cached their credentials
    args = ["pointer", "--table", "t", "--endpoint-url", dynamodb_endpoint, "--region", REGION]
    assert cli.main(args) == 1
    assert capsys.readouterr().err == "error: Unable to locate credentials\n"
