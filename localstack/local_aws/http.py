"""Tiny JSON-over-HTTP probe for readiness checks (stdlib only: no dependency for a GET)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Optional

# Loopback servers only: never route these probes through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get_json(url: str, timeout_s: float = 2.0) -> Optional[Any]:
    """Decoded JSON body of a GET to ``url``, or None on any connection, HTTP or decoding error."""
    try:
        with _OPENER.open(url, timeout=timeout_s) as response:
            return json.loads(response.read().decode("utf-8"))
    except (OSError, urllib.error.URLError, ValueError):
        return None
