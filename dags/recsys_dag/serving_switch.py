"""Promotion's last move: the serving table's pointer follows ``latest.json`` to the promoted version.

The lists are already in the table: the nightly's ``load_serving`` step wrote them into the run's
version (``registry.version_id``), reconciled the count and wrote the version's loaded marker, all before
the cluster ended. ``promote_model`` calls :func:`switch_to` only after the registry version is whole and
``latest.json`` names it (and :func:`check_ready` before latest.json moves), so the table never serves a
version the registry does not have, and production is never a version the table cannot serve. The switch
itself (``serving.pointer.switch``) is a conditional write: forward only in logical date, only to a loaded,
unexpired version, no lost update. A held model's version is loaded but never switched to; its items
expire by TTL.

The ``serving`` package comes with this project (``pip install .`` in the Airflow environment; the
local stack puts the checkout on Airflow's path).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Mapping, Optional

from serving import pointer


def load_problem(summary: Optional[Mapping[str, Any]], version: str) -> Optional[str]:
    """Why the run's load summary (``runs/dt=<ds>/serving_load.json``) does not show ``version``'s lists
    all written, or None when it does."""
    if not isinstance(summary, Mapping):
        return "load_serving wrote no summary: the lists may not be in the serving table"
    if summary.get("version") != version:
        return f"the serving load was of version {summary.get('version')!r}, not {version!r}"
    users, written = summary.get("users"), summary.get("lists_written")
    if not isinstance(users, int) or users < 1 or written != users:
        return f"the serving load did not reconcile: {written!r} lists written for {users!r} users"
    return None


def check_ready(
    client,
    table: str,
    version: str,
    summary: Optional[Mapping[str, Any]],
    clock: Callable[[], float] = time.time,
) -> None:
    """ValueError unless ``version``'s load reconciled (:func:`load_problem`) and its loaded marker is in
    ``table``, unexpired: promote_model checks this before latest.json moves, so a version the table
    cannot serve is never made production."""
    problem = load_problem(summary, version)
    if problem is None:
        marker = pointer.read_loaded(client, table, version)
        if marker is None:
            problem = "the serving table has no loaded marker for it"
        elif marker.expires_at <= int(clock()):
            problem = f"its lists in the serving table expired at {marker.expires_at} (epoch seconds)"
    if problem:
        raise ValueError(f"{version} cannot go live: {problem}")


def switch_to(
    client,
    table: str,
    version: str,
    summary: Optional[Mapping[str, Any]],
    *,
    by: str,
    reason: str,
    clock: Callable[[], float] = time.time,
) -> Dict[str, Any]:
    """Point ``table`` at ``version``; the result for promote_model's return value and the summary line:
    ``{"table", "moved", "live", "previous", "note"}``.

    ValueError when the load summary does not reconcile (:func:`load_problem`); ``serving.pointer``'s
    NotLoaded or PointerConflict when the table refuses. Not moved (no error) when the pointer already
    names ``version`` (a retried promotion) or a later date's version.
    """
    problem = load_problem(summary, version)
    if problem:
        raise ValueError(f"{version} not switched live in {table}: {problem}")
    result = pointer.switch(client, table, version, now_epoch=int(clock()), by=by, reason=reason)
    return {
        "table": table,
        "moved": result.moved,
        "live": result.pointer.version if result.pointer else None,
        "previous": result.previous.version if result.previous else None,
        "note": result.reason,
    }
