"""The serving table as code: one DynamoDB table, one string partition key ``pk``, no sort key.

Items, by key::

    pk = "<version>#<user_id>"        one user's ranked list in that version (attributes below)
    pk = "<version>@popularity"       the version's popularity list, for users it has no list for
    pk = "<version>@loaded"           the version's loaded marker, written last by serving.load
    pk = "@pointer"                   the live version (serving.pointer)
    pk = "@pointer#<seq, 12 digits>"  one audit record per pointer move

Why version and user in one partition key rather than pk=version, sk=user_id: a load writes millions of
items of one version in minutes, and all items of one partition key value sit in one partition, which
serves at most 1,000 write units per second; a combined key hashes the writes over every partition. The
application only reads single items, and nothing needs to list one version's users (TTL removes old
versions; the loaded marker carries the count), so a sort key would buy nothing.

A version is the registry's id, ``<YYYY-MM-DD>`` or ``<YYYY-MM-DD>_<token>`` with token in [A-Za-z0-9-]
(dags/recsys_dag/registry.py ``VERSION_RE``, mirrored here: the DAG package is not on EMR). It holds
neither ``#`` nor ``@``, so a user's key splits at its first ``#`` whatever the user id holds, a key
``<version>@...`` is never a user's, and keys starting with ``@`` are not versions.

List attributes (short names: write units are charged per started KB of item)::

    i           L of S   item ids, best first
    s           L of N   scores, same length (9 significant digits: a float32 score survives exactly)
    src         S        "model" or "popularity"
    expires_at  N        epoch seconds; the table's TTL attribute (DynamoDB deletes the item after it)

Size bound: an encoded item may not exceed ``MAX_ITEM_BYTES`` (64 KB, a sixth of DynamoDB's 400 KB
item limit) by DynamoDB's documented size rules (:func:`item_size`); a 10-item list of short ids is
about 200 bytes (1 write unit), a 100-item list about 1.3 KB (2 write units). 25 such items per
BatchWriteItem stay far below its 16 MB request limit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from botocore.exceptions import ClientError

PK = "pk"
ITEMS = "i"
SCORES = "s"
SOURCE = "src"
TTL_ATTRIBUTE = "expires_at"
SOURCES = ("model", "popularity")

POINTER_KEY = "@pointer"
USER_SEP = "#"
META_SEP = "@"

MAX_ITEM_BYTES = 64 * 1024
MAX_KEY_BYTES = 2048  # DynamoDB's limit on a partition key value
SCORE_DIGITS = 9
# Same pattern as the registry's VERSION_RE: "<YYYY-MM-DD>" (old layout) or "<YYYY-MM-DD>_<token>".
VERSION_RE = re.compile(r"^(?P<ds>\d{4}-\d{2}-\d{2})(?:_(?P<token>[A-Za-z0-9-]+))?$")


class ItemTooLarge(ValueError):
    """An encoded item would exceed ``MAX_ITEM_BYTES``."""


# --- keys ----------------------------------------------------------------------------------------


def check_version(version: Any) -> str:
    """The logical date (``YYYY-MM-DD``) of ``version``; ValueError if it is not a registry version id."""
    match = VERSION_RE.match(version) if isinstance(version, str) else None
    if match is None:
        raise ValueError(f"not a registry version (<YYYY-MM-DD>[_<token>]): {version!r}")
    return match.group("ds")


def user_key(version: str, user_id: str) -> str:
    """``"<version>#<user_id>"``; ValueError for a bad version, an empty user id or a key over 2048 bytes."""
    check_version(version)
    if not isinstance(user_id, str) or not user_id:
        raise ValueError(f"a user id is a non-empty string, got {user_id!r}")
    key = f"{version}{USER_SEP}{user_id}"
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"user id too long for a key ({len(key.encode('utf-8'))} > {MAX_KEY_BYTES} bytes)")
    return key


def popularity_key(version: str) -> str:
    """``"<version>@popularity"``: never a user's key, since versions hold no ``@`` or ``#``."""
    check_version(version)
    return f"{version}{META_SEP}popularity"


def loaded_key(version: str) -> str:
    """``"<version>@loaded"``: the marker serving.load writes once every list of the version is in."""
    check_version(version)
    return f"{version}{META_SEP}loaded"


def history_key(seq: int) -> str:
    """``"@pointer#<seq>"``, zero-padded to 12 digits so the records sort by move."""
    if seq < 1:
        raise ValueError(f"a pointer move sequence starts at 1, got {seq}")
    return f"{POINTER_KEY}{USER_SEP}{seq:012d}"


def key(pk: str) -> Dict[str, Dict[str, str]]:
    """The low-level ``Key`` argument for ``pk``."""
    return {PK: {"S": pk}}


# --- the table -----------------------------------------------------------------------------------


