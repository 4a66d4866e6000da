"""The pointer item: which version the application reads, moved by compare-and-set.

Items (serving.table's keys)::

    pk = "@pointer"             version, ds, seq, action ("switch" | "rollback"), at (ISO UTC), by,
                                reason, previous (the version it replaced; absent for the first),
                                lists (the version's loaded list count), move_id
    pk = "@pointer#<seq>"       the same attributes, one record per move (the audit trail)

The pointer and its history records carry no TTL attribute: they never expire.

Rules, mirroring the registry's ``latest.json`` (dags/recsys_dag/registry.py):

- Order: a version's logical date ``ds`` (the ``YYYY-MM-DD`` its id starts with). The token after it
  is an EMR cluster id, which does not sort in time, so the order within one date is not defined by
  ids: like the registry, a switch to another version of the *same* date (a rerun after a fix) moves.
- :func:`switch` moves only forward: not moved when the live version's ds is later. The write carries
  ``ds <= :ds`` in its ConditionExpression, so DynamoDB itself refuses a backward move.
- :func:`rollback` may move to an earlier date; it needs who (``by``) and why (``reason``). It does not
  pin: the next switch of a later date moves forward again.
- Both move only to a *loaded* version: its marker ``<version>@loaded`` (written by serving.load after
  reconciling every list) must exist and not have expired, checked in the same transaction as the
  write (TransactWriteItems ConditionCheck), so the pointer never names a version with missing lists.
- Compare-and-set: the write is conditional on the ``seq`` read (or on there being no pointer), so two
  writers never silently undo each other: the loser's transaction is cancelled, it re-reads and
  decides again, at most ``max_attempts`` times in all, then :class:`PointerConflict`. The history
  record is in the same transaction, so every move has exactly one record.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from botocore.exceptions import ClientError

from serving.table import (
    PK,
    POINTER_KEY,
    TTL_ATTRIBUTE,
    Loaded,
    check_version,
    decode_loaded,
    history_key,
    key,
    loaded_key,
)

ACTIONS = ("switch", "rollback")


class NotLoaded(ValueError):
    """The version has no (unexpired) loaded marker: its lists are not all in the table."""


class LiveVersionError(ValueError):
    """The version is the live one: its lists are not rewritten while they are served."""


class PointerConflict(RuntimeError):
    """The pointer kept changing under us: every conditional write met a newer pointer."""


@dataclass(frozen=True)
class Pointer:
    """The pointer item as read."""

    version: str
    ds: str
    seq: int
    action: str
    at: str
    by: str
    reason: str
    previous: Optional[str]
    lists: Optional[int]
    move_id: str


@dataclass(frozen=True)
class MoveResult:
    """What a move did: ``pointer`` is the pointer now (as written or as found), ``previous`` the one
    replaced (moved) or kept (not moved); ``conflicts`` counts cancelled conditional writes."""

    moved: bool
    reason: str
    pointer: Optional[Pointer]
    previous: Optional[Pointer]
    conflicts: int


def _iso(at: datetime) -> str:
    # A naive datetime is taken as UTC, never as this machine's local time (as the registry does).
    at = at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _decode_pointer(item: Dict[str, Dict[str, Any]]) -> Pointer:
    return Pointer(
        version=item["version"]["S"],
        ds=item["ds"]["S"],
        seq=int(item["seq"]["N"]),
        action=item["action"]["S"],
        at=item["at"]["S"],
        by=item["by"]["S"],
        reason=item["reason"]["S"],
        previous=item["previous"]["S"] if "previous" in item else None,
        lists=int(item["lists"]["N"]) if "lists" in item else None,
        move_id=item["move_id"]["S"],
    )


def _encode_pointer(pk: str, pointer: Pointer) -> Dict[str, Dict[str, Any]]:
    item: Dict[str, Dict[str, Any]] = {
        PK: {"S": pk},
        "version": {"S": pointer.version},
        "ds": {"S": pointer.ds},
        "seq": {"N": str(pointer.seq)},
        "action": {"S": pointer.action},
        "at": {"S": pointer.at},
        "by": {"S": pointer.by},
        "reason": {"S": pointer.reason},
        "move_id": {"S": pointer.move_id},
    }
    if pointer.previous is not None:
        item["previous"] = {"S": pointer.previous}
    if pointer.lists is not None:
        item["lists"] = {"N": str(pointer.lists)}
    return item


def read_pointer(client, table: str, *, consistent: bool = True) -> Optional[Pointer]:
    """The pointer, or None when no version was ever switched live."""
    item = client.get_item(TableName=table, Key=key(POINTER_KEY), ConsistentRead=consistent).get("Item")
    return _decode_pointer(item) if item else None


def read_loaded(client, table: str, version: str, *, consistent: bool = True) -> Optional[Loaded]:
    """``version``'s loaded marker, or None if it has none."""
    item = client.get_item(TableName=table, Key=key(loaded_key(version)), ConsistentRead=consistent).get(
        "Item"
    )
    return decode_loaded(item) if item else None


