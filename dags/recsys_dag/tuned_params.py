"""Which model and feature values a nightly run trains with: its config's, or the tuning's winner's.

With ``params_from_tuning`` the nightly reads ``tuning/best.json`` once, before its cluster starts
(resolve_params), and every step renders from that one snapshot: a sweep publishing mid-run cannot give
build_features and train_cf different values.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional

from recsys_dag.tuning_grid import effective_params


def resolve(
    base: Mapping[str, Any], enabled: bool, best_uri: str, read_json: Callable[[str], Optional[dict]]
) -> Dict[str, Any]:
    """``{"values": {...TUNABLE...}, "source": {"from": "config" | "tuning", ...}}``.

    ``read_json(uri)`` returns the document or None if there is none. Without a best.json yet the config's
    values apply and ``source.reason`` says why; a best.json whose values are invalid raises ValueError
    (the run must not silently train something nobody chose).
    """
    if not enabled:
        return {"values": effective_params(base), "source": {"from": "config"}}
    best = read_json(best_uri)
    if best is None:
        return {
            "values": effective_params(base),
            "source": {
                "from": "config",
                "reason": f"params_from_tuning is set but {best_uri} does not exist yet (no sweep published)",
            },
        }
    try:
        values = effective_params(base, best["values"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{best_uri} is not a usable tuning result: {exc}") from None
    return {
        "values": values,
        "source": {
            "from": "tuning",
            "best": best_uri,
            "run": best.get("run"),
            "date": best.get("date"),
            "configuration": best.get("configuration"),
            "tuned": dict(best["values"]),
            "validation": {best.get("metric", "metric"): (best.get("metrics") or {}).get(best.get("metric"))},
        },
    }
