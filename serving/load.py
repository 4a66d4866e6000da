"""Bulk-load one version's lists, then mark the version loaded.

:func:`load_lists` is what one Spark partition calls (spark_jobs/load_serving.py): an iterator of
:class:`UserList` in, :class:`LoadCounts` out. It encodes each list (serving.table), writes them in
BatchWriteItem requests of 25 (the API's maximum), at most ``threads`` requests at a time from a small
thread pool, and sends back whatever DynamoDB returns as UnprocessedItems (or refuses with a throttling
error) after an exponential backoff with full jitter: ``delay = rand() * min(max_delay, base * 2**(n-1))``
before the n-th resend. A batch still unprocessed after ``max_attempts`` requests stops the load with a
:class:`LoadError` naming how many items were left.

Reconciliation: a partition's ``written`` (items DynamoDB acknowledged) must equal its ``lists``; the
driver sums the partitions' counts and :func:`finish_load` writes the version's popularity list and its
loaded marker only if the sum equals the lists it expected, in one transaction that also checks the
version is not live. The marker is what serving.pointer requires before it names a version.

Every item carries the TTL attribute ``expires_at`` (epoch seconds), passed in by the caller (the job
computes now + ttl_days * 86400 once), so nothing here reads the clock except the backoff's sleep.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

from botocore.exceptions import ClientError

from serving.pointer import LiveVersionError, assert_not_live
from serving.table import (
    PK,
    POINTER_KEY,
    Loaded,
    RankedList,
    check_version,
    encode_list,
    encode_loaded,
    key,
    popularity_key,
    user_key,
    write_units,
)

BATCH_SIZE = 25  # BatchWriteItem's limit of put requests per call
MAX_THREADS = 16  # per partition: Spark already runs partitions in parallel
# Errors that refuse a whole request for capacity or a passing fault: the batch is resent, not failed.
RETRYABLE = (
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
)


class LoadError(RuntimeError):
    """The load gave up: ``unprocessed`` items still refused after the last attempt, ``written`` items
    acknowledged, ``not_written`` lists of the input not in the table (unprocessed + never sent)."""

    def __init__(self, message: str, *, unprocessed: int, written: int, not_written: int):
        super().__init__(message)
        self.unprocessed = unprocessed
        self.written = written
        self.not_written = not_written


class ReconciliationError(RuntimeError):
    """Items written differ from lists given: the version is not marked loaded."""


@dataclass(frozen=True)
class UserList:
    """One user's list to load."""

    user_id: str
    ranked: RankedList


@dataclass(frozen=True)
class LoadCounts:
    """What a load did. ``lists`` given, ``written`` acknowledged by DynamoDB, ``requests``
    BatchWriteItem calls, ``resent`` items sent again after coming back unprocessed, ``throttled``
    calls refused whole by a retryable error, ``write_units`` the items' standard write units
    (ceil(size / 1 KB) each)."""

    lists: int = 0
    written: int = 0
    requests: int = 0
    resent: int = 0
    throttled: int = 0
    write_units: int = 0

    def __add__(self, other: LoadCounts) -> LoadCounts:
        return LoadCounts(*(a + b for a, b in zip(self._values(), other._values())))

    def _values(self) -> Tuple[int, ...]:
        return tuple(getattr(self, name) for name in self.__dataclass_fields__)

    def as_dict(self) -> Dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, counts: Dict[str, int]) -> LoadCounts:
        return cls(**{name: int(counts.get(name, 0)) for name in cls.__dataclass_fields__})


def user_list(
    user_id: Any, ranks: Sequence[int], item_ids: Sequence[Any], scores: Sequence[float], source: str
) -> UserList:
    """A :class:`UserList` from parallel sequences sorted by rank; ValueError unless ranks are 1..n."""
    if list(ranks) != list(range(1, len(ranks) + 1)):
        raise ValueError(f"user {user_id}: ranks are not 1..{len(ranks)} in order: {list(ranks)[:10]}")
    return UserList(str(user_id), RankedList.of(item_ids, scores, source))


