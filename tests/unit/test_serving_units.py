"""The serving layer's pure parts: keys, number and item encoding, sizes, specs, backoff, counts."""

from __future__ import annotations

import math
import struct

import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.cli import read_titles
from serving.load import LoadCounts, _BatchGaveUp, backoff_delay, user_list, write_batch
from serving.table import (
    MAX_ITEM_BYTES,
    ItemTooLarge,
    Loaded,
    RankedList,
    check_version,
    decode_list,
    decode_loaded,
    encode_list,
    encode_loaded,
    history_key,
    item_size,
    loaded_key,
    number,
    popularity_key,
    table_spec,
    user_key,
    write_units,
)

pytestmark = pytest.mark.unit

VERSION = "2024-01-31_j-2AB3XYZ"
versions = st.builds(
    lambda d, token: f"2024-01-{d:02d}" + (f"_{token}" if token else ""),
    st.integers(1, 31),
    st.one_of(st.none(), st.text("ABCXYZabc0123-", min_size=1, max_size=20)),
)
user_ids = st.text(min_size=1, max_size=50)


def f32(value: float) -> float:
    """``value`` rounded to float32, as the models' scores are."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


def test_versions_follow_the_registry_format():
    assert check_version("2024-01-31_j-2AB3XYZ") == "2024-01-31"
    assert check_version("2024-01-31") == "2024-01-31"  # the registry's old layout
    for bad in ("2024-1-31", "2024-01-31_", "2024-01-31_a#b", "@pointer", "", None, 20240131):
        with pytest.raises(ValueError):
            check_version(bad)


@settings(derandomize=True, deadline=None)
@given(versions, user_ids)
def test_a_user_key_names_its_version_and_user_and_no_reserved_item(version, user):
    pk = user_key(version, user)
    assert pk.split("#", 1) == [version, user]  # whatever the user id holds
    assert pk not in (popularity_key(version), loaded_key(version))
    assert not pk.startswith("@")  # the pointer's keys


def test_reserved_keys():
    assert popularity_key(VERSION) == f"{VERSION}@popularity"
    assert loaded_key(VERSION) == f"{VERSION}@loaded"
    assert history_key(7) == "@pointer#" + "7".zfill(12)  # zero-padded: records sort by move
    with pytest.raises(ValueError):
        history_key(0)
    with pytest.raises(ValueError):
        user_key(VERSION, "")
    with pytest.raises(ValueError, match="too long"):
        user_key(VERSION, "x" * 2030)


@settings(derandomize=True, deadline=None)
@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_a_float32_score_survives_exactly(score):
    text = number(score)
    assert "e" not in text.lower() and "inf" not in text.lower()
    assert f32(float(text)) == score


@settings(derandomize=True, deadline=None)
@given(st.integers(0, 10**9 - 1))
def test_popularity_counts_survive_exactly(count):
    assert number(count) == str(count)


def test_numbers_dynamodb_cannot_hold_are_refused():
    for bad in (math.nan, math.inf, -math.inf, 1e200, True):
        with pytest.raises(ValueError):
            number(bad)
    assert number(1e-200) == "0" and number(-0.0) == "0" and number(2.5e-05) == "0.000025"


ranked_lists = st.builds(
    lambda pairs, source: RankedList(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), source),
    st.lists(st.tuples(st.text(min_size=1, max_size=12), st.floats(-1e6, 1e6, width=32)), max_size=100),
    st.sampled_from(["model", "popularity"]),
)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(ranked_lists, st.integers(1, 2**40))
def test_encode_decode_round_trip(ranked, expires_at):
    item = encode_list(user_key(VERSION, "u"), ranked, expires_at)
    decoded, expires = decode_list(item)
    assert expires == expires_at and decoded.source == ranked.source
    assert decoded.item_ids == ranked.item_ids
    assert [f32(s) for s in decoded.scores] == [f32(s) for s in ranked.scores]  # -0.0 == 0.0


def test_item_sizes_and_write_units():
    # The documented rules: names + values; a number ~1 byte per 2 significant digits + 1; a list 3 + 1
    # per element.
    assert item_size({"pk": {"S": "abc"}, "n": {"N": "123.45"}, "l": {"L": [{"S": "x"}, {"N": "7"}]}}) == (
        2 + 3 + 1 + 4 + 1 + 3 + (1 + 1) + (1 + 2)
    )
    ten = RankedList.of(
        [str(1000 + r) for r in range(10)], [0.123456789 * (r + 1) for r in range(10)], "model"
    )
    hundred = RankedList.of(
        [str(1000 + r) for r in range(100)], [0.123456789 * (r + 1) for r in range(100)], "model"
    )
    expires_at = 1_800_000_000
    ten_item = encode_list(user_key(VERSION, "123456"), ten, expires_at)
    hundred_item = encode_list(user_key(VERSION, "123456"), hundred, expires_at)
    assert 150 < item_size(ten_item) < 250 and write_units(ten_item) == 1
    assert 1100 < item_size(hundred_item) < 1500 and write_units(hundred_item) == 2


def test_an_item_over_the_bound_is_refused():
    huge = RankedList.of([f"item-{'x' * 60}-{r}" for r in range(1000)], [1.0] * 1000, "model")
    with pytest.raises(ItemTooLarge, match=f"over {MAX_ITEM_BYTES}"):
        encode_list(user_key(VERSION, "u"), huge, 1)


def test_ranked_list_checks_itself():
    with pytest.raises(ValueError, match="2 item ids but 1 scores"):
        RankedList(("a", "b"), (1.0,), "model")
    with pytest.raises(ValueError, match="source"):
        RankedList(("a",), (1.0,), "editorial")
    with pytest.raises(ValueError, match="non-empty"):
        RankedList(("",), (1.0,), "model")
    with pytest.raises(ValueError):
        encode_list("k", RankedList(("a",), (1.0,), "model"), 0)


def test_loaded_marker_round_trip():
    marker = Loaded(VERSION, "2024-01-31", 943, 100, "2024-02-01T02:03:04.000000Z", 1_800_000_000)
    item = encode_loaded(marker)
    assert item["pk"] == {"S": loaded_key(VERSION)} and decode_loaded(item) == marker


def test_table_spec():
    spec = table_spec("recs")
    assert spec["BillingMode"] == "PAY_PER_REQUEST" and "ProvisionedThroughput" not in spec
    assert spec["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert spec["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    provisioned = table_spec("recs", "PROVISIONED", 10, 1000, deletion_protection=True, tags={"team": "ml"})
    assert provisioned["ProvisionedThroughput"] == {"ReadCapacityUnits": 10, "WriteCapacityUnits": 1000}
    assert provisioned["DeletionProtectionEnabled"] is True and provisioned["Tags"] == [
        {"Key": "team", "Value": "ml"}
    ]
    for args in (("recs", "PROVISIONED"), ("recs", "PAY_PER_REQUEST", 1, 1), ("recs", "FREE"), ("",)):
        with pytest.raises(ValueError):
            table_spec(*args)


def test_backoff_is_exponential_capped_and_jittered():
    assert [backoff_delay(n, 0.1, 1.0, lambda: 1.0) for n in range(1, 6)] == [0.1, 0.2, 0.4, 0.8, 1.0]
    assert backoff_delay(3, 0.1, 1.0, lambda: 0.5) == pytest.approx(0.2)
    assert backoff_delay(40, 0.1, 1.0, lambda: 0.0) == 0.0


class FakeClient:
    """BatchWriteItem that returns the last ``refuse[n]`` requests of call n as unprocessed."""

    def __init__(self, refuse, error_on=()):
        self.refuse, self.error_on, self.calls = list(refuse), set(error_on), []

    def batch_write_item(self, RequestItems):
        (table, requests), *_ = RequestItems.items()
        self.calls.append(len(requests))
        if len(self.calls) in self.error_on:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "x"}}, "BatchWriteItem")
        n = self.refuse.pop(0) if self.refuse else 0
        return {"UnprocessedItems": {table: requests[len(requests) - n :]} if n else {}}


def requests(n):
    return [{"PutRequest": {"Item": {"pk": {"S": str(i)}}}} for i in range(n)]


def test_write_batch_resends_only_the_unprocessed():
    sleeps = []
    fake = FakeClient(refuse=[10, 3], error_on=[3])
    result = write_batch(
        fake,
        "t",
        requests(25),
        max_attempts=5,
        base_delay_s=1,
        max_delay_s=8,
        sleep=sleeps.append,
        rand=lambda: 1,
    )
    assert fake.calls == [25, 10, 3, 3]  # 15 written, then 7, then refused whole, then the last 3
    assert (result.written, result.requests, result.resent, result.throttled) == (25, 4, 16, 1)
    assert sleeps == [1, 2, 4]


def test_write_batch_gives_up_after_max_attempts():
    fake = FakeClient(refuse=[5, 5, 5])
    with pytest.raises(_BatchGaveUp) as caught:
        write_batch(
            fake,
            "t",
            requests(25),
            max_attempts=3,
            base_delay_s=0,
            max_delay_s=0,
            sleep=lambda s: None,
            rand=lambda: 0,
        )
    assert caught.value.unprocessed == 5 and caught.value.result.written == 20 and len(fake.calls) == 3


def test_counts_add_up_and_travel_as_dicts():
    a = LoadCounts(lists=2, written=2, requests=1, write_units=2)
    b = LoadCounts(lists=3, written=3, requests=2, resent=1, throttled=1, write_units=3)
    assert a + b == LoadCounts(5, 5, 3, 1, 1, 5)
    assert LoadCounts.from_dict((a + b).as_dict()) == a + b
    assert LoadCounts.from_dict({}) == LoadCounts()


def test_user_list_needs_ranks_one_to_n():
    assert user_list(7, [1, 2], ["a", "b"], [2.0, 1.0], "model").user_id == "7"
    for ranks in ([2, 3], [1, 1], [2, 1]):
        with pytest.raises(ValueError, match="ranks"):
            user_list("u", ranks, ["a", "b"], [2.0, 1.0], "model")


def test_read_titles(tmp_path):
    jsonl = tmp_path / "items.jsonl"
    jsonl.write_text('{"item_id": 1, "title": "Toy Story (1995)"}\nnot json {\n\n{"title": "no id"}\n')
    assert read_titles(str(jsonl)) == {"1": "Toy Story (1995)"}
    u_item = tmp_path / "u.item"
    u_item.write_bytes(
        b"1|Toy Story (1995)|01-Jan-1995||http://x|0|0\n2\tGoldenEye (1995)\n3|Caf\xe9 (1994)|\n"
    )
    titles = read_titles(str(u_item))
    assert (
        titles["1"] == "Toy Story (1995)"
        and titles["2"] == "GoldenEye (1995)"
        and titles["3"].startswith("Caf")
    )
