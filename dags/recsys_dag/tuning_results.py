"""A sweep's results: one row per configuration, the winner by the fixed rule, and the leaderboard
documents (JSON and Markdown) and ``best.json``. Pure functions (no Airflow or AWS imports)."""

from __future__ import annotations

import json
import math
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from recsys_dag.cost import share_of_cluster


def steps_by_name(pages: Iterable[Sequence[Mapping[str, Any]]]) -> Dict[str, Dict[str, Any]]:
    """ListSteps pages -> step name -> ``{"id", "state", "seconds", "reason"}`` of the newest step of that
    name (ListSteps lists newest first); seconds from EMR's own timeline (start to end), None if unknown."""
    out: Dict[str, Dict[str, Any]] = {}
    for page in pages:
        for step in page:
            if step["Name"] in out:
                continue
            status = step.get("Status") or {}
            timeline = status.get("Timeline") or {}
            start, end = timeline.get("StartDateTime"), timeline.get("EndDateTime")
            details = status.get("FailureDetails") or {}
            out[step["Name"]] = {
                "id": step.get("Id"),
                "state": status.get("State"),
                "seconds": round((end - start).total_seconds(), 1) if start and end else None,
                "reason": " ".join(filter(None, (details.get("Reason"), details.get("Message")))) or None,
            }
    return out


def trial_row(
    trial: Mapping[str, Any], result: Optional[Mapping[str, Any]], step: Optional[Mapping[str, Any]], k: int
) -> Dict[str, Any]:
    """One configuration's row.

    Args:
        trial: the plan's configuration (name, values, features, result URI).
        result: tune_trial's JSON, or None if it wrote none.
        step: ``{"state", "seconds", "reason"}`` of its EMR step on this sweep's cluster, or None if the
            step was never added. Only a COMPLETED step's result counts: a result left by an earlier
            attempt of the same run is not this cluster's.
    """
    metric = f"ndcg@{k}"
    row: Dict[str, Any] = {
        "name": trial["name"],
        "index": trial["index"],
        "values": dict(trial["values"]),
        "features": trial["features"],
        "status": "failed",
        "reason": None,
        "metrics": {},
        "standard_error": {},
        "popularity": {},
        "validation_users": None,
        "fit_seconds": None,
        "step_seconds": (step or {}).get("seconds"),
        "cost_usd": None,
    }
    if step is None:
        row["reason"] = "its step was never added (an earlier task failed)"
    elif step.get("state") != "COMPLETED":
        row["reason"] = f"step {step.get('state')}" + (f": {step['reason']}" if step.get("reason") else "")
    elif result is None:
        row["reason"] = f"the step completed but wrote no result at {trial['result']}"
    elif not _valid_result(result, metric):
        row["reason"] = f"malformed result at {trial['result']} (no finite {metric} and standard error)"
    else:
        row.update(
            status="ok",
            metrics=dict(result["metrics"]),
            standard_error=dict(result["standard_error"]),
            popularity=dict(result.get("popularity") or {}),
            validation_users=(result.get("validation") or {}).get("users"),
            fit_seconds=(result.get("seconds") or {}).get("fit"),
        )
    return row


def _valid_result(result: Mapping[str, Any], metric: str) -> bool:
    try:
        values = (float(result["metrics"][metric]), float(result["standard_error"][metric]))
    except (KeyError, TypeError, ValueError):
        return False
    return result.get("status") == "ok" and all(math.isfinite(v) for v in values)


def select(rows: Sequence[Mapping[str, Any]], k: int) -> Tuple[Optional[str], Optional[str], List[str]]:
    """(winner, best by NDCG, names tied with the best) under tuning_plan.SELECTION_RULE; winner None
    when no configuration succeeded."""
    metric = f"ndcg@{k}"
    ok = [row for row in rows if row["status"] == "ok"]
    if not ok:
        return None, None, []
    best = max(ok, key=lambda row: (row["metrics"][metric], -row["index"]))
    threshold = best["metrics"][metric] - best["standard_error"][metric]
    tied = [row for row in ok if row["metrics"][metric] >= threshold]
    winner = min(
        tied,
        key=lambda row: (
            row["fit_seconds"] if row["fit_seconds"] is not None else math.inf,
            -row["metrics"][metric],
            row["index"],
        ),
    )
    return winner["name"], best["name"], [row["name"] for row in tied]