def backoff_delay(attempt: int, base_s: float, max_s: float, rand: Callable[[], float]) -> float:
    """Seconds to wait before resend number ``attempt`` (1, 2, ...): full jitter over an exponential
    cap, so throttled writers spread out instead of retrying in step."""
    return rand() * min(max_s, base_s * (2 ** (attempt - 1)))


@dataclass
class _BatchResult:
    written: int = 0
    requests: int = 0
    resent: int = 0
    throttled: int = 0


class _BatchGaveUp(Exception):
    def __init__(self, unprocessed: int, result: _BatchResult, detail: str):
        super().__init__(detail)
        self.unprocessed = unprocessed
        self.result = result


def write_batch(
    client,
    table: str,
    requests: List[Dict[str, Any]],
    *,
    max_attempts: int,
    base_delay_s: float,
    max_delay_s: float,
    sleep: Callable[[float], None],
    rand: Callable[[], float],
) -> _BatchResult:
    """Write up to 25 PutRequests, resending the unprocessed ones; _BatchGaveUp after ``max_attempts``."""
    result = _BatchResult()
    pending = requests
    last = ""
    for attempt in range(1, max_attempts + 1):
        result.requests += 1
        try:
            response = client.batch_write_item(RequestItems={table: pending})
            unprocessed = response.get("UnprocessedItems", {}).get(table, [])
            last = "returned as UnprocessedItems"
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code not in RETRYABLE:
                raise
            result.throttled += 1
            unprocessed = pending
            last = f"refused with {code}"
        result.written += len(pending) - len(unprocessed)
        if not unprocessed:
            return result
        if attempt == max_attempts:
            raise _BatchGaveUp(len(unprocessed), result, last)
        sleep(backoff_delay(attempt, base_delay_s, max_delay_s, rand))
        result.resent += len(unprocessed)
        pending = unprocessed
    raise AssertionError("unreachable")  # pragma: no cover


def load_lists(
    client,
    table: str,
    version: str,
    lists: Iterable[UserList],
    *,
    expires_at: int,
    max_items: Optional[int] = None,
    threads: int = 4,
    max_attempts: int = 10,
    base_delay_s: float = 0.1,
    max_delay_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
    check_live: bool = True,
) -> LoadCounts:
    """Write ``lists`` (each user once) as ``<version>#<user_id>`` items; returns the counts.

    ``expires_at``: epoch seconds for every item's TTL. ``max_items``: keep each list's first n.
    ``threads`` (1..16): BatchWriteItem requests in flight. ``max_attempts``: requests per batch before
    giving up (LoadError). ``sleep``/``rand`` are injectable for tests. LiveVersionError if the pointer
    names ``version`` (``check_live``); ValueError on a repeated user or a malformed list;
    ReconciliationError if items written differ from lists given.
    """
    check_version(version)
    if not 1 <= threads <= MAX_THREADS:
        raise ValueError(f"threads is 1..{MAX_THREADS}, got {threads}")
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    if max_items is not None and max_items < 1:
        raise ValueError(f"max_items must be >= 1 (or None: whole lists), got {max_items}")
    if check_live:
        assert_not_live(client, table, version)
    given = 0
    units = 0
    seen: Set[str] = set()
    source = iter(lists)

    def batches() -> Iterator[List[Dict[str, Any]]]:
        nonlocal given, units
        batch: List[Dict[str, Any]] = []
        for entry in source:
            if entry.user_id in seen:  # a batch may not repeat a key, and the count would not reconcile
                raise ValueError(f"user {entry.user_id!r} appears twice in the lists of {version}")
            seen.add(entry.user_id)
            ranked = entry.ranked.head(max_items) if max_items else entry.ranked
            item = encode_list(user_key(version, entry.user_id), ranked, expires_at)
            units += write_units(item)
            given += 1
            batch.append({"PutRequest": {"Item": item}})
            if len(batch) == BATCH_SIZE:
                yield batch
                batch = []
        if batch:
            yield batch

    totals = _BatchResult()
    failure: Optional[BaseException] = None
    unprocessed = 0
    in_flight: Dict[Future, int] = {}

    def collect(done: Iterable[Future]) -> None:
        nonlocal failure, unprocessed
        for future in done:
            in_flight.pop(future)
            try:
                result = future.result()
            except _BatchGaveUp as gave_up:
                result = gave_up.result
                unprocessed += gave_up.unprocessed
                failure = failure or gave_up
            except BaseException as exc:  # not retryable (validation, access): stop, report it as is
                failure = failure or exc
                continue
            for name in ("written", "requests", "resent", "throttled"):
                setattr(totals, name, getattr(totals, name) + getattr(result, name))

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="serving-load") as pool:
        try:
            for batch in batches():
                while len(in_flight) >= threads:  # bounded: the iterator is never read far ahead
                    done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                    collect(done)
                if failure is not None:
                    break  # this batch is never sent: its lists count as not written
                future = pool.submit(
                    write_batch,
                    client,
                    table,
                    batch,
                    max_attempts=max_attempts,
                    base_delay_s=base_delay_s,
                    max_delay_s=max_delay_s,
                    sleep=sleep,
                    rand=rand,
                )
                in_flight[future] = len(batch)
        finally:
            # Every request is finished before this returns or raises: no thread writes after it.
            done, _ = wait(list(in_flight))
            collect(done)
    if failure is not None:
        if not isinstance(failure, _BatchGaveUp):
            raise failure
        total = given + sum(1 for _ in source)  # the rest of the input was never read
        not_written = total - totals.written
        raise LoadError(
            f"gave up loading {version} into {table}: {unprocessed} items still {failure} after "
            f"{max_attempts} attempts per batch; {totals.written} of {total} lists written, "
            f"{not_written} not (rerun the load: puts are idempotent)",
            unprocessed=unprocessed,
            written=totals.written,
            not_written=not_written,
        )
    if totals.written != given:
        raise ReconciliationError(f"{given} lists given but {totals.written} items written for {version}")
    return LoadCounts(
        lists=given,
        written=totals.written,
        requests=totals.requests,
        resent=totals.resent,
        throttled=totals.throttled,
        write_units=units,
    )


