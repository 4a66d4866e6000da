"""serving.load against moto's DynamoDB server: batches, throttling retries, giving up, reconciliation."""

from __future__ import annotations

import threading

import pytest
from botocore.exceptions import ClientError

from serving.load import LoadError, ReconciliationError, UserList, finish_load, load_lists
from serving.pointer import LiveVersionError, read_loaded, switch
from serving.table import TTL_ATTRIBUTE, RankedList, decode_list, key, popularity_key, user_key
from tests.serving.conftest import EXPIRES_AT, NOW, lists_of, load_version

pytestmark = pytest.mark.unit

V1 = "2024-01-30_j-AAA"


class Throttling:
    """Wraps a client: its first ``times`` BatchWriteItem calls write only their first ``keep`` items
    and return the rest as UnprocessedItems, or (``error``) raise a throttling error; items whose key
    is in ``stuck`` always come back unprocessed. Everything else goes to the real client."""

    def __init__(self, client, times: int, keep: int = 1, error: bool = False, stuck=()):
        self._client = client
        self.times, self.keep, self.error, self.stuck = times, keep, error, set(stuck)
        self.calls = 0
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self._client, name)

    def batch_write_item(self, RequestItems):
        with self._lock:
            self.calls += 1
            refuse = self.calls <= self.times
        if refuse and self.error:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                "BatchWriteItem",
            )
        (table, requests), *_ = RequestItems.items()
        kept, rest = (requests[: self.keep], requests[self.keep :]) if refuse else (requests, [])
        rest += [r for r in kept if r["PutRequest"]["Item"]["pk"]["S"] in self.stuck]
        kept = [r for r in kept if r["PutRequest"]["Item"]["pk"]["S"] not in self.stuck]
        response = self._client.batch_write_item(RequestItems={table: kept}) if kept else {}
        return {**response, "UnprocessedItems": {table: rest} if rest else {}}


def stored(client, table, version, user):
    item = client.get_item(TableName=table, Key=key(user_key(version, user)), ConsistentRead=True).get("Item")
    return decode_list(item) if item else None


def test_load_writes_every_list_in_batches_of_25(client, table):
    users = [str(u) for u in range(60)]
    counts = load_lists(client, table, V1, lists_of("a", users), expires_at=EXPIRES_AT, threads=3)
    assert (counts.lists, counts.written, counts.requests, counts.resent) == (60, 60, 3, 0)
    assert counts.write_units == 60  # 5-item lists: well under 1 KB each
    ranked, expires_at = stored(client, table, V1, "7")
    assert ranked == RankedList.of([f"a-7-{r}" for r in range(5)], [1.0 - r / 10 for r in range(5)], "model")
    assert expires_at == EXPIRES_AT
    # Every item carries the TTL attribute.
    items = client.scan(TableName=table, ConsistentRead=True)["Items"]
    assert len(items) == 60 and all(item[TTL_ATTRIBUTE] == {"N": str(EXPIRES_AT)} for item in items)


def test_unprocessed_items_are_resent_with_backoff_and_reconcile(client, table):
    sleeps = []
    throttled = Throttling(client, times=2, keep=5)
    users = [str(u) for u in range(50)]  # two batches of 25
    counts = load_lists(
        throttled,
        table,
        V1,
        lists_of("a", users),
        expires_at=EXPIRES_AT,
        threads=1,
        base_delay_s=0.5,
        max_delay_s=1.5,
        sleep=sleeps.append,
        rand=lambda: 1.0,  # the cap itself: the exponential shows
    )
    assert counts.lists == counts.written == 50
    assert counts.resent > 0 and counts.requests == throttled.calls
    assert sleeps[:2] == [0.5, 1.0] and max(sleeps) <= 1.5
    assert all(stored(client, table, V1, u) is not None for u in users)


