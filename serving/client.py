"""What an application calls: one user's list from the live version, usually in one GetItem.

    from serving.client import Recommender

    recommender = Recommender("recsys-serving")   # boto3's default credentials and region
    answer = recommender.recommend("42", n=10)
    answer.version, answer.source, [(r.rank, r.item_id, r.score) for r in answer.items]

How an answer is read:

1. the live version from the pointer item, cached for ``pointer_ttl_s`` seconds (monotonic clock), so
   most answers cost no pointer read;
2. the user's item ``<version>#<user_id>`` of *that* version;
3. if the user has none, the version's popularity list ``<version>@popularity`` (cached per version:
   a loaded version's lists never change), source "popularity".

One answer never mixes versions: every read of it uses the version read in step 1, even if the pointer
moves meanwhile. Only when that version's lists are gone (neither the user's item nor the popularity
list is there, or they are past their ``expires_at``: DynamoDB's TTL deletes items up to days late, so
an expired item counts as gone) is the pointer re-read once, consistently, and the answer taken wholly
from the version it names; if that is the same version or also gone, :class:`ServingUnavailable`.

Reads are eventually consistent by default (half the read units): a version's items are written, and
its loaded marker after them, before the pointer can name it. Thread-safe: one Recommender per process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

from serving.pointer import read_pointer
from serving.table import RankedList, decode_list, key, popularity_key, user_key

_POPULARITY_CACHE = 4  # versions whose popularity list is kept (the live one and a few before it)


class NoLiveVersion(LookupError):
    """The table has no pointer: no version was ever switched live."""


class ServingUnavailable(RuntimeError):
    """The live version's lists are gone (expired) and the pointer names no other version."""


@dataclass(frozen=True)
class RankedItem:
    """One entry of an answer: ``rank`` from 1, ``item_id``, ``score`` (model: dot product of the
    factors; popularity: the item's distinct users in the training window)."""

    rank: int
    item_id: str
    score: float


@dataclass(frozen=True)
class Answer:
    """A user's list, wholly from ``version``; ``source`` "model" or "popularity"."""

    version: str
    user_id: str
    items: Tuple[RankedItem, ...]
    source: str


def _answer(version: str, user_id: str, ranked: RankedList, n: int, source: str) -> Answer:
    head = ranked.head(n)
    items = tuple(
        RankedItem(rank, item_id, score)
        for rank, (item_id, score) in enumerate(zip(head.item_ids, head.scores), start=1)
    )
    return Answer(version, user_id, items, source)


class Recommender:
    """Reads users' lists from the serving table ``table_name`` (see the module docstring).

    ``client``: a boto3 DynamoDB client (default: ``boto3.client("dynamodb")``). ``pointer_ttl_s``:
    seconds the live version is cached (0 = read it for every answer). ``clock``: monotonic seconds,
    for the cache; ``wall_clock``: epoch seconds, to compare with items' ``expires_at``.
    """

    def __init__(
        self,
        table_name: str,
        client=None,
        pointer_ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        wall_clock: Callable[[], float] = time.time,
        consistent_reads: bool = False,
    ):
        if pointer_ttl_s < 0:
            raise ValueError(f"pointer_ttl_s must be >= 0, got {pointer_ttl_s}")
        if client is None:
            import boto3

            client = boto3.client("dynamodb")
        self.table_name = table_name
        self.client = client
        self.pointer_ttl_s = pointer_ttl_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._consistent = consistent_reads
        self._lock = threading.Lock()
        self._live: Optional[Tuple[str, float]] = None  # (version, clock() when read)
        self._popularity: Dict[str, Tuple[RankedList, int]] = {}

    def live_version(self, refresh: bool = False) -> str:
        """The version the pointer names (cached unless ``refresh``); NoLiveVersion if there is none."""
        now = self._clock()
        with self._lock:
            cached = self._live
        if not refresh and cached is not None and now - cached[1] < self.pointer_ttl_s:
            return cached[0]
        pointer = read_pointer(self.client, self.table_name, consistent=refresh or self._consistent)
        if pointer is None:
            raise NoLiveVersion(f"{self.table_name} has no live version: no pointer item")
        with self._lock:
            self._live = (pointer.version, now)
        return pointer.version

    def recommend(self, user_id: str, n: int = 10) -> Answer:
        """The first ``n`` (>= 1) items for ``user_id`` from the live version (fewer if its list is
        shorter). NoLiveVersion, or ServingUnavailable when the live version's lists are gone."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        user_id = str(user_id)
        version = self.live_version()
        answer = self._from_version(version, user_id, n)
        if answer is not None:
            return answer
        fresh = self.live_version(refresh=True)
        answer = self._from_version(fresh, user_id, n) if fresh != version else None
        if answer is None:
            raise ServingUnavailable(
                f"the lists of {fresh} in {self.table_name} are gone (expired or deleted) and the pointer "
                "names no other version"
            )
        return answer

    def _from_version(self, version: str, user_id: str, n: int) -> Optional[Answer]:
        """The answer from ``version`` alone, or None if its lists are gone."""
        now = self._wall_clock()
        item = self.client.get_item(
            TableName=self.table_name, Key=key(user_key(version, user_id)), ConsistentRead=self._consistent
        ).get("Item")
        if item is not None:
            ranked, expires_at = decode_list(item)
            if expires_at > now:
                return _answer(version, user_id, ranked, n, ranked.source)
        popular = self._popularity_list(version, now)
        if popular is None:
            return None
        return _answer(version, user_id, popular, n, "popularity")

    def _popularity_list(self, version: str, now: float) -> Optional[RankedList]:
        with self._lock:
            cached = self._popularity.get(version)
        if cached is None:
            item = self.client.get_item(
                TableName=self.table_name, Key=key(popularity_key(version)), ConsistentRead=self._consistent
            ).get("Item")
            if item is None:
                return None
            cached = decode_list(item)
            with self._lock:
                self._popularity[version] = cached
                while len(self._popularity) > _POPULARITY_CACHE:
                    self._popularity.pop(next(iter(self._popularity)))  # the oldest entry
        ranked, expires_at = cached
        return ranked if expires_at > now else None
