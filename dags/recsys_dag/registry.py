"""The model registry on S3: versioned copies of a run's artefacts and an atomic ``latest`` pointer.

Layout: ``<registry>/versions/<version>/{model/..., metrics.json, _manifest.json}`` and
``<registry>/latest.json``. Readers follow ``latest.json``; it is written only after every object of the
version is in place, and a single S3 PUT is atomic, so a reader never sees half a model. The version's
``_manifest.json`` comes after the pointer and marks the promotion as done: a run that died in between
is completed by its rerun instead of being skipped.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

from recsys_dag.locations import split_s3_uri

MANIFEST = "_manifest.json"


def read_json(s3_hook, uri: str) -> Optional[Dict[str, Any]]:
    """The JSON document at ``uri``, or None if there is no such object."""
    bucket, key = split_s3_uri(uri)
    if not s3_hook.check_for_key(key, bucket_name=bucket):
        return None
    return json.loads(s3_hook.read_key(key, bucket_name=bucket))


def write_json(s3_hook, uri: str, payload: Dict[str, Any]) -> None:
    bucket, key = split_s3_uri(uri)
    s3_hook.load_string(json.dumps(payload, indent=2, sort_keys=True), key, bucket_name=bucket, replace=True)


def copy_prefix(s3_hook, source_uri: str, target_uri: str) -> int:
    """Copy every object under ``source_uri/`` to the same relative key under ``target_uri/``."""
    src_bucket, src_prefix = split_s3_uri(source_uri.rstrip("/") + "/")
    dst_bucket, dst_prefix = split_s3_uri(target_uri.rstrip("/") + "/")
    keys = s3_hook.list_keys(bucket_name=src_bucket, prefix=src_prefix) or []
    for key in keys:
        s3_hook.copy_object(
            source_bucket_key=key,
            dest_bucket_key=dst_prefix + key[len(src_prefix) :],
            source_bucket_name=src_bucket,
            dest_bucket_name=dst_bucket,
        )
    return len(keys)


def promote(
    s3_hook, version: str, model_uri: str, metrics_uri: str, version_uri: str, latest_uri: str, run_id: str
) -> Dict[str, Any]:
    """Copy the run's model and metrics into ``version_uri``, then point ``latest_uri`` at it.

    Idempotent per version: if the version's manifest already exists (a rerun of the same date), nothing
    is copied again and ``latest`` is left as it is. Returns the manifest with ``promoted`` True/False.
    """
    manifest_uri = version_uri.rstrip("/") + "/" + MANIFEST
    existing = read_json(s3_hook, manifest_uri)
    if existing is not None:
        return {**existing, "promoted": False, "note": f"version {version} was already promoted"}
    objects = copy_prefix(s3_hook, model_uri, version_uri.rstrip("/") + "/model")
    if objects == 0:
        raise ValueError(f"no model objects under {model_uri}: nothing to promote")
    metrics = read_json(s3_hook, metrics_uri)
    if metrics is None:
        raise ValueError(f"no metrics at {metrics_uri}")
    write_json(s3_hook, version_uri.rstrip("/") + "/metrics.json", metrics)
    manifest = {
        "version": version,
        "uri": version_uri,
        "model_uri": version_uri.rstrip("/") + "/model",
        "metrics": metrics,
        "objects": objects,
        "run_id": run_id,
        "source": model_uri,
    }
    write_json(s3_hook, latest_uri, manifest)  # the pointer flips only once the version is whole
    write_json(s3_hook, manifest_uri, manifest)
    return {**manifest, "promoted": True}