def test_throttling_errors_are_retried_too(client, table):
    throttled = Throttling(client, times=1, error=True)
    counts = load_lists(
        throttled, table, V1, lists_of("a", ["1", "2", "3"]), expires_at=EXPIRES_AT, sleep=lambda s: None
    )
    assert (counts.written, counts.throttled, counts.requests) == (3, 1, 2)


def test_gives_up_after_bounded_attempts_naming_what_is_left(client, table):
    sleeps = []
    users = [str(u) for u in range(60)]  # batches of 25, 25, 10; 5 of the first never processed
    never = Throttling(client, times=0, stuck=[user_key(V1, u) for u in users[20:25]])
    with pytest.raises(LoadError) as caught:
        load_lists(
            never,
            table,
            V1,
            lists_of("a", users),
            expires_at=EXPIRES_AT,
            threads=1,
            max_attempts=4,
            sleep=sleeps.append,
            rand=lambda: 0.0,
        )
    err = caught.value
    assert err.unprocessed == 5
    # threads=1: the first batch fails before the second is sent; the rest of the input is counted.
    assert (err.written, err.not_written) == (20, 40)
    assert "5 items still returned as UnprocessedItems after 4 attempts per batch" in str(err)
    assert "20 of 60 lists written, 40 not" in str(err)
    assert len(sleeps) == 3  # between the 4 attempts of the failing batch


def test_a_repeated_user_is_refused(client, table):
    lists = lists_of("a", ["1", "2"]) + lists_of("b", ["1"])
    with pytest.raises(ValueError, match="appears twice"):
        load_lists(client, table, V1, lists, expires_at=EXPIRES_AT)


def test_other_errors_are_raised_as_they_are(client, table):
    class Denied(Throttling):
        def batch_write_item(self, RequestItems):
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "BatchWriteItem")

    with pytest.raises(ClientError, match="AccessDenied"):
        load_lists(Denied(client, 0), table, V1, lists_of("a", ["1"]), expires_at=EXPIRES_AT)


def test_finish_load_marks_the_version_only_when_reconciled(client, table):
    popular = RankedList.of(["p1", "p2"], [9, 8], "popularity")
    with pytest.raises(ReconciliationError, match="2 lists written, 3 expected"):
        finish_load(
            client, table, V1, popularity=popular, lists_written=2, lists_expected=3, expires_at=EXPIRES_AT
        )
    assert read_loaded(client, table, V1) is None
    marker = finish_load(
        client, table, V1, popularity=popular, lists_written=3, lists_expected=3, expires_at=EXPIRES_AT
    )
    assert read_loaded(client, table, V1) == marker
    assert (marker.lists, marker.popularity_items, marker.ds) == (3, 2, "2024-01-30")
    item = client.get_item(TableName=table, Key=key(popularity_key(V1)), ConsistentRead=True)["Item"]
    assert decode_list(item) == (popular, EXPIRES_AT)


def test_the_live_version_is_never_written_into(client, table):
    load_version(client, table, V1, ["1", "2"])
    switch(client, table, V1, now_epoch=NOW)
    with pytest.raises(LiveVersionError, match="live version"):
        load_lists(client, table, V1, lists_of("x", ["1"]), expires_at=EXPIRES_AT)
    assert stored(client, table, V1, "1")[0].item_ids[0] == f"{V1}-1-0"  # unchanged
    with pytest.raises(LiveVersionError):
        finish_load(
            client,
            table,
            V1,
            popularity=RankedList.of(["p"], [1], "popularity"),
            lists_written=1,
            lists_expected=1,
            expires_at=EXPIRES_AT,
        )


def test_max_items_keeps_the_head_of_each_list(client, table):
    lists = [UserList("u", RankedList.of([f"i{r}" for r in range(100)], range(100, 0, -1), "model"))]
    load_lists(client, table, V1, lists, expires_at=EXPIRES_AT, max_items=10)
    ranked, _ = stored(client, table, V1, "u")
    assert ranked.item_ids == tuple(f"i{r}" for r in range(10))
