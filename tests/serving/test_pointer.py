"""serving.pointer against moto's DynamoDB server: forward only, compare-and-set, rollback rules."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from serving.pointer import NotLoaded, PointerConflict, history, read_pointer, rollback, switch
from tests.serving.conftest import NOW, load_version

pytestmark = pytest.mark.unit

JAN30, JAN31, FEB01 = "2024-01-30_j-AAA", "2024-01-31_j-BBB", "2024-02-01_j-CCC"
JAN31_RERUN = "2024-01-31_j-DDD"


def test_switch_needs_a_loaded_version(client, table):
    with pytest.raises(NotLoaded, match="no loaded marker"):
        switch(client, table, JAN30, now_epoch=NOW)
    assert read_pointer(client, table) is None


def test_switch_moves_forward_only(client, table):
    for version in (JAN30, JAN31, FEB01, JAN31_RERUN):
        load_version(client, table, version, ["1"])
    first = switch(client, table, JAN31, now_epoch=NOW, by="dag run 1", reason="promote")
    assert first.moved and first.previous is None
    assert (first.pointer.version, first.pointer.seq, first.pointer.lists) == (JAN31, 1, 1)

    older = switch(client, table, JAN30, now_epoch=NOW)
    assert not older.moved and "newer than 2024-01-30" in older.reason
    assert read_pointer(client, table).version == JAN31

    same_date = switch(client, table, JAN31_RERUN, now_epoch=NOW)  # a rerun of the date: as the registry
    assert same_date.moved and same_date.pointer.previous == JAN31

    again = switch(client, table, JAN31_RERUN, now_epoch=NOW)
    assert not again.moved and "already names" in again.reason
    assert switch(client, table, FEB01, now_epoch=NOW).moved
    assert [p.version for p in history(client, table)] == [FEB01, JAN31_RERUN, JAN31]


def test_concurrent_switches_never_move_backwards(client, table):
    versions = [f"2024-02-{day:02d}_j-{day}" for day in range(1, 9)]
    for version in versions:
        load_version(client, table, version, ["1"])
    start = threading.Barrier(len(versions))
    results, errors = {}, []

    def attempt(version):
        start.wait()
        try:
            results[version] = switch(client, table, version, now_epoch=NOW, max_attempts=20)
        except PointerConflict as exc:  # allowed: bounded attempts, never a wrong move
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert read_pointer(client, table).version == versions[-1]
    moves = sorted(history(client, table, 100), key=lambda p: p.seq)
    assert [m.seq for m in moves] == list(range(1, len(moves) + 1))  # one record per move, no gaps
    dates = [m.ds for m in moves]
    assert dates == sorted(dates)  # never backwards
    assert all(m.previous == prev.version for prev, m in zip(moves, moves[1:]))  # no lost update
    assert sum(r.moved for r in results.values()) == len(moves)


class RacedBy:
    """Wraps a client: just before its first TransactWriteItems, another writer switches ``version``."""

    def __init__(self, client, table, version):
        self._client, self._table, self._version = client, table, version
        self.raced = False

    def __getattr__(self, name):
        return getattr(self._client, name)

    def transact_write_items(self, **kwargs):
        if not self.raced:
            self.raced = True
            assert switch(self._client, self._table, self._version, now_epoch=NOW).moved
        return self._client.transact_write_items(**kwargs)


def test_a_lost_race_is_decided_again(client, table):
    for version in (JAN30, JAN31, FEB01):
        load_version(client, table, version, ["1"])
    switch(client, table, JAN30, now_epoch=NOW)
    # We read JAN30 and go for JAN31; meanwhile FEB01 goes live: our write is refused, we re-read, stop.
    lost = switch(RacedBy(client, table, FEB01), table, JAN31, now_epoch=NOW)
    assert not lost.moved and lost.conflicts == 1 and lost.pointer.version == FEB01
    assert read_pointer(client, table).version == FEB01


def test_a_race_with_an_older_version_still_moves_forward(client, table):
    for version in (JAN30, JAN31, FEB01):
        load_version(client, table, version, ["1"])
    switch(client, table, JAN30, now_epoch=NOW)
    # We read JAN30 and go for FEB01; meanwhile JAN31 goes live: refused, re-read, FEB01 is still later.
    won = switch(RacedBy(client, table, JAN31), table, FEB01, now_epoch=NOW)
    assert won.moved and won.conflicts == 1 and won.previous.version == JAN31
    assert [p.version for p in history(client, table)] == [FEB01, JAN31, JAN30]


def test_rollback_goes_back_only_to_a_loaded_version_and_records_who_and_why(client, table):
    for version in (JAN30, FEB01):
        load_version(client, table, version, ["1"])
    load_version(client, table, JAN31, ["1"], expires_at=NOW + 60)  # its lists expire a minute later
    switch(client, table, FEB01, now_epoch=NOW)

    with pytest.raises(NotLoaded):
        rollback(client, table, "2024-01-29_j-ZZZ", by="me", reason="bad", now_epoch=NOW)
    with pytest.raises(NotLoaded, match="expired"):
        rollback(client, table, JAN31, by="me", reason="bad", now_epoch=NOW + 60)
    with pytest.raises(ValueError, match="who"):
        rollback(client, table, JAN30, by="me", reason=" ", now_epoch=NOW)
    with pytest.raises(ValueError, match="already names"):
        rollback(client, table, FEB01, by="me", reason="why", now_epoch=NOW)

    at = datetime(2024, 2, 2, 9, 30, tzinfo=timezone.utc)
    back = rollback(client, table, JAN30, by="alice", reason="CTR dropped", now_epoch=NOW, at=at)
    assert back.moved
    live = read_pointer(client, table)
    assert (live.version, live.action, live.by, live.reason, live.previous) == (
        JAN30,
        "rollback",
        "alice",
        "CTR dropped",
        FEB01,
    )
    assert live.at == "2024-02-02T09:30:00.000000Z"
    assert history(client, table, 1)[0] == live
    # A rollback does not pin: the next switch moves forward again.
    assert switch(client, table, FEB01, now_epoch=NOW).moved
