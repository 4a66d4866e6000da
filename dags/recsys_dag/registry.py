"""The model registry on S3: immutable version folders and a ``latest.json`` pointer moved by compare-and-set.

Every function takes a plain boto3 S3 client (in the DAG: ``S3Hook(...).get_conn()``).

Layout under the registry root (e.g. ``s3://arts/registry``)::

    versions/<version>/model/...            copy of the run's serving model (factors parquet, params.json)
    versions/<version>/recommendations/...  copy of the served top-K lists
    versions/<version>/metrics.json         evaluate's metrics
    versions/<version>/gate.json            the quality gate's report
    versions/<version>/_manifest.json       written last: the version is complete
    latest.json                             the pointer readers follow
    history/<%Y%m%dT%H%M%S%fZ>_<action>_<version>.json   per pointer move (promote, rollback): the new
                                            pointer document plus "previous_version"

A version is ``<ds>_<token>`` (``version_id``): one per training, so a rerun of a date never overwrites
what production may be serving. Older registries hold ``versions/<ds>/{model/..., metrics.json,
_manifest.json}`` with the served lists under ``model/recommendations``; they stay readable.

``latest.json`` is built by the DAG (at least version, ds, run_id, model, recommendations, metrics,
promoted_at, lineage, params) and only written once its version is complete. Contract: the ``manifest``
given to ``register_version`` holds that same document under ``"pointer"``, so ``rollback`` can restore it.
The pointer moves only forward in logical date (``move_latest``), except by an explicit ``rollback``;
each move is a PutObject conditional on the ETag read (If-Match, or If-None-Match: * when absent), so two
writers racing never lose a move silently: the loser gets HTTP 412, re-reads and decides again.
Times written here are UTC, ``%Y-%m-%dT%H:%M:%S.%fZ``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Optional

from botocore.exceptions import ClientError

from recsys_dag.locations import split_s3_uri

MANIFEST = "_manifest.json"
LATEST = "latest.json"
# "<YYYY-MM-DD>" (old layout, one version per date) or "<YYYY-MM-DD>_<token>" (one per training).
VERSION_RE = re.compile(r"^(?P<ds>\d{4}-\d{2}-\d{2})(?:_(?P<token>[A-Za-z0-9-]+))?$")
_ACTION_RE = re.compile(r"^[a-z][a-z-]*$")
_DELETE_BATCH = 1000  # DeleteObjects' limit per request


class RegistryConflict(RuntimeError):
    """latest.json kept changing under us: every conditional write met a newer pointer."""


@dataclass(frozen=True)
class Pointer:
    """latest.json as read, with its ETag and old-layout fields normalised."""

    doc: dict
    etag: str
    version: str
    ds: str
    model: Optional[str]
    recommendations: Optional[str]
    metrics: dict


@dataclass(frozen=True)
class MoveResult:
    """What a pointer move did: ``previous`` is the document replaced (moved) or kept (not moved);
    ``conflicts`` counts the conditional writes that failed (412/409) and were decided again."""

    moved: bool
    reason: str
    previous: Optional[dict]
    conflicts: int


# --- S3 primitives -------------------------------------------------------------------------------


def _join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


def _error(err: ClientError) -> tuple[str, int]:
    return (
        str(err.response.get("Error", {}).get("Code", "")),
        int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0),
    )


def _is_missing(err: ClientError) -> bool:
    # Only a missing key: a missing bucket (NoSuchBucket, also 404) is a configuration error to raise.
    return _error(err)[0] in ("NoSuchKey", "404", "NotFound")


def _is_conflict(err: ClientError) -> bool:
    # 412: the ETag no longer matches (or the key now exists); 409: S3 saw a concurrent conditional write.
    code, status = _error(err)
    return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)


def _get(s3, uri: str) -> Optional[tuple[bytes, str]]:
    """(body, ETag) of the object at ``uri``, or None if there is none."""
    bucket, key = split_s3_uri(uri)
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if _is_missing(err):
            return None
        raise
    return response["Body"].read(), response["ETag"]


def _put_json(s3, uri: str, payload: Dict[str, Any], **conditions: str) -> str:
    """PutObject of ``payload`` as indented JSON; ``conditions``: IfMatch / IfNoneMatch. Returns the ETag."""
    bucket, key = split_s3_uri(uri)
    body = json.dumps(payload, indent=2, sort_keys=True).encode("utf-8")
    response = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json", **conditions)
    return response.get("ETag", "")


def read_json(s3, uri: str) -> Optional[Dict[str, Any]]:
    """The JSON document at ``uri``, or None if there is no such object."""
    found = _get(s3, uri)
    return None if found is None else json.loads(found[0])


def write_json(s3, uri: str, payload: Dict[str, Any]) -> None:
    """Write ``payload`` to ``uri`` as indented, key-sorted JSON (unconditional overwrite)."""
    _put_json(s3, uri, payload)


def write_text(s3, uri: str, text: str, content_type: str = "text/plain") -> None:
    """Write ``text`` (UTF-8) to ``uri`` (unconditional overwrite)."""
    bucket, key = split_s3_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType=content_type)


def _list_keys(s3, uri: str) -> Iterator[str]:
    """Every key under the folder ``uri/`` (paginated)."""
    bucket, prefix = split_s3_uri(uri.rstrip("/") + "/")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield obj["Key"]


def _delete_prefix(s3, uri: str) -> int:
    """Delete every object under the folder ``uri/``; returns how many."""
    bucket, _ = split_s3_uri(uri)
    keys = list(_list_keys(s3, uri))
    for start in range(0, len(keys), _DELETE_BATCH):
        batch = keys[start : start + _DELETE_BATCH]
        response = s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
        )
        if response.get("Errors"):
            raise RuntimeError(f"could not delete under {uri}: {response['Errors'][:3]}")
    return len(keys)


def _utc(now: Optional[datetime]) -> datetime:
    # A naive datetime is taken as UTC (as Airflow's are), never as this machine's local time.
    now = now or datetime.now(timezone.utc)
    return now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)


def _iso(now: datetime) -> str:
    """``2024-01-31T02:03:04.123456Z``."""
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- versions ------------------------------------------------------------------------------------


def _check_ds(ds: Any) -> str:
    """``ds`` if it is a real YYYY-MM-DD date, else ValueError."""
    try:
        valid = datetime.strptime(ds, "%Y-%m-%d").strftime("%Y-%m-%d") == ds
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"not a YYYY-MM-DD logical date: {ds!r}")
    return ds


def version_id(ds: str, training_id: str) -> str:
    """``'<ds>_<token>'``, unique per training: ``training_id`` is the EMR cluster id that trained it
    (e.g. ``'j-2AB3XYZ'``); token = training_id with every char outside [A-Za-z0-9-] replaced by '-'.
    ValueError on a ds that is not a YYYY-MM-DD date or an empty id."""
    _check_ds(ds)
    if not training_id or not training_id.strip():
        raise ValueError("empty training id: a version needs the id of the training that made it")
    return f"{ds}_{re.sub(r'[^A-Za-z0-9-]', '-', training_id)}"


def _version_ds(version: Any) -> str:
    """The logical date of ``version``; ValueError if it is not a registry version id."""
    match = VERSION_RE.match(version) if isinstance(version, str) else None
    if match is None:
        raise ValueError(f"not a registry version (<YYYY-MM-DD>[_<token>]): {version!r}")
    return match.group("ds")


def register_version(
    s3,
    version_uri: str,
    sources: Dict[str, str],
    documents: Dict[str, dict],
    manifest: dict,
    *,
    now: Optional[datetime] = None,
) -> dict:
    """Write one version, fresh, exactly once.

    ``sources`` ({"model": run model URI, "recommendations": run served-lists URI}): every object under
    each prefix is copied to ``version_uri/<name>/``, relative keys kept. ``documents`` ({"metrics.json":
    {...}, "gate.json": {...}}) are written as JSON. Then ``_manifest.json`` = ``manifest`` +
    {"version_uri", "objects": {name: count}, "registered_at"}. If ``_manifest.json`` exists already,
    nothing is touched: returns {**existing, "registered": False}. Otherwise every object already under
    ``version_uri/`` is deleted first, so a retry never mixes parts of two attempts. ValueError if a source
    has no objects. Returns {**manifest_written, "registered": True}.
    """
    manifest_uri = _join(version_uri, MANIFEST)
    existing = read_json(s3, manifest_uri)
    if existing is not None:
        return {**existing, "registered": False}
    if MANIFEST in sources or MANIFEST in documents or set(sources) & set(documents):
        raise ValueError(f"source and document names must be distinct and not {MANIFEST}")

    # List (and check) every source before touching the version folder.
    listed: Dict[str, tuple[str, str, List[str]]] = {}
    for name, source_uri in sources.items():
        src_bucket, src_prefix = split_s3_uri(source_uri.rstrip("/") + "/")
        keys = list(_list_keys(s3, source_uri))
        if not keys:
            raise ValueError(f"no objects under {source_uri}: nothing to register as {name}")
        listed[name] = (src_bucket, src_prefix, keys)

    # No manifest means no complete version, only the leftovers of an attempt that died mid-copy.
    _delete_prefix(s3, version_uri)
    counts: Dict[str, int] = {}
    for name, (src_bucket, src_prefix, keys) in listed.items():
        dst_bucket, dst_prefix = split_s3_uri(_join(version_uri, name) + "/")
        for key in keys:
            # Single-request copy: up to 5 GB per object, far above any model or list part.
            s3.copy_object(
                Bucket=dst_bucket,
                Key=dst_prefix + key[len(src_prefix) :],
                CopySource={"Bucket": src_bucket, "Key": key},
            )
        counts[name] = len(keys)
    for name, payload in documents.items():
        write_json(s3, _join(version_uri, name), payload)

    written = {
        **manifest,
        "version_uri": version_uri.rstrip("/"),
        "objects": counts,
        "registered_at": _iso(_utc(now)),
    }
    try:
        # If-None-Match: a concurrent attempt of the same training that finished first keeps its manifest.
        _put_json(s3, manifest_uri, written, IfNoneMatch="*")
    except ClientError as err:
        if not _is_conflict(err):
            raise
        return {**(read_json(s3, manifest_uri) or written), "registered": False}
    return {**written, "registered": True}


def list_versions(s3, registry_root: str) -> List[dict]:
    """Every folder under ``versions/``, newest first (by ds, then registration time), each
    {"version", "ds", "uri", "complete": has _manifest.json, "registered_at": str or None}."""
    bucket, prefix = split_s3_uri(_join(registry_root, "versions") + "/")
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            version = common["Prefix"][len(prefix) :].rstrip("/")
            match = VERSION_RE.match(version)
            uri = f"s3://{bucket}/{common['Prefix'].rstrip('/')}"
            manifest = read_json(s3, _join(uri, MANIFEST))
            out.append(
                {
                    "version": version,
                    "ds": match.group("ds") if match else "",
                    "uri": uri,
                    "complete": manifest is not None,
                    "registered_at": (manifest or {}).get("registered_at"),
                }
            )
    out.sort(key=lambda v: (v["ds"], v["registered_at"] or "", v["version"]), reverse=True)
    return out


# --- the pointer ---------------------------------------------------------------------------------


def read_pointer(s3, latest_uri: str) -> Optional[Pointer]:
    """latest.json with its ETag, or None if absent. Old pointers (no "ds", "model_uri" instead of "model",
    no "recommendations") are normalised. ValueError if it is not a JSON object with a version id."""
    found = _get(s3, latest_uri)
    if found is None:
        return None
    body, etag = found
    try:
        doc = json.loads(body)
    except ValueError as err:
        raise ValueError(f"{latest_uri} is not JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{latest_uri} is not a JSON object")
    try:
        version_ds = _version_ds(doc.get("version"))
    except ValueError as err:
        raise ValueError(f"{latest_uri} has no usable version: {err}") from None
    model = doc["model"] if "model" in doc else doc.get("model_uri")
    if "recommendations" in doc:
        recommendations = doc["recommendations"]
    else:  # old layout: the served lists sat inside the model folder
        recommendations = _join(model, "recommendations") if model else None
    return Pointer(
        doc=doc,
        etag=etag,
        version=doc["version"],
        ds=doc.get("ds") or version_ds,
        model=model,
        recommendations=recommendations,
        metrics=doc.get("metrics") or {},
    )


def _history_uri(latest_uri: str, action: str, version: str, at: datetime) -> str:
    root = latest_uri.rstrip("/").rsplit("/", 1)[0]
    return _join(root, "history", f"{at.strftime('%Y%m%dT%H%M%S%fZ')}_{action}_{version}.json")


def _move(
    s3,
    latest_uri: str,
    build_doc,
    *,
    version: str,
    max_attempts: int,
    action: str,
    forward_only: bool,
    now: Optional[datetime],
) -> MoveResult:
    """The compare-and-set loop shared by move_latest and rollback. ``build_doc(current)`` makes the
    new document from the pointer just read (None if there is none)."""
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    if not _ACTION_RE.match(action):
        raise ValueError(f"action must be lower-case letters and '-': {action!r}")
    conflicts = 0
    sent: Optional[dict] = None  # the document of our last conditional write ...
    based_on: Optional[Pointer] = None  # ... and the pointer it was conditioned on

    def moved(doc: dict, previous: Optional[Pointer]) -> MoveResult:
        was = previous.version if previous else None
        at = _utc(now)
        write_json(s3, _history_uri(latest_uri, action, version, at), {**doc, "previous_version": was})
        reason = f"latest.json moved to {version} (was {was or 'absent'})"
        return MoveResult(True, reason, previous.doc if previous else None, conflicts)

    for _ in range(max_attempts):
        current = read_pointer(s3, latest_uri)
        if current is not None and sent is not None and current.doc == sent:
            # Our write landed but its response was lost, and botocore's retry of it met our own ETag.
            return moved(sent, based_on)
        doc = build_doc(current)
        if current is not None:
            if current.version == version:
                return MoveResult(False, f"latest.json already names {version}", current.doc, conflicts)
            if forward_only and current.ds > doc["ds"]:
                return MoveResult(
                    False,
                    f"production is {current.version} (ds {current.ds}), newer than {doc['ds']}: "
                    "latest.json left alone",
                    current.doc,
                    conflicts,
                )
        condition = {"IfMatch": current.etag} if current else {"IfNoneMatch": "*"}
        sent, based_on = doc, current
        try:
            _put_json(s3, latest_uri, doc, **condition)
        except ClientError as err:
            # A 404 on If-Match: the pointer was deleted after we read it. Either way, decide again.
            if _is_conflict(err) or (current is not None and _is_missing(err)):
                conflicts += 1
                continue
            raise
        return moved(doc, current)
    now_there = read_pointer(s3, latest_uri)
    raise RegistryConflict(
        f"could not move {latest_uri} to {version}: it changed under us {conflicts} times in "
        f"{max_attempts} attempts (now {now_there.version if now_there else 'absent'})"
    )


def move_latest(
    s3,
    latest_uri: str,
    pointer_doc: dict,
    *,
    max_attempts: int = 3,
    action: str = "promote",
    now: Optional[datetime] = None,
) -> MoveResult:
    """Point latest.json at ``pointer_doc`` (needs "version" and "ds"), only forward in logical date.

    Not moved if the current pointer's ds is later, or it names the same version. The write is
    conditional on the ETag read; on 412/409 the pointer is re-read and the decision taken again, at most
    ``max_attempts`` times in all, then RegistryConflict. A move writes a history record (time ``now``).
    """
    version = pointer_doc.get("version")
    _version_ds(version)
    _check_ds(pointer_doc.get("ds"))
    return _move(
        s3,
        latest_uri,
        lambda _current: pointer_doc,
        version=version,
        max_attempts=max_attempts,
        action=action,
        forward_only=True,
        now=now,
    )


def _target_pointer(s3, registry_root: str, version: str) -> dict:
    """The pointer document that made ``version`` production (from its manifest); ValueError if the
    version does not exist or is incomplete."""
    ds = _version_ds(version)
    version_uri = _join(registry_root, "versions", version)
    manifest = read_json(s3, _join(version_uri, MANIFEST))
    if manifest is None:
        raise ValueError(f"version {version} is unknown or incomplete: no {_join(version_uri, MANIFEST)}")
    if isinstance(manifest.get("pointer"), dict):
        doc = dict(manifest["pointer"])
        if doc.get("version") != version:
            raise ValueError(f"the manifest of {version} stores a pointer to {doc.get('version')!r}")
        return doc
    # Old layout: no stored pointer; the served lists sat inside the model folder.
    doc = {
        "version": version,
        "ds": ds,
        "model": _join(version_uri, "model"),
        "recommendations": _join(version_uri, "model", "recommendations"),
        "metrics": manifest.get("metrics") or {},
    }
    if manifest.get("run_id"):
        doc["run_id"] = manifest["run_id"]
    return doc


def rollback(
    s3,
    registry_root: str,
    version: str,
    *,
    by: str,
    reason: str,
    now: Optional[datetime] = None,
    max_attempts: int = 3,
) -> MoveResult:
    """Point latest.json back at an earlier, complete ``version`` (old or new layout), backwards in
    logical date if need be. ValueError if the version is unknown, incomplete or already current, or if
    ``by``/``reason`` is empty. Conditional on the ETag like move_latest; the new pointer is the version's
    own pointer document plus "rolled_back" {"from_version", "by", "reason", "at"} and "promoted_at"; a
    history record with action "rollback" is written."""
    if not by or not by.strip() or not reason or not reason.strip():
        raise ValueError("a rollback needs who (by) and why (reason)")
    latest_uri = _join(registry_root, LATEST)
    target = _target_pointer(s3, registry_root, version)
    current = read_pointer(s3, latest_uri)
    if current is not None and current.version == version:
        raise ValueError(f"latest.json already names {version}: nothing to roll back")
    at = _utc(now)

    def build(pointer: Optional[Pointer]) -> dict:
        rolled_back = {
            "from_version": pointer.version if pointer else None,
            "by": by,
            "reason": reason,
            "at": _iso(at),
        }
        return {**target, "rolled_back": rolled_back, "promoted_at": _iso(at)}

    return _move(
        s3,
        latest_uri,
        build,
        version=version,
        max_attempts=max_attempts,
        action="rollback",
        forward_only=False,
        now=at,
    )
