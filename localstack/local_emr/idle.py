"""Idle auto-termination (EMR's ``AutoTerminationPolicy``), by an injected monotonic clock. Pure.

EMR terminates a cluster that has an auto-termination policy once it has been idle for ``IdleTimeout``
seconds (60 to 604800). Here a cluster is idle when none of its steps is PENDING, RUNNING or
CANCEL_PENDING: the stand-in has no YARN, notebooks or HDFS whose activity EMR also counts.
Idleness is counted from when the cluster became idle or when the policy was attached, whichever is
later, so attaching a policy to a cluster that has long been idle does not end it on the spot.
"""

from __future__ import annotations

from typing import Any, Optional

MIN_IDLE_TIMEOUT_S = 60
MAX_IDLE_TIMEOUT_S = 604_800  # seven days
BUSY_STEP_STATES = frozenset({"PENDING", "RUNNING", "CANCEL_PENDING"})


def validate_idle_timeout(value: Any) -> int:
    """``IdleTimeout`` as an int of seconds; ValueError (EMR's ValidationException) if out of range."""
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"Invalid AutoTerminationPolicy: IdleTimeout must be a number; got {value!r}."
        ) from None
    if not MIN_IDLE_TIMEOUT_S <= seconds <= MAX_IDLE_TIMEOUT_S:
        raise ValueError(
            "Invalid AutoTerminationPolicy: IdleTimeout must be between "
            f"{MIN_IDLE_TIMEOUT_S} and {MAX_IDLE_TIMEOUT_S} seconds; got {seconds}."
        )
    return seconds


class IdleClock:
    """How long one cluster has been idle, for its auto-termination policy (times in clock seconds)."""

    def __init__(self) -> None:
        self.timeout_s: Optional[int] = None
        self._idle_since: Optional[float] = None
        self._policy_since = 0.0

    def set_policy(self, timeout_s: Optional[int], now: float) -> None:
        """Attach (or with None remove) a policy of ``timeout_s`` seconds at ``now``."""
        self.timeout_s = timeout_s
        self._policy_since = now

    def expired(self, busy: bool, now: float) -> bool:
        """Record whether the cluster is ``busy`` at ``now``; True once it has been idle long enough."""
        if busy:
            self._idle_since = None
            return False
        if self._idle_since is None:
            self._idle_since = now
        if self.timeout_s is None:
            return False
        return now - max(self._idle_since, self._policy_since) >= self.timeout_s


def is_busy(steps: Any) -> bool:
    """True if any of ``steps`` (moto Step objects) is still to run or running."""
    return any(step.state in BUSY_STEP_STATES for step in steps)
