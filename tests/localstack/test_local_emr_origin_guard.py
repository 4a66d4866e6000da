"""The local EMR endpoint answers programs on this machine, never a web page: cross-site requests and
foreign Host names get 403 and run nothing, and no CORS header is ever sent.

The requests are what a browser page would send: a raw, unsigned JSON POST (the endpoint checks no
signature), so the test needs no SDK and sets the headers itself.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any, Callable, Dict, Optional
from urllib.parse import urlsplit

import pytest
from local_emr.origin_guard import is_loopback_origin, refusal
from stack_helpers import command_step

pytestmark = pytest.mark.localstack


def post(url: str, target: str, body: Dict[str, Any], headers: Optional[Dict[str, str]] = None):
    """One raw EMR JSON call; returns (status, headers, body text)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest("POST", "/", skip_host=True)
        sent = {
            "Host": f"{parts.hostname}:{parts.port}",
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"ElasticMapReduce.{target}",
            **(headers or {}),
        }
        payload = json.dumps(body).encode()
        for name, value in {**sent, "Content-Length": str(len(payload))}.items():
            connection.putheader(name, value)
        connection.endheaders(payload)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        connection.close()


def test_a_cross_site_request_runs_nothing_and_the_same_request_without_origin_works(
    local_stack: Any, make_cluster: Callable[..., str], steps_of: Callable[[str], Dict[str, Any]], tmp_path
) -> None:
    cluster_id = make_cluster()
    marker = tmp_path / "ran"
    step = command_step("page-payload", ["bash", "-c", f"touch '{marker}'"])
    request = {"JobFlowId": cluster_id, "Steps": [step]}

    for headers in (
        {"Origin": "https://attacker.example"},
        {"Origin": "null"},  # a sandboxed iframe or a file:// page
        {"Sec-Fetch-Site": "cross-site"},
        {"Host": "rebound.attacker.example:4580"},  # DNS rebinding: the page's own name for 127.0.0.1
    ):
        status, response_headers, text = post(local_stack.emr_url, "AddJobFlowSteps", request, headers)
        assert status == 403 and text.startswith("refused:"), (headers, status, text)
        assert not [name for name in response_headers if name.lower().startswith("access-control-")]
    time.sleep(1.0)  # the scheduler would have started a step by now
    assert steps_of(cluster_id) == {} and not marker.exists()

    status, response_headers, text = post(
        local_stack.emr_url, "AddJobFlowSteps", request, {"Origin": "http://127.0.0.1:8080"}
    )  # a loopback origin (the local Airflow UI's) is this machine's
    assert status == 200, text
    assert not [name for name in response_headers if name.lower().startswith("access-control-")]
    status, _, text = post(local_stack.emr_url, "ListSteps", {"ClusterId": cluster_id})  # no Origin: an SDK
    assert status == 200 and "page-payload" in text


def test_preflight_gets_no_cors_grant(local_stack: Any) -> None:
    parts = urlsplit(local_stack.emr_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(
            "OPTIONS",
            "/",
            headers={"Origin": "https://attacker.example", "Access-Control-Request-Method": "POST"},
        )
        response = connection.getresponse()
        response.read()
        assert response.status == 403
        assert not [name for name, _ in response.getheaders() if name.lower().startswith("access-control-")]
    finally:
        connection.close()


@pytest.mark.unit
@pytest.mark.parametrize(
    "host, origin, fetch_site, refused",
    [
        ("127.0.0.1:4580", None, None, False),
        ("localhost:4580", None, "same-origin", False),
        ("[::1]:4580", "http://[::1]:3000", "cross-site", False),  # a loopback page: this machine's
        ("127.0.0.1:4580", "http://localhost:8080", None, False),
        ("127.0.0.1:4580", "https://evil.example", None, True),
        ("127.0.0.1:4580", "null", None, True),
        ("127.0.0.1:4580", "http://127.0.0.1.evil.example", None, True),
        ("127.0.0.1:4580", None, "cross-site", True),
        ("evil.example:4580", None, None, True),
        ("127.0.0.1:notaport", None, None, True),
        (None, None, None, True),
    ],
)
def test_refusal_rules(host, origin, fetch_site, refused) -> None:
    assert (refusal(host, origin, fetch_site) is not None) is refused


@pytest.mark.unit
def test_loopback_origins() -> None:
    assert is_loopback_origin("https://localhost") and not is_loopback_origin("ftp://127.0.0.1")


@pytest.mark.parametrize(
    "origin", ["https://app.localstack.cloud", "http://127.0.0.1:4566", "https://evil.example"]
)
def test_localstack_answers_no_web_page(local_stack: Any, resources: Dict[str, Any], origin: str) -> None:
    # LocalStack's default allow-list (its web app, its own host) is emptied: S3 and SNS alike refuse a
    # request carrying any Origin, and send no CORS header; the same calls without one work.
    parts = urlsplit(local_stack.localstack_url)
    bucket = resources["buckets"]["artifacts"]
    calls = [
        ("PUT", f"/{bucket}/tests/origin-guard.txt", b"written by a web page", {}),
        ("POST", "/", b"Action=ListTopics", {"Content-Type": "application/x-www-form-urlencoded"}),
    ]
    for method, path, body, headers in calls:
        for extra, allowed in (({"Origin": origin}, False), ({}, True)):
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            try:
                connection.request(method, path, body=body, headers={**headers, **extra})
                response = connection.getresponse()
                response.read()
            finally:
                connection.close()
            assert (response.status < 400) is allowed, (method, path, extra, response.status)
            assert not [
                name for name, _ in response.getheaders() if name.lower().startswith("access-control-")
            ]