def finish_load(
    client,
    table: str,
    version: str,
    *,
    popularity: RankedList,
    lists_written: int,
    lists_expected: int,
    expires_at: int,
    loaded_at: Optional[datetime] = None,
) -> Loaded:
    """Write ``version``'s popularity list and its loaded marker, after reconciling the load.

    ReconciliationError unless ``lists_written == lists_expected`` (>= 1); ValueError for an empty
    popularity list; LiveVersionError if the pointer names ``version`` (checked in the same
    transaction). Rewriting the marker of a reloaded version is allowed. Returns the marker written.
    """
    ds = check_version(version)
    if lists_expected < 1 or lists_written != lists_expected:
        raise ReconciliationError(
            f"{version}: {lists_written} lists written, {lists_expected} expected: not marked loaded"
        )
    if not popularity.item_ids:
        raise ValueError(f"{version}: an empty popularity list would leave unknown users nothing")
    at = loaded_at or datetime.now(timezone.utc)
    at = at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)
    marker = Loaded(
        version=version,
        ds=ds,
        lists=lists_written,
        popularity_items=len(popularity.item_ids),
        loaded_at=at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        expires_at=expires_at,
    )
    popular = RankedList(popularity.item_ids, popularity.scores, "popularity")
    try:
        client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": encode_list(popularity_key(version), popular, expires_at),
                    }
                },
                {"Put": {"TableName": table, "Item": encode_loaded(marker)}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": key(POINTER_KEY),
                        "ConditionExpression": f"attribute_not_exists({PK}) OR version <> :v",
                        "ExpressionAttributeValues": {":v": {"S": version}},
                    }
                },
            ]
        )
    except ClientError as err:
        reasons = [str(r.get("Code")) for r in err.response.get("CancellationReasons") or []]
        if len(reasons) == 3 and reasons[2] == "ConditionalCheckFailed":
            raise LiveVersionError(f"{version} is the live version of {table}: not marked again") from None
        raise
    return marker
