"""serving.client against moto's DynamoDB server: the live version only, popularity for unknown
users, never two versions in one answer, a re-read when the version's lists are gone."""

from __future__ import annotations

import threading
import time

import pytest

from serving.client import NoLiveVersion, Recommender, ServingUnavailable
from serving.pointer import switch
from serving.table import key, popularity_key, user_key
from tests.serving.conftest import EXPIRES_AT, NOW, load_version

pytestmark = pytest.mark.unit

V1, V2 = "2024-01-30_j-AAA", "2024-01-31_j-BBB"


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def from_version(answer, prefix):
    return all(item.item_id.startswith(prefix + "-") for item in answer.items)


def test_no_pointer_no_answer(client, table):
    with pytest.raises(NoLiveVersion):
        Recommender(table, client=client).recommend("1")


def test_known_user_gets_the_model_list_and_unknown_user_popularity(client, table):
    load_version(client, table, V1, ["1", "2"], prefix="v1")
    switch(client, table, V1, now_epoch=NOW)
    recommender = Recommender(table, client=client)

    answer = recommender.recommend("1", n=3)
    assert (answer.version, answer.user_id, answer.source) == (V1, "1", "model")
    assert [(i.rank, i.item_id) for i in answer.items] == [(1, "v1-1-0"), (2, "v1-1-1"), (3, "v1-1-2")]
    assert answer.items[0].score == pytest.approx(1.0)
    assert len(recommender.recommend(1, n=50).items) == 5  # as long as the stored list, int id ok

    unknown = recommender.recommend("nobody", n=2)
    assert (unknown.version, unknown.source) == (V1, "popularity")
    assert [i.item_id for i in unknown.items] == ["v1-pop-0", "v1-pop-1"]
    assert [i.score for i in unknown.items] == [50.0, 49.0]


def test_a_held_version_is_never_served(client, table):
    # V2 is loaded (a later date, and more users) but never switched: the gate held it.
    load_version(client, table, V1, ["1"], prefix="v1")
    load_version(client, table, V2, ["1", "2"], prefix="v2")
    switch(client, table, V1, now_epoch=NOW)
    recommender = Recommender(table, client=client, pointer_ttl_s=0)
    for user in ("1", "2", "3"):
        answer = recommender.recommend(user)
        assert answer.version == V1 and from_version(answer, "v1")
    assert recommender.recommend("2").source == "popularity"  # V2's list for user 2 is not V1's


def test_the_pointer_is_cached_for_its_ttl(client, table):
    load_version(client, table, V1, ["1"], prefix="v1")
    load_version(client, table, V2, ["1"], prefix="v2")
    switch(client, table, V1, now_epoch=NOW)
    clock = FakeClock()
    recommender = Recommender(table, client=client, pointer_ttl_s=5.0, clock=clock)
    assert recommender.recommend("1").version == V1
    switch(client, table, V2, now_epoch=NOW)
    clock.now = 4.9
    assert recommender.recommend("1").version == V1  # cached
    clock.now = 5.0
    assert recommender.recommend("1").version == V2


class SwitchBefore:
    """Wraps a client: before the first GetItem of a key in ``keys``, switch the pointer to ``version``
    (a promotion landing between the reader's pointer read and its item read)."""

    def __init__(self, client, table, version, keys):
        self._client, self._table, self._version, self._keys = client, table, version, set(keys)
        self.switched = False

    def __getattr__(self, name):
        return getattr(self._client, name)

    def get_item(self, **kwargs):
        if not self.switched and kwargs["Key"]["pk"]["S"] in self._keys:
            self.switched = True
            assert switch(self._client, self._table, self._version, now_epoch=NOW).moved
        return self._client.get_item(**kwargs)


@pytest.mark.parametrize("user", ["1", "unknown"])
def test_a_switch_between_reads_does_not_mix_versions(client, table, user):
    load_version(client, table, V1, ["1"], prefix="v1")
    load_version(client, table, V2, ["1"], prefix="v2")
    switch(client, table, V1, now_epoch=NOW)
    # The switch lands after the pointer read: before the user's item (known user) or before the
    # popularity list (unknown user, whose item read came back empty).
    keys = [user_key(V1, "1")] if user == "1" else [popularity_key(V1)]
    hooked = SwitchBefore(client, table, V2, keys)
    answer = Recommender(table, client=hooked, pointer_ttl_s=0).recommend(user)
    assert hooked.switched
    assert answer.version == V1 and from_version(answer, "v1")
    assert Recommender(table, client=client).recommend(user).version == V2  # the next answer: V2


def test_readers_racing_a_flipping_pointer_never_mix_versions(client, table):
    # Two versions of one date: switch allows moving between them both ways (like the registry).
    a, b = "2024-02-01_j-A", "2024-02-01_j-B"
    users = [str(u) for u in range(5)]
    load_version(client, table, a, users, prefix="a")
    load_version(client, table, b, users, prefix="b")
    switch(client, table, a, now_epoch=NOW)
    stop = threading.Event()
    answers, flips = [], []

    def flip():
        while not stop.is_set():
            for version in (b, a):
                flips.append(switch(client, table, version, now_epoch=NOW, max_attempts=10).moved)

    def read():
        recommender = Recommender(table, client=client, pointer_ttl_s=0)
        while not stop.is_set():
            for user in [*users, "stranger"]:
                answers.append(recommender.recommend(user))

    threads = [threading.Thread(target=flip)] + [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert sum(flips) >= 4 and len(answers) >= 20
    assert {answer.version for answer in answers} == {a, b}
    prefix = {a: "a", b: "b"}
    assert all(from_version(answer, prefix[answer.version]) for answer in answers)


def test_gone_lists_make_the_reader_read_the_pointer_again(client, table):
    load_version(client, table, V1, ["1"], prefix="v1", expires_at=NOW + 100)
    load_version(client, table, V2, ["1"], prefix="v2")
    switch(client, table, V1, now_epoch=NOW)
    wall = FakeClock()
    wall.now = NOW
    recommender = Recommender(table, client=client, pointer_ttl_s=60, wall_clock=wall)
    assert recommender.recommend("1").version == V1
    switch(client, table, V2, now_epoch=NOW)
    # V1's items are past expires_at (DynamoDB may not have deleted them yet); the cached pointer says V1.
    wall.now = NOW + 100
    answer = recommender.recommend("1")
    assert answer.version == V2 and from_version(answer, "v2") and answer.source == "model"
    # Deleted outright (TTL did its work) is the same.
    for pk in (user_key(V2, "1"), popularity_key(V2)):
        client.delete_item(TableName=table, Key=key(pk))
    with pytest.raises(ServingUnavailable, match="gone"):
        recommender.recommend("1")


def test_expiry_is_judged_by_the_item_not_by_the_reader_alone(client, table):
    load_version(client, table, V1, ["1"], prefix="v1", expires_at=EXPIRES_AT)
    switch(client, table, V1, now_epoch=NOW)
    client.delete_item(TableName=table, Key=key(user_key(V1, "1")))
    # The user's item is gone but the version's popularity list is not: the version is alive.
    answer = Recommender(table, client=client).recommend("1")
    assert (answer.version, answer.source) == (V1, "popularity")