def leaderboard(
    plan: Mapping[str, Any],
    rows: Sequence[Dict[str, Any]],
    price: Mapping[str, Any],
    context: Mapping[str, Any],
) -> Dict[str, Any]:
    """The leaderboard document: rows ranked (succeeded by NDCG, then failed), the winner and the rule.

    ``price``: :func:`recsys_dag.cost.cluster_hourly`'s document; ``context``: dag run id, cluster id.
    """
    k = plan["k"]
    metric = f"ndcg@{k}"
    for row in rows:
        row["cost_usd"] = share_of_cluster(
            row["step_seconds"], price.get("usd_per_hour"), plan["parallelism"]
        )
    winner, best, tied = select(rows, k)
    ranked = sorted(
        rows,
        key=lambda row: (row["status"] != "ok", -(row["metrics"].get(metric) or 0.0), row["index"]),
    )
    for position, row in enumerate(ranked, start=1):
        row["rank"] = position
        row["tied_with_best"] = row["name"] in tied
        row["winner"] = row["name"] == winner
    return {
        "run": plan["run"],
        "date": plan["date"],
        **dict(context),
        "k": k,
        "metric": metric,
        "rule": plan["rule"],
        "validation_fraction": plan["validation_fraction"],
        "parallelism": plan["parallelism"],
        "price": dict(price),
        "winner": winner,
        "best_by_metric": best,
        "tied_with_best": tied,
        "failed": [row["name"] for row in ranked if row["status"] != "ok"],
        "configurations": ranked,
    }


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(board: Mapping[str, Any]) -> str:
    """The leaderboard as a Markdown page."""
    metric, k = board["metric"], board["k"]
    recall = f"recall@{k}"
    varied = sorted(
        {key for row in board["configurations"] for key in row["values"]}
        - {key for key in board["configurations"][0]["values"] if _constant(board, key)}
    ) or ["factors"]
    lines = [
        f"# Tuning leaderboard {board['run']}",
        "",
        f"Data date {board['date']}; validation split: each user's newest {board['validation_fraction']:.0%}"
        " of their training items (never the nightly holdout).",
        f"Rule: {board['rule']}.",
        f"Winner: **{board['winner'] or 'none (no configuration succeeded)'}**"
        + (f" (best {metric}: {board['best_by_metric']})" if board["best_by_metric"] else ""),
        "",
        "| rank | configuration | "
        + " | ".join(varied)
        + f" | {metric} ± se | {recall} | popularity {metric}"
        " | fit s | step s | cost USD | |",
        "|" + "---|" * (len(varied) + 9),
    ]
    for row in board["configurations"]:
        m, se = row["metrics"], row["standard_error"]
        score = f"{_fmt(m.get(metric))} ± {_fmt(se.get(metric))}" if row["status"] == "ok" else "failed"
        mark = "winner" if row["winner"] else ("tied" if row["tied_with_best"] else "")
        if row["status"] != "ok":
            mark = row["reason"] or "failed"
        lines.append(
            f"| {row['rank']} | {row['name']} | "
            + " | ".join(_fmt(row["values"].get(key), 3) for key in varied)
            + f" | {score} | {_fmt(m.get(recall))} | {_fmt(row['popularity'].get(metric))} | "
            f"{_fmt(row['fit_seconds'], 1)} | {_fmt(row['step_seconds'], 0)} | {_fmt(row['cost_usd'])} "
            f"| {mark} |"
        )
    price = board["price"]
    lines += [
        "",
        f"Cost = step seconds x cluster price ({_fmt(price.get('usd_per_hour'), 3)} USD/h) / "
        f"{board['parallelism']} steps at once. {price.get('note', '')}",
    ]
    return "\n".join(lines) + "\n"


def _constant(board: Mapping[str, Any], key: str) -> bool:
    return len({repr(row["values"].get(key)) for row in board["configurations"]}) == 1


def best_document(board: Mapping[str, Any], leaderboard_uri: str, published_at: str) -> Dict[str, Any]:
    """``tuning/best.json``: the winner's values, what they scored, and where the evidence is."""
    winner = next(row for row in board["configurations"] if row["winner"])
    return {
        "run": board["run"],
        "date": board["date"],
        "dag_run_id": board.get("dag_run_id"),
        "configuration": winner["name"],
        "values": winner["values"],
        "metric": board["metric"],
        "metrics": winner["metrics"],
        "standard_error": winner["standard_error"],
        "fit_seconds": winner["fit_seconds"],
        "rule": board["rule"],
        "leaderboard": leaderboard_uri,
        "published_at": published_at,
    }


def summary_line(board: Mapping[str, Any], best: Mapping[str, Any]) -> str:
    """One line for the alert topic: the winner, its score, how many configurations ran and failed."""
    metric = board["metric"]
    done = len(board["configurations"]) - len(board["failed"])
    line = (
        f"recsys_tuning {board['date']} ({board['run']}): winner {best['configuration']} "
        f"{metric}={best['metrics'][metric]:.4f} ± {best['standard_error'][metric]:.4f} on validation; "
        f"{done} of {len(board['configurations'])} configurations succeeded"
    )
    if board["failed"]:
        line += f"; failed: {', '.join(board['failed'])}"
    return line + f". Values: {json.dumps(best['values'], sort_keys=True)}"
