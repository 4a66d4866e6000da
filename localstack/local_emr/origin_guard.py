"""Which HTTP requests the local EMR endpoint answers: only a program on this machine's, never a web page's.

The endpoint runs whatever a step's arguments say as the developer (``bash -c …`` included), so a web
page open in a browser must not be able to reach it:

- a request with an ``Origin`` that is not a loopback origin (a page's cross-site POST carries one), or
  with ``Sec-Fetch-Site: cross-site`` and no loopback ``Origin``, is refused;
- a request whose ``Host`` is not a loopback name is refused: a DNS-rebinding page reaches 127.0.0.1
  under its own host name;
- no ``Access-Control-Allow-*`` header is ever sent (moto's app turns CORS on unless
  ``MOTO_DISABLE_GLOBAL_CORS`` is set, which the server does), so no page can read an answer.

SDKs and the AWS CLI send neither ``Origin`` nor ``Sec-Fetch-*`` and use the endpoint URL's host.
:func:`refusal` is pure; :func:`install` wires it into a Flask app (the local EMR and DynamoDB endpoints)
before any other request handler.
"""

from __future__ import annotations

from typing import Optional
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _hostname(authority: str) -> Optional[str]:
    """The host of a ``Host`` header value (``name``, ``name:port``, ``[v6]:port``), lower-cased."""
    try:
        parts = urlsplit(f"//{authority}")
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
        return parts.hostname
    except ValueError:  # an invalid port or bracket
        return None


def is_loopback_origin(origin: str) -> bool:
    """True for ``http(s)://`` origins on a loopback host (any port); ``null`` and others are not."""
    try:
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.hostname in LOOPBACK_HOSTS
    except ValueError:
        return False


def refusal(host: Optional[str], origin: Optional[str], fetch_site: Optional[str]) -> Optional[str]:
    """Why a request with these headers is refused (the 403's text), or None if it is answered."""
    if not host or _hostname(host) not in LOOPBACK_HOSTS:
        return f"refused: Host {host!r} is not a loopback name (this endpoint serves this machine only)"
    if origin is not None:
        if not is_loopback_origin(origin):
            return f"refused: cross-origin request from {origin!r} (web pages may not drive this endpoint)"
        return None
    if (fetch_site or "").lower() == "cross-site":
        return "refused: cross-site request (Sec-Fetch-Site: cross-site)"
    return None


def install(app, log) -> None:
    """Refuse (403, plain text, logged) every request :func:`refusal` refuses, before anything of the
    app's own runs: the guard is the first of ``app``'s before-request functions."""
    from flask import request

    def guard():
        reason = refusal(
            request.headers.get("Host"), request.headers.get("Origin"), request.headers.get("Sec-Fetch-Site")
        )
        if reason:
            log.warning("%s %s from %s: %s", request.method, request.path, request.remote_addr, reason)
            return reason + "\n", 403, {"Content-Type": "text/plain; charset=utf-8"}
        return None

    app.before_request_funcs.setdefault(None, []).insert(0, guard)
