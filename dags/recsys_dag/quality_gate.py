"""The promotion decision, as a pure function of the candidate's and production's metrics."""

from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Optional

from recsys_dag.config import PipelineConfig


class GateDecision(NamedTuple):
    """``promote`` and the human-readable reasons behind it (each rule checked, pass or fail)."""

    promote: bool
    reasons: List[str]
    ndcg: float
    popularity_ndcg: float
    production_ndcg: Optional[float]


def decide(
    metrics: Dict[str, Any], production: Optional[Dict[str, Any]], cfg: PipelineConfig
) -> GateDecision:
    """Promote only if NDCG@k clears ``min_ndcg``, beats popularity by ``min_margin_over_popularity``,
    and is at most ``max_regression_vs_production`` below the current production model (if any).

    ``metrics`` is evaluate's metrics.json; ``production`` the metrics.json of the model now in
    ``latest`` (None before the first promotion). Missing or malformed metrics raise ValueError.
    """
    key = f"ndcg@{metrics['k']}"
    try:
        ndcg = float(metrics["model"][key])
        popularity = float(metrics["popularity"][key])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"metrics.json lacks {key} for model or popularity: {exc}") from None
    checks = [
        (ndcg >= cfg.min_ndcg, f"{key} {ndcg:.4f} vs floor {cfg.min_ndcg:.4f}"),
        (
            ndcg - popularity >= cfg.min_margin_over_popularity,
            f"margin over popularity {ndcg - popularity:+.4f} (popularity {popularity:.4f}) "
            f"vs required {cfg.min_margin_over_popularity:+.4f}",
        ),
    ]
    production_ndcg = None
    if production is not None:
        production_ndcg = float(production["model"].get(key, production["model"].get("ndcg@10", 0.0)))
        checks.append(
            (
                production_ndcg - ndcg <= cfg.max_regression_vs_production,
                f"change vs production {ndcg - production_ndcg:+.4f} (production {production_ndcg:.4f}) "
                f"vs allowed regression {cfg.max_regression_vs_production:.4f}",
            )
        )
    else:
        checks.append((True, "no production model yet"))
    reasons = [("PASS " if ok else "FAIL ") + text for ok, text in checks]
    return GateDecision(all(ok for ok, _ in checks), reasons, ndcg, popularity, production_ndcg)
