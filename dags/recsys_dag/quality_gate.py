"""The promotion decision: a pure function of the run's metrics, the production pointer and the config.

The candidate is the run's *evaluation* model (fitted on the training split, scored on the holdout).
Production is compared *paired*: evaluate scored production's configuration, refitted by train_cf on the
same training split, on the same users and held-out interactions, so neither side has seen what it is
scored on and the gate judges today's difference, never a stored number from another day's data.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, NamedTuple, Optional

from recsys_dag.config import PipelineConfig

# train_cf's production statuses whose lists evaluate scored (spark_jobs.common.production, which the
# DAG cannot import: it pulls in pyspark).
SCORED = ("refit", "same_config")


class GateDecision(NamedTuple):
    """``promote``: register the version; ``make_live``: also point ``latest.json`` at it (False for a
    backfill). ``reasons``: every rule checked, each starting PASS, FAIL or SKIP. ``numbers``: every
    number the rules used (gate.json shows them)."""

    promote: bool
    make_live: bool
    reasons: List[str]
    numbers: Dict[str, Any]


def _number(doc: Mapping[str, Any], *path: str) -> float:
    value: Any = doc
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            raise ValueError(f"metrics.json lacks {'.'.join(path)}")
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"metrics.json {'.'.join(path)} is not a finite number: {value!r}")
    return float(value)


def decide(
    metrics: Mapping[str, Any],
    production: Optional[Mapping[str, Any]],
    ds: str,
    cfg: PipelineConfig,
) -> GateDecision:
    """Promote only if every rule passes:

    - NDCG@k of the candidate >= ``min_ndcg``, and its margin over popularity (same split) >=
      ``min_margin_over_popularity``;
    - at least ``min_users_evaluated`` users and catalogue coverage >= ``min_coverage``;
    - paired against production (when there is one for this date or earlier): the mean per-user NDCG@k
      difference (candidate - production) >= ``-max_regression_vs_production``. The production that was
      scored must be the one ``latest.json`` names now, else the comparison is stale and the model is held.

    A production for a later date than ``ds`` makes this run a backfill: the version is registered, the
    paired check is skipped and ``latest.json`` is left alone (``make_live`` False).

    Args:
        metrics: evaluate's metrics.json (with its ``production`` block).
        production: the current pointer as ``{"version", "ds"}``, or None before the first promotion.
        ds: this run's logical date, YYYY-MM-DD.

    Raises ValueError when the candidate's metrics are missing or malformed: a gate failure, not a hold.
    """
    k = metrics.get("k") if isinstance(metrics, Mapping) else None
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"metrics.json has no valid k: {k!r}")
    key = f"ndcg@{k}"
    ndcg = _number(metrics, "model", key)
    popularity = _number(metrics, "popularity", key)
    coverage = _number(metrics, "model", "coverage")
    users = _number(metrics, "users_evaluated")
    numbers: Dict[str, Any] = {
        "k": k,
        "ndcg": ndcg,
        "popularity_ndcg": popularity,
        "margin_over_popularity": ndcg - popularity,
        "coverage": coverage,
        "users_evaluated": int(users),
        "min_ndcg": cfg.min_ndcg,
        "min_margin_over_popularity": cfg.min_margin_over_popularity,
        "min_users_evaluated": cfg.min_users_evaluated,
        "min_coverage": cfg.min_coverage,
        "max_regression_vs_production": cfg.max_regression_vs_production,
        "production_version": production.get("version") if production else None,
        "production_ds": production.get("ds") if production else None,
        "production_ndcg": None,
        "paired_ndcg_difference": None,
        "paired_standard_error": None,
        "paired_users": None,
    }
    checks = [
        (ndcg >= cfg.min_ndcg, f"{key} {ndcg:.4f} vs floor {cfg.min_ndcg:.4f}"),
        (
            ndcg - popularity >= cfg.min_margin_over_popularity,
            f"margin over popularity {ndcg - popularity:+.4f} (popularity {popularity:.4f}) "
            f"vs required {cfg.min_margin_over_popularity:+.4f}",
        ),
        (
            users >= cfg.min_users_evaluated,
            f"users evaluated {int(users)} vs minimum {cfg.min_users_evaluated}",
        ),
        (
            coverage >= cfg.min_coverage,
            f"catalogue coverage {coverage:.4f} vs minimum {cfg.min_coverage:.4f}",
        ),
    ]
    reasons = [("PASS " if ok else "FAIL ") + text for ok, text in checks]
    passed = all(ok for ok, _ in checks)
    make_live = True

    if production is None:
        reasons.append("PASS no production model yet")
    elif str(production.get("ds")) > ds:
        make_live = False
        reasons.append(
            f"SKIP paired check: production {production.get('version')} is for {production.get('ds')}, "
            f"later than {ds}; this backfill is registered and latest.json stays"
        )
    else:
        ok, text = _paired_check(metrics, production, key, cfg, numbers)
        passed = passed and ok
        reasons.append(("PASS " if ok else "FAIL ") + text)
    return GateDecision(passed, passed and make_live, reasons, numbers)


def _paired_check(metrics, production, key, cfg, numbers) -> tuple:
    """(ok, text) of the paired comparison with ``production``; fills ``numbers``."""
    block = metrics.get("production")
    version = production.get("version")
    if not isinstance(block, Mapping):
        return False, f"metrics.json has no comparison with production {version}"
    status = block.get("status")
    if status not in SCORED:
        return False, f"production {version} was not scored ({status}): {block.get('reason')}"
    if block.get("version") != version:
        return False, (
            f"the run scored production {block.get('version')}, but latest.json now names {version}: "
            "the comparison is stale (rerun the date)"
        )
    difference = _number(block, "paired", "mean_difference", key)
    numbers.update(
        production_ndcg=_number(block, "model", key),
        paired_ndcg_difference=difference,
        paired_standard_error=_number(block, "paired", "standard_error", key),
        paired_users=int(_number(block, "paired", "users")),
    )
    same = " (same configuration)" if status == "same_config" else ""
    return difference >= -cfg.max_regression_vs_production, (
        f"paired change vs production {version}{same} {difference:+.4f} "
        f"(production {numbers['production_ndcg']:.4f}, se {numbers['paired_standard_error']:.4f}, "
        f"{numbers['paired_users']} users) vs allowed regression {cfg.max_regression_vs_production:.4f}"
    )
