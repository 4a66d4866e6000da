"""Cost estimates from the price table in ``emr_configs/prices.json`` (EC2 on-demand + EMR uplift).

An estimate, never a bill: the table's ``description`` and ``source`` say what it leaves out and where
the numbers come from, and every estimate carries them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple


def load_prices(path: Path) -> Dict[str, Any]:
    """The price table; ValueError if it lacks a section."""
    table = json.loads(Path(path).read_text())
    for key in ("source", "region", "currency", "instance_types"):
        if key not in table:
            raise ValueError(f"{path} lacks {key!r}")
    return table


def cluster_hourly(prices: Dict[str, Any], groups: Sequence[Tuple[str, int]], region: Optional[str]) -> Dict:
    """USD per hour of a cluster of ``groups`` ((instance type, count), ...): ``{"usd_per_hour": float or
    None, "note": str}``; None when an instance type is not in the table (the note names it)."""
    per_type = prices["instance_types"]
    unknown = sorted({kind for kind, _ in groups if kind not in per_type})
    notes = [f"estimate from {prices['region']} on-demand prices: {prices['source']}"]
    if region and region != prices["region"]:
        notes.append(f"the cluster runs in {region}, the table is for {prices['region']}")
    if unknown:
        notes.append(f"no price for {', '.join(unknown)}: add it to emr_configs/prices.json")
        return {"usd_per_hour": None, "note": "; ".join(notes)}
    total = sum(count * (per_type[kind]["ec2"] + per_type[kind]["emr"]) for kind, count in groups)
    return {"usd_per_hour": round(total, 6), "note": "; ".join(notes)}


def share_of_cluster(
    seconds: Optional[float], usd_per_hour: Optional[float], concurrency: int
) -> Optional[float]:
    """USD of ``seconds`` of a step that shares the cluster with ``concurrency - 1`` others."""
    if seconds is None or usd_per_hour is None:
        return None
    return round(seconds / 3600.0 * usd_per_hour / max(1, concurrency), 6)
