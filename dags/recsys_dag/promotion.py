"""What promotion writes and says, as pure functions: the pointer document and the run's summary line."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional


def pointer_document(
    *,
    version: str,
    ds: str,
    run_id: str,
    version_uri: str,
    metrics: Optional[Mapping[str, Any]],
    training: Optional[Mapping[str, Any]],
    features: Optional[Mapping[str, Any]],
    code_version: str,
    cluster_id: str,
) -> Dict[str, Any]:
    """The ``latest.json`` document that names one registered version (``promoted_at`` is added when the
    pointer moves). ``training`` is train_cf's params.json, ``features`` build_features' manifest.json.

    Raises ValueError when one of the run's documents is missing: a version is whole or not promoted.
    """
    for name, doc in (("metrics.json", metrics), ("params.json", training), ("manifest.json", features)):
        if not isinstance(doc, Mapping):
            raise ValueError(f"the run's {name} is missing: nothing consistent to promote")
    base = version_uri.rstrip("/")
    return {
        "version": version,
        "ds": ds,
        "run_id": run_id,
        "model": f"{base}/model",
        "recommendations": f"{base}/recommendations",
        "metrics": dict(metrics),
        "engine": training.get("engine"),
        "params": training.get("params"),
        "serve_k": training.get("serve_k"),
        "served_lists": training.get("served_lists"),
        "lineage": {
            "code_version": code_version,
            "cluster_id": cluster_id,
            "partitions_read": features.get("partitions_read"),
            "partitions_missing": features.get("partitions_missing"),
            "window": features.get("window"),
        },
    }


def summary_line(
    dag_id: str, ds: str, decision: Mapping[str, Any], promoted: Optional[Mapping[str, Any]]
) -> str:
    """One line for the run summary: outcome, the gate's numbers, and who gets which lists."""
    if promoted and promoted["live"]:
        outcome = f"promoted version {promoted['version']}"
    elif promoted and promoted["already_live"]:
        outcome = f"version {promoted['version']} already live (retry)"
    elif promoted:
        outcome = f"registered version {promoted['version']}, not live: {promoted['note']}"
    else:
        outcome = "held: " + "; ".join(r for r in decision["reasons"] if r.startswith("FAIL"))
    parts = [
        f"{dag_id} {ds}: {outcome}",
        f"ndcg@{decision['k']}={decision['ndcg']:.4f} popularity={decision['popularity_ndcg']:.4f} "
        f"users={decision['users_evaluated']}",
    ]
    if decision.get("paired_ndcg_difference") is not None:
        parts.append(
            f"paired vs production {decision['production_version']} {decision['paired_ndcg_difference']:+.4f}"
        )
    lists = (promoted or {}).get("served_lists")
    if lists:
        parts.append(
            f"served lists: {lists['users']} users ({lists['model_users']} model, "
            f"{lists['popularity_users']} popularity)"
        )
    serving = (promoted or {}).get("serving")
    if serving:
        moved = "switched to" if serving["moved"] else "left at"
        parts.append(f"serving table {serving['table']} {moved} {serving['live']}")
    return "; ".join(parts)
