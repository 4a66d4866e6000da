"""A real HTTP DynamoDB endpoint for the serving tests: moto's server on a free loopback port.

One server per test session; each test gets its own table (a fresh name), so tests never share items.
"""

from __future__ import annotations

import logging
import uuid
from typing import Iterable, List, Optional, Sequence

import boto3
import pytest
from botocore.config import Config

from serving.load import UserList, finish_load, load_lists
from serving.table import RankedList, ensure_table

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # moto's dummies
# Far in the future: items of these tests never expire unless a test says so.
EXPIRES_AT = 4_000_000_000
NOW = 1_700_000_000


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterable[str]:
    """moto's HTTP server on 127.0.0.1 (a free port chosen by the OS); its URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def make_client(endpoint: str):
    """A DynamoDB client for the moto server; botocore's own retries kept short."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        config=Config(retries={"mode": "standard", "max_attempts": 2}, max_pool_connections=32),
        **CREDENTIALS,
    )


@pytest.fixture
def client(dynamodb_endpoint):
    return make_client(dynamodb_endpoint)


@pytest.fixture
def table(client) -> str:
    """A fresh serving table (created by ensure_table) for this test."""
    name = f"serving-{uuid.uuid4().hex[:12]}"
    ensure_table(client, name, wait_delay_s=1)
    return name


def lists_of(prefix: str, users: Sequence[str], k: int = 5, source: str = "model") -> List[UserList]:
    """One list per user whose item ids all start with ``prefix`` (to tell versions apart)."""
    return [
        UserList(
            user,
            RankedList.of(
                [f"{prefix}-{user}-{r}" for r in range(k)], [1.0 - r / 10 for r in range(k)], source
            ),
        )
        for user in users
    ]


def load_version(
    client,
    table: str,
    version: str,
    users: Sequence[str],
    *,
    prefix: Optional[str] = None,
    expires_at: int = EXPIRES_AT,
) -> None:
    """Load ``version`` completely: its users' lists, its popularity list, its loaded marker."""
    prefix = prefix or version
    counts = load_lists(client, table, version, lists_of(prefix, users), expires_at=expires_at, threads=2)
    popular = RankedList.of([f"{prefix}-pop-{r}" for r in range(5)], [50 - r for r in range(5)], "popularity")
    finish_load(
        client,
        table,
        version,
        popularity=popular,
        lists_written=counts.written,
        lists_expected=len(users),
        expires_at=expires_at,
    )
