"""A fault-injecting HTTP proxy for AWS JSON-protocol APIs (EMR), in front of moto's HTTP server.

The DAG's boto3 clients talk real HTTP to it; it forwards every request to moto unchanged, except the
first calls of chosen actions (``X-Amz-Target: ElasticMapReduce.<Action>``), which it answers with a fault
instead: throttling, a 503, an access denial, or a connection reset with no response at all. Binds
127.0.0.1 on a free port; ``stop()`` shuts it down.
"""

from __future__ import annotations

import collections
import http.client
import json
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Deque, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

# Fault name -> (HTTP status, JSON error type) as AWS sends them; "reset" closes the socket instead.
FAULTS: Dict[str, Tuple[int, str, str]] = {
    "throttle": (400, "ThrottlingException", "Rate exceeded"),
    "unavailable": (503, "ServiceUnavailable", "Service is unavailable, try again later"),
    "internal": (500, "InternalServerError", "Internal error"),
    "denied": (400, "AccessDeniedException", "not authorized to perform this action on this resource"),
}
# Not copied from one hop to the next (http.server writes its own Server and Date).
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "proxy-connection",
    "upgrade",
    "server",
    "date",
}


class FaultProxy:
    """Forward to ``upstream`` (``http://127.0.0.1:<port>``), injecting queued faults per action."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.calls: collections.Counter = collections.Counter()  # action -> requests seen
        self.injected: List[Tuple[str, str]] = []  # (action, fault), in order
        self._queues: Dict[str, Deque[Tuple[str, Optional[Callable[[dict], bool]]]]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def fail(self, action: str, faults: List[str], when: Optional[Callable[[dict], bool]] = None) -> None:
        """Answer the next ``len(faults)`` calls of ``action`` (whose JSON body passes ``when``) with
        these faults, in order; later calls go through."""
        unknown = set(faults) - set(FAULTS) - {"reset"}
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}")
        with self._lock:
            self._queues.setdefault(action, collections.deque()).extend((fault, when) for fault in faults)

    def pending(self, action: str) -> int:
        with self._lock:
            return len(self._queues.get(action, ()))

    def _next_fault(self, action: str, body: bytes) -> Optional[str]:
        with self._lock:
            self.calls[action] += 1
            queue = self._queues.get(action)
            if not queue:
                return None
            fault, when = queue[0]
            if when is not None:
                try:
                    matches = when(json.loads(body or b"{}"))
                except ValueError:
                    matches = False
                if not matches:
                    return None
            queue.popleft()
            self.injected.append((action, fault))
            return fault

    def _handler_class(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects

            def log_message(self, format, *args):
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                target = self.headers.get("X-Amz-Target", "")
                action = target.rsplit(".", 1)[-1] if target else f"{self.command} {self.path}"
                fault = proxy._next_fault(action, body)
                if fault == "reset":
                    # RST instead of FIN: the client sees "connection reset by peer", no response.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault:
                    status, kind, message = FAULTS[fault]
                    self._reply(
                        status,
                        {"Content-Type": "application/x-amz-json-1.1"},
                        json.dumps({"__type": kind, "message": message}).encode(),
                    )
                    return
                self._forward(body)

            def _forward(self, body: bytes) -> None:
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    data = response.read()
                    headers = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP}
                    self._reply(response.status, headers, data)
                finally:
                    upstream.close()

            def _reply(self, status: int, headers: Dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        return Handler