def assert_not_live(client, table: str, version: str) -> None:
    """LiveVersionError if the pointer names ``version``."""
    current = read_pointer(client, table)
    if current is not None and current.version == version:
        raise LiveVersionError(
            f"{version} is the live version of {table} (pointer seq {current.seq}): its lists are not "
            "rewritten while served; load a new version and switch to it"
        )


def _cancellation_codes(err: ClientError) -> List[str]:
    return [str(r.get("Code") or "None") for r in err.response.get("CancellationReasons") or []]


def _move(
    client,
    table: str,
    version: str,
    *,
    action: str,
    forward_only: bool,
    now_epoch: int,
    at: Optional[datetime],
    by: str,
    reason: str,
    max_attempts: int,
) -> MoveResult:
    """The compare-and-set loop shared by switch and rollback (see the module docstring)."""
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    ds = check_version(version)
    move_id = uuid.uuid4().hex
    conflicts = 0
    based_on: Optional[Pointer] = None
    for _ in range(max_attempts):
        current = read_pointer(client, table)
        if current is not None and current.move_id == move_id:
            # Our transaction landed although its response said otherwise (a retried request).
            return MoveResult(True, f"pointer moved to {version}", current, based_on, conflicts)
        if current is not None and current.version == version:
            return MoveResult(False, f"the pointer already names {version}", current, current, conflicts)
        if forward_only and current is not None and current.ds > ds:
            return MoveResult(
                False,
                f"live is {current.version} (ds {current.ds}), newer than {ds}: pointer left alone",
                current,
                current,
                conflicts,
            )
        marker = read_loaded(client, table, version)
        if marker is None or marker.expires_at <= now_epoch:
            raise NotLoaded(
                f"{version} is not loaded in {table}"
                + (f" (its marker expired at {marker.expires_at})" if marker else " (no loaded marker)")
                + ": run the load first"
            )
        written = Pointer(
            version=version,
            ds=ds,
            seq=(current.seq if current else 0) + 1,
            action=action,
            at=_iso(at or datetime.now(timezone.utc)),
            by=by,
            reason=reason,
            previous=current.version if current else None,
            lists=marker.lists,
            move_id=move_id,
        )
        values: Dict[str, Dict[str, str]] = {}
        if current is None:
            condition = f"attribute_not_exists({PK})"
        else:
            condition = "seq = :seq"
            values[":seq"] = {"N": str(current.seq)}
            if forward_only:
                condition += " AND ds <= :ds"
                values[":ds"] = {"S": ds}
        put: Dict[str, Any] = {
            "TableName": table,
            "Item": _encode_pointer(POINTER_KEY, written),
            "ConditionExpression": condition,
        }
        if values:
            put["ExpressionAttributeValues"] = values
        try:
            client.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": table,
                            "Key": key(loaded_key(version)),
                            "ConditionExpression": f"attribute_exists({PK}) AND {TTL_ATTRIBUTE} > :now",
                            "ExpressionAttributeValues": {":now": {"N": str(int(now_epoch))}},
                        }
                    },
                    {"Put": put},
                    {
                        "Put": {
                            "TableName": table,
                            "Item": _encode_pointer(history_key(written.seq), written),
                            "ConditionExpression": f"attribute_not_exists({PK})",
                        }
                    },
                ]
            )
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            reasons = _cancellation_codes(err) if code == "TransactionCanceledException" else []
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise NotLoaded(f"{version}'s loaded marker expired or vanished while switching") from None
            if code in ("TransactionCanceledException", "TransactionConflictException"):
                conflicts += 1  # another writer moved the pointer (or is moving it): read and decide again
                based_on = current
                continue
            raise
        return MoveResult(
            True,
            f"pointer moved to {version} (was {current.version if current else 'absent'})",
            written,
            current,
            conflicts,
        )
    now_there = read_pointer(client, table)
    raise PointerConflict(
        f"could not move the pointer of {table} to {version}: it changed under us {conflicts} times in "
        f"{max_attempts} attempts (now {now_there.version if now_there else 'absent'})"
    )