def table_spec(
    name: str,
    billing_mode: str = "PAY_PER_REQUEST",
    read_capacity: Optional[int] = None,
    write_capacity: Optional[int] = None,
    deletion_protection: bool = False,
    tags: Optional[Mapping[str, str]] = None,
) -> Dict[str, Any]:
    """CreateTable kwargs: ``pk`` (S) as the only key. ``billing_mode`` PAY_PER_REQUEST (on-demand), or
    PROVISIONED with ``read_capacity`` and ``write_capacity`` (units per second, >= 1). ValueError on a
    mode/capacity mismatch."""
    if not name:
        raise ValueError("a table needs a name")
    spec: Dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": PK, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": PK, "KeyType": "HASH"}],
        "BillingMode": billing_mode,
        "DeletionProtectionEnabled": bool(deletion_protection),
    }
    if billing_mode == "PROVISIONED":
        if not read_capacity or not write_capacity or read_capacity < 1 or write_capacity < 1:
            raise ValueError("PROVISIONED needs read_capacity and write_capacity >= 1")
        spec["ProvisionedThroughput"] = {
            "ReadCapacityUnits": int(read_capacity),
            "WriteCapacityUnits": int(write_capacity),
        }
    elif billing_mode == "PAY_PER_REQUEST":
        if read_capacity is not None or write_capacity is not None:
            raise ValueError("PAY_PER_REQUEST (on-demand) takes no read/write capacity")
    else:
        raise ValueError(f"billing_mode is PAY_PER_REQUEST or PROVISIONED, got {billing_mode!r}")
    if tags:
        spec["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
    return spec


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def ensure_table(
    client,
    name: str,
    *,
    billing_mode: str = "PAY_PER_REQUEST",
    read_capacity: Optional[int] = None,
    write_capacity: Optional[int] = None,
    deletion_protection: bool = False,
    tags: Optional[Mapping[str, str]] = None,
    wait_delay_s: int = 2,
    wait_max_attempts: int = 60,
) -> Dict[str, Any]:
    """Create the table if it is missing, wait until ACTIVE, enable TTL on ``expires_at``. Idempotent.

    An existing table is left as it is (its billing mode is reported, never changed). ValueError if it
    exists with another key schema or TTL on another attribute. Returns {"table", "arn", "created",
    "ttl_enabled_now", "billing_mode"}.
    """
    spec = table_spec(name, billing_mode, read_capacity, write_capacity, deletion_protection, tags)
    created = False
    try:
        status = client.describe_table(TableName=name)["Table"]["TableStatus"]
    except ClientError as err:
        if _code(err) != "ResourceNotFoundException":
            raise
        try:
            client.create_table(**spec)
            created = True
        except ClientError as create_err:
            if _code(create_err) != "ResourceInUseException":  # a concurrent ensure_table won the race
                raise
        status = "CREATING"
    if status != "ACTIVE":
        client.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": wait_delay_s, "MaxAttempts": wait_max_attempts}
        )
    table = client.describe_table(TableName=name)["Table"]
    if table.get("KeySchema") != spec["KeySchema"]:
        raise ValueError(f"table {name} exists with key schema {table.get('KeySchema')}, not pk (S) only")
    ttl = client.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
    ttl_status, ttl_attribute = ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")
    enabled_now = False
    if ttl_status in ("ENABLED", "ENABLING"):
        if ttl_attribute != TTL_ATTRIBUTE:
            raise ValueError(f"table {name} has TTL on {ttl_attribute!r}, not {TTL_ATTRIBUTE!r}")
    elif ttl_status == "DISABLING":
        # DynamoDB refuses another TTL change for up to an hour after one.
        raise RuntimeError(f"TTL of table {name} is being disabled: enable it on {TTL_ATTRIBUTE} later")
    else:
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
        )
        enabled_now = True
    return {
        "table": name,
        "arn": table.get("TableArn"),
        "created": created,
        "ttl_enabled_now": enabled_now,
        "billing_mode": (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED"),
    }


# --- items ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RankedList:
    """One ranked list: ``item_ids`` best first, ``scores`` the same length, ``source`` model|popularity."""

    item_ids: Tuple[str, ...]
    scores: Tuple[float, ...]
    source: str

    def __post_init__(self) -> None:
        if len(self.item_ids) != len(self.scores):
            raise ValueError(f"{len(self.item_ids)} item ids but {len(self.scores)} scores")
        if self.source not in SOURCES:
            raise ValueError(f"source is one of {SOURCES}, got {self.source!r}")
        for item_id in self.item_ids:
            if not isinstance(item_id, str) or not item_id:
                raise ValueError(f"an item id is a non-empty string, got {item_id!r}")

    @classmethod
    def of(cls, item_ids: Sequence[Any], scores: Sequence[Any], source: str) -> RankedList:
        """From any sequences (ids made strings, scores floats)."""
        return cls(tuple(str(i) for i in item_ids), tuple(float(s) for s in scores), source)

    def head(self, n: int) -> RankedList:
        """The first ``n`` entries."""
        return RankedList(self.item_ids[:n], self.scores[:n], self.source)


def number(value: float) -> str:
    """A DynamoDB number string for ``value``: 9 significant digits, no exponent. ValueError for NaN,
    infinities and magnitudes DynamoDB cannot hold (>= 1e125)."""
    if isinstance(value, bool) or not math.isfinite(float(value)):
        raise ValueError(f"not a finite number: {value!r}")
    value = float(value)
    if abs(value) >= 1e125:
        raise ValueError(f"{value!r} is beyond DynamoDB's number range")
    if abs(value) < 1e-125:  # below DynamoDB's smallest magnitude: it is 0 for a ranking score
        return "0"
    text = format(Decimal(format(value, f".{SCORE_DIGITS}g")), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def encode_list(pk: str, ranked: RankedList, expires_at: int) -> Dict[str, Dict[str, Any]]:
    """The low-level item for ``ranked`` under key ``pk``; ``expires_at`` in epoch seconds.

    ItemTooLarge if the item exceeds ``MAX_ITEM_BYTES``."""
    if isinstance(expires_at, bool) or not isinstance(expires_at, int) or expires_at <= 0:
        raise ValueError(f"expires_at is epoch seconds (a positive int), got {expires_at!r}")
    item = {
        PK: {"S": pk},
        ITEMS: {"L": [{"S": item_id} for item_id in ranked.item_ids]},
        SCORES: {"L": [{"N": number(score)} for score in ranked.scores]},
        SOURCE: {"S": ranked.source},
        TTL_ATTRIBUTE: {"N": str(expires_at)},
    }
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise ItemTooLarge(
            f"{pk}: {len(ranked.item_ids)} items encode to {size} bytes, over {MAX_ITEM_BYTES}: "
            "serve fewer items per list"
        )
    return item


def decode_list(item: Mapping[str, Mapping[str, Any]]) -> Tuple[RankedList, int]:
    """``(ranked list, expires_at epoch seconds)`` of a list item (as GetItem returns it)."""
    ranked = RankedList(
        tuple(entry["S"] for entry in item[ITEMS]["L"]),
        tuple(float(entry["N"]) for entry in item[SCORES]["L"]),
        item[SOURCE]["S"],
    )
    return ranked, int(item[TTL_ATTRIBUTE]["N"])


def _number_size(text: str) -> int:
    digits = text.lstrip("-").split("e")[0].split("E")[0].replace(".", "").strip("0")
    return (max(len(digits), 1) + 1) // 2 + 1


def _value_size(value: Mapping[str, Any]) -> int:
    (kind, payload), *_ = value.items()
    if kind == "S":
        return len(payload.encode("utf-8"))
    if kind == "N":
        return _number_size(payload)
    if kind == "B":
        return len(payload)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in payload)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + _value_size(v) for k, v in payload.items())
    if kind == "SS":
        return sum(len(v.encode("utf-8")) for v in payload)
    if kind == "NS":
        return sum(_number_size(v) for v in payload)
    if kind == "BS":
        return sum(len(v) for v in payload)
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Bytes DynamoDB counts for ``item`` (low-level form), by its documented rules: names and values
    as UTF-8, a number about 1 byte per 2 significant digits + 1, a list or map 3 bytes + 1 per
    element. Write units = ceil(size / 1024)."""
    return sum(len(name.encode("utf-8")) + _value_size(value) for name, value in item.items())


def write_units(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Standard write units one put of ``item`` costs: one per started KB (1,024 bytes)."""
    return max(1, math.ceil(item_size(item) / 1024))


