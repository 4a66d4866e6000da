"""The local DynamoDB endpoint: the serving table exists after start, as serving/table.py defines it, and
like the local EMR endpoint it answers programs on this machine, never a web page."""

from __future__ import annotations

import http.client
import json
from typing import Any, Callable, Dict
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.localstack


def test_the_serving_table_exists_with_its_key_and_ttl(
    aws: Callable[[str], Any], resources: Dict[str, Any]
) -> None:
    from serving.table import PK, TTL_ATTRIBUTE

    dynamodb = aws("dynamodb")
    name = resources["serving"]["table_name"]
    table = dynamodb.describe_table(TableName=name)["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["KeySchema"] == [{"AttributeName": PK, "KeyType": "HASH"}]
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": TTL_ATTRIBUTE}


def test_a_page_cannot_write_to_the_table(local_stack: Any, resources: Dict[str, Any]) -> None:
    parts = urlsplit(local_stack.dynamodb_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    body = json.dumps({"TableName": resources["serving"]["table_name"], "Item": {"pk": {"S": "x"}}})
    try:
        connection.request(
            "POST",
            "/",
            body=body,
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "DynamoDB_20120810.PutItem",
                "Origin": "https://attacker.example",
            },
        )
        response = connection.getresponse()
        status, headers = response.status, dict(response.getheaders())
        response.read()
    finally:
        connection.close()
    assert status == 403
    assert not any(name.lower().startswith("access-control-") for name in headers)