def switch(
    client,
    table: str,
    version: str,
    *,
    now_epoch: int,
    by: str = "promotion",
    reason: str = "promote",
    at: Optional[datetime] = None,
    max_attempts: int = 3,
) -> MoveResult:
    """Make ``version`` live, only forward in logical date (see the module docstring).

    ``now_epoch`` (epoch seconds) decides whether the version's loaded marker has expired; ``at`` is the
    time recorded (default: now, UTC). Not moved (``moved`` False) when the live version is later or is
    ``version`` already. NotLoaded if the version is not loaded; PointerConflict after ``max_attempts``
    cancelled writes.
    """
    return _move(
        client,
        table,
        version,
        action="switch",
        forward_only=True,
        now_epoch=now_epoch,
        at=at,
        by=by,
        reason=reason,
        max_attempts=max_attempts,
    )


def rollback(
    client,
    table: str,
    version: str,
    *,
    by: str,
    reason: str,
    now_epoch: int,
    at: Optional[datetime] = None,
    max_attempts: int = 3,
) -> MoveResult:
    """Point back at an earlier (or any) loaded ``version``, backwards in logical date if need be.

    ValueError if ``by`` or ``reason`` is empty or the pointer names ``version`` already; NotLoaded if
    the version is not loaded (never loaded, or its lists expired). The move is recorded with action
    "rollback", who and why, in the pointer and its history record.
    """
    if not by or not by.strip() or not reason or not reason.strip():
        raise ValueError("a rollback needs who (by) and why (reason)")
    check_version(version)
    current = read_pointer(client, table)
    if current is not None and current.version == version:
        raise ValueError(f"the pointer already names {version}: nothing to roll back")
    return _move(
        client,
        table,
        version,
        action="rollback",
        forward_only=False,
        now_epoch=now_epoch,
        at=at,
        by=by,
        reason=reason,
        max_attempts=max_attempts,
    )


def history(client, table: str, limit: int = 10) -> List[Pointer]:
    """The last ``limit`` (<= 100) pointer moves, newest first."""
    if not 1 <= limit <= 100:  # BatchGetItem's limit per request
        raise ValueError(f"limit is 1..100, got {limit}")
    current = read_pointer(client, table)
    if current is None:
        return []
    keys = [key(history_key(seq)) for seq in range(current.seq, max(0, current.seq - limit), -1)]
    found: List[Pointer] = []
    request: Dict[str, Any] = {table: {"Keys": keys, "ConsistentRead": True}}
    for _ in range(5):
        response = client.batch_get_item(RequestItems=request)
        found.extend(_decode_pointer(item) for item in response.get("Responses", {}).get(table, []))
        request = response.get("UnprocessedKeys") or {}
        if not request:
            break
    return sorted(found, key=lambda p: p.seq, reverse=True)
