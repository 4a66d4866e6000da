"""Waiting for something another process does, with a deadline (tests only)."""

from __future__ import annotations

import time
from typing import Callable, Optional, TypeVar

import pytest

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], Optional[T]], timeout_s: float, interval_s: float = 1.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
