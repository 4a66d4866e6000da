"""A nightly run's record (``runs/dt=<ds>/run.json``): the cluster's timeline and cost estimate, and
the numbers the run produced, also sent as CloudWatch metrics. Pure functions, no AWS calls.

Cost is an **estimate**: (cluster end - ready) in hours x the hourly price of the requested instances
(``emr_configs/prices.json``: EC2 on-demand + EMR uplift). EMR also bills provisioning and bootstrap
(creation to ready), recorded beside it; DescribeCluster's NormalizedInstanceHours is a rounded
normalised unit, not instance-hours, and is not used.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from recsys_dag.cost import cluster_hourly

# CloudWatch: one namespace, one dimension (the pipeline). Every distinct dimension value is a metric of
# its own, billed monthly, so no run id or date is ever a dimension: the timestamp says which run.
NAMESPACE = "Recsys/Pipeline"
PIPELINE_DIMENSION = "Pipeline"  # its value: the DAG id
PROMOTED = "ModelPromoted"  # 1 when latest.json moved to this run's model, else 0 (the stale-model signal)


def cluster_cost(
    cluster: Optional[Mapping[str, Any]],
    groups: Sequence[Tuple[str, int]],
    prices: Mapping[str, Any],
    region: Optional[str],
) -> Dict[str, Any]:
    """The cluster's timeline and estimated cost from DescribeCluster's ``Cluster``; ``groups``:
    (instance type, count) as requested. Minutes and cost are None while the cluster has not ended."""
    price = cluster_hourly(dict(prices), list(groups), region)
    if not cluster:
        return {"cluster_id": None, "state": None, "minutes": None, "usd": None, **price}
    timeline = (cluster.get("Status") or {}).get("Timeline") or {}
    created, ready, ended = (timeline.get(k) for k in ("CreationDateTime", "ReadyDateTime", "EndDateTime"))

    def minutes(start: Optional[dt.datetime], end: Optional[dt.datetime]) -> Optional[float]:
        return round((end - start).total_seconds() / 60.0, 2) if start and end else None

    running = minutes(ready or created, ended)
    usd = None
    if running is not None and price["usd_per_hour"] is not None:
        usd = round(running / 60.0 * price["usd_per_hour"], 4)
    return {
        "cluster_id": cluster.get("Id"),
        "state": (cluster.get("Status") or {}).get("State"),
        "instances": [{"type": kind, "count": count} for kind, count in groups],
        "created_at": created.isoformat() if created else None,
        "ready_at": ready.isoformat() if ready else None,
        "ended_at": ended.isoformat() if ended else None,
        "minutes": running,  # ready (or, if never ready, created) to end
        "provisioning_minutes": minutes(created, ready),  # billed too, not in the estimate
        "usd": usd,
        **price,
        "estimate": "an estimate from on-demand list prices (emr_configs/prices.json), not a bill",
    }


def _get(doc: Optional[Mapping[str, Any]], *path: str) -> Any:
    for key in path:
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(key)
    return doc


def run_metrics(
    stats: Optional[Mapping[str, Any]],
    features: Optional[Mapping[str, Any]],
    training: Optional[Mapping[str, Any]],
    gate: Optional[Mapping[str, Any]],
    promoted: bool,
    cost: Mapping[str, Any],
) -> List[Tuple[str, float, str]]:
    """(metric name, value, CloudWatch unit) of what the run has; a number a failed run never reached
    is left out rather than sent as 0. ``ModelPromoted`` is always there."""
    candidates = [
        ("LinesRead", _get(stats, "lines"), "Count"),
        ("LinesAccepted", _get(stats, "accepted"), "Count"),
        ("LinesRejected", _get(stats, "rejected"), "Count"),
        ("RejectRatio", _get(stats, "reject_ratio"), "None"),
        ("Users", _get(features, "users"), "Count"),
        ("Items", _get(features, "items"), "Count"),
        ("Interactions", _get(features, "pairs"), "Count"),
        ("FitSeconds", _get(training, "fit_seconds"), "Seconds"),
        # As the gate compared them (gate.json): candidate, popularity, production refitted on the split.
        ("CandidateNdcg", _get(gate, "ndcg"), "None"),
        ("PopularityNdcg", _get(gate, "popularity_ndcg"), "None"),
        ("ProductionNdcg", _get(gate, "production_ndcg"), "None"),
        ("ClusterMinutes", cost.get("minutes"), "None"),
        ("EstimatedCostUSD", cost.get("usd"), "None"),
    ]
    out = [(name, float(value), unit) for name, value, unit in candidates if _number(value)]
    out.append((PROMOTED, 1.0 if promoted else 0.0, "Count"))
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def metric_data(
    metrics: Sequence[Tuple[str, float, str]], dag_id: str, at: dt.datetime
) -> List[Dict[str, Any]]:
    """``put_metric_data``'s MetricData for ``metrics`` (dimension Pipeline = ``dag_id``)."""
    return [
        {
            "MetricName": name,
            "Dimensions": [{"Name": PIPELINE_DIMENSION, "Value": dag_id}],
            "Timestamp": at,
            "Value": value,
            "Unit": unit,
        }
        for name, value, unit in metrics
    ]


def cost_line(estimate: Mapping[str, Any]) -> str:
    """The cost part of the run summary, saying it is an estimate."""
    if estimate.get("usd") is None:
        return "cluster cost: unknown (" + ("the cluster had not ended" if estimate else "no cluster") + ")"
    return (
        f"cluster {estimate['minutes']:.1f} min, estimated USD {estimate['usd']:.4f} "
        f"(on-demand list prices, emr_configs/prices.json)"
    )