# --- the loaded marker ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    """A version's loaded marker: ``lists`` user lists (reconciled against the lists given), a
    popularity list of ``popularity_items`` items, when (``loaded_at``, ISO UTC) and until when
    (``expires_at``, epoch seconds: the same TTL as the version's lists)."""

    version: str
    ds: str
    lists: int
    popularity_items: int
    loaded_at: str
    expires_at: int


def encode_loaded(marker: Loaded) -> Dict[str, Dict[str, Any]]:
    """The low-level marker item under ``<version>@loaded``."""
    return {
        PK: {"S": loaded_key(marker.version)},
        "version": {"S": marker.version},
        "ds": {"S": marker.ds},
        "lists": {"N": str(int(marker.lists))},
        "popularity_items": {"N": str(int(marker.popularity_items))},
        "loaded_at": {"S": marker.loaded_at},
        TTL_ATTRIBUTE: {"N": str(int(marker.expires_at))},
    }


def decode_loaded(item: Mapping[str, Mapping[str, Any]]) -> Loaded:
    """The :class:`Loaded` of a marker item."""
    return Loaded(
        version=item["version"]["S"],
        ds=item["ds"]["S"],
        lists=int(item["lists"]["N"]),
        popularity_items=int(item["popularity_items"]["N"]),
        loaded_at=item["loaded_at"]["S"],
        expires_at=int(item[TTL_ATTRIBUTE]["N"]),
    )
