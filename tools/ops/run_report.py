"""The nightly runs' history as one self-contained HTML page with a plot: what ``make report`` does.

    python -m tools.ops.run_report [--endpoint-url URL] [--output var/report/index.html]
    python -m tools.ops.run_report --local [--endpoint-url URL]   # the local stack, make run's config

Reads, from the artefact bucket of the DAG configuration in force (``AIRFLOW_VAR_RECSYS_TRAINING_CONFIG``;
``--local``: make run's local configuration), every ``runs/dt=<ds>/`` folder's ``run.json`` and
``gate.json`` (and, for a run that never reached the gate, its jobs' outcome records), and the model
registry (``latest.json``, each version's ``_manifest.json``). One row per run date: NDCG@k of the
candidate, production and popularity as the gate compared them, reject ratio, estimated cost, cluster
minutes, promoted / held / backfill / failed, the version it registered. Writes ``index.html`` (from
``tools/ops/templates/run_report.html.j2``, the plot embedded) and ``runs.png`` beside it; prints the path.

A number a run never reached is a gap, never a 0. A record that is not JSON, not an object, or has a
malformed number is listed with the reason; it never stops the report. Uses the default AWS credential
chain; needs s3:ListBucket and s3:GetObject on the bucket's ``runs/`` and ``registry/`` prefixes. Exits 1
with a one-line error when S3 cannot be listed (credentials, permissions, endpoint, missing bucket).
Run folders expire after ``retention_runs_days`` (``make retention``), so the page covers that window.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "dags") not in sys.path:
    sys.path.insert(0, str(ROOT / "dags"))  # recsys_dag, as Airflow imports it from its DAGs folder

from recsys_dag import registry  # noqa: E402
from recsys_dag.config import PipelineConfig  # noqa: E402
from recsys_dag.locations import JOBS, registry_locations, run_locations, s3_uri, split_s3_uri  # noqa: E402

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "run_report.html.j2"
DEFAULT_OUTPUT = ROOT / "var" / "report" / "index.html"
PLOT_NAME = "runs.png"
_RUN_FOLDER = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")

# What a run came to, in the order the page explains them.
STATUSES = {
    "promoted": "the gate passed and latest.json moved to this run's model",
    "backfill": "the gate passed; registered, but a later date is live, so latest.json stayed",
    "held": "the gate held the model (its FAIL rules in the note); production unchanged",
    "failed": "the run failed before or during the gate or the promotion (the job's reason if recorded)",
    "incomplete": "no run.json yet: the run is still going, or record_run failed",
    "unreadable": "the run's records could not be read (see the note)",
}


# --- reading one document, pure -------------------------------------------------------------------


def parse_record(name: str, body: Optional[bytes]) -> Tuple[Optional[dict], Optional[str]]:
    """(document, None), (None, None) when there is none, or (None, reason) when ``body`` is not a UTF-8
    JSON object."""
    if body is None:
        return None, None
    try:
        doc = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as err:
        return None, f"{name}: not UTF-8 ({err.reason} at byte {err.start})"
    except ValueError as err:
        return None, f"{name}: not JSON ({err})"
    if not isinstance(doc, dict):
        return None, f"{name}: not a JSON object (a {type(doc).__name__})"
    return doc, None


def _number(value: Any) -> Optional[float]:
    """A finite int/float as float, else None (bools, strings, NaN and missing are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# --- one row per run date, pure -------------------------------------------------------------------


@dataclass
class RunRecords:
    """What was read for one run date: run.json and gate.json (None when absent or unreadable), the jobs'
    outcome records (only read for a run without a gate.json) and the reasons a record was unreadable."""

    ds: str
    run: Optional[dict] = None
    gate: Optional[dict] = None
    outcomes: Dict[str, dict] = field(default_factory=dict)
    problems: List[str] = field(default_factory=list)


def _pick(problems: List[str], sources: Sequence[Tuple[str, Mapping[str, Any], str]]) -> Optional[float]:
    """The first number found among (document name, document, key); a value that is there but is not a
    number is a problem, not a 0."""
    for name, doc, key in sources:
        if key not in doc or doc[key] is None:
            continue
        value = _number(doc[key])
        if value is None:
            problems.append(f"{name}: {key} is not a number: {doc[key]!r}")
            continue
        return value
    return None


def _minutes_between(start: Any, end: Any) -> Optional[float]:
    try:
        started, ended = dt.datetime.fromisoformat(str(start)), dt.datetime.fromisoformat(str(end))
        return round((ended - started).total_seconds() / 60.0, 2)
    except (TypeError, ValueError):
        return None


def _failure_reason(outcomes: Mapping[str, Mapping[str, Any]]) -> Optional[str]:
    for job in JOBS:
        outcome = outcomes.get(job) or {}
        if outcome.get("status") == "failed":
            error = _mapping(outcome.get("error"))
            return str(outcome.get("reason") or error.get("message") or f"{job} failed (no reason recorded)")
    return None


def build_row(
    records: RunRecords, versions_by_run: Mapping[str, str], live_version: Optional[str] = None
) -> Dict[str, Any]:
    """The report's row for one run date. Numbers come from run.json's ``metrics`` (what was sent to
    CloudWatch, the gate's numbers among them) and else from gate.json / run.json's ``cost``; a number the
    run never reached is None. ``versions_by_run``: run_id -> the registry version it registered."""
    problems = list(records.problems)
    run, gate = records.run, records.gate
    metrics = _mapping((run or {}).get("metrics"))
    if run is not None and "metrics" in run and not isinstance(run.get("metrics"), Mapping):
        problems.append(f"run.json: metrics is not an object: {run.get('metrics')!r}"[:200])
    cost = _mapping((run or {}).get("cost"))
    g = gate or {}
    m = ("run.json", metrics)
    row: Dict[str, Any] = {
        "ds": records.ds,
        "run_id": (run or {}).get("run_id") or g.get("run_id"),
        "k": g.get("k") if isinstance(g.get("k"), int) and not isinstance(g.get("k"), bool) else None,
        "candidate_ndcg": _pick(problems, [(*m, "CandidateNdcg"), ("gate.json", g, "ndcg")]),
        "production_ndcg": _pick(problems, [(*m, "ProductionNdcg"), ("gate.json", g, "production_ndcg")]),
        "popularity_ndcg": _pick(problems, [(*m, "PopularityNdcg"), ("gate.json", g, "popularity_ndcg")]),
        "paired_difference": _pick(problems, [("gate.json", g, "paired_ndcg_difference")]),
        "production_version": g.get("production_version"),
        "reject_ratio": _pick(problems, [(*m, "RejectRatio")]),
        "lines_read": _pick(problems, [(*m, "LinesRead")]),
        "users": _pick(problems, [(*m, "Users")]),
        "items": _pick(problems, [(*m, "Items")]),
        "fit_seconds": _pick(problems, [(*m, "FitSeconds")]),
        "cluster_minutes": _pick(problems, [(*m, "ClusterMinutes"), ("run.json cost", cost, "minutes")]),
        "provisioning_minutes": _pick(problems, [("run.json cost", cost, "provisioning_minutes")]),
        "cost_usd": _pick(problems, [(*m, "EstimatedCostUSD"), ("run.json cost", cost, "usd")]),
        "cluster_wall_minutes": _minutes_between(cost.get("created_at"), cost.get("ended_at")),
        "cluster_id": cost.get("cluster_id"),
    }
    row["version"] = versions_by_run.get(row["run_id"]) if row["run_id"] else None
    row["live"] = bool(row["version"]) and row["version"] == live_version
    row["status"], row["note"] = _status(records, run, g, row["version"])
    row["problems"] = problems
    return row


def _status(records: RunRecords, run: Optional[dict], gate: Mapping[str, Any], version: Optional[str]):
    fails = "; ".join(r for r in gate.get("reasons") or [] if isinstance(r, str) and r.startswith("FAIL"))
    skips = "; ".join(r for r in gate.get("reasons") or [] if isinstance(r, str) and r.startswith("SKIP"))
    if run is not None and run.get("promoted") is True:
        return "promoted", ""
    bad_run = any(p.startswith("run.json:") for p in records.problems)
    bad_gate = any(p.startswith("gate.json:") for p in records.problems)
    if gate:
        if gate.get("promote") is False:
            return "held", fails or "held (no FAIL rule recorded)"
        if gate.get("promote") is True and gate.get("make_live") is False:
            return "backfill", skips or "registered, not made live"
        if run is None:
            if bad_run:
                return "unreadable", "run.json unreadable; the gate's numbers are shown"
            return "incomplete", "no run.json: the run is still going, or record_run failed"
        if gate.get("promote") is True:
            where = f"version {version} registered" if version else "no version registered"
            return "failed", f"the gate passed but latest.json did not move ({where}; see promote_model)"
        return "unreadable", "gate.json has no promote decision"
    if bad_gate:
        return "unreadable", "gate.json unreadable: promoted or held is unknown"
    if run is None:
        if bad_run:
            return "unreadable", "run.json unreadable and no gate.json"
        return "incomplete", "no run.json and no gate.json: the run is still going, or failed early"
    reason = _failure_reason(records.outcomes)
    return "failed", reason or "no gate.json: the run ended before the quality gate"


def version_index(manifests: Mapping[str, Optional[Mapping[str, Any]]]) -> Dict[str, str]:
    """run_id -> version from the complete versions' manifests (a run registers at most one version;
    were there two, the last in sort order wins, so the result never depends on listing order)."""
    out: Dict[str, str] = {}
    for version in sorted(manifests):
        run_id = (manifests[version] or {}).get("run_id")
        if isinstance(run_id, str) and run_id:
            out[run_id] = version
    return out


def build_rows(
    all_records: Iterable[RunRecords], versions_by_run: Mapping[str, str], live_version: Optional[str]
) -> List[Dict[str, Any]]:
    """Rows oldest first, by run date."""
    rows = [build_row(r, versions_by_run, live_version) for r in all_records]
    return sorted(rows, key=lambda row: row["ds"])


# --- S3 -------------------------------------------------------------------------------------------


def _body(s3, uri: str) -> Optional[bytes]:
    """The object's bytes, or None when there is none (other S3 errors raise)."""
    from botocore.exceptions import ClientError

    bucket, key = split_s3_uri(uri)
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise


def _read(s3, uri: str, name: str, problems: List[str]) -> Optional[dict]:
    """parse_record of the object at ``uri``; an S3 error on this one object is a problem, not a crash."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        body = _body(s3, uri)
    except (BotoCoreError, ClientError) as err:
        problems.append(f"{name}: could not be read ({err})")
        return None
    doc, problem = parse_record(name, body)
    if problem:
        problems.append(problem)
    return doc


def _folders(s3, root_uri: str) -> List[str]:
    """The names of the folders directly under ``root_uri/`` (listing errors raise)."""
    bucket, prefix = split_s3_uri(root_uri.rstrip("/") + "/")
    names = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        names += [common["Prefix"][len(prefix) :].rstrip("/") for common in page.get("CommonPrefixes", [])]
    return sorted(names)


def run_dates(s3, cfg: PipelineConfig) -> List[str]:
    """Every ``dt=<YYYY-MM-DD>`` folder under the runs prefix, oldest first."""
    dates = []
    for name in _folders(s3, s3_uri(cfg.artifact_bucket, cfg.runs_prefix)):
        match = _RUN_FOLDER.match(name)
        if match:
            dates.append(match.group(1))
    return dates


def read_run(s3, cfg: PipelineConfig, ds: str) -> RunRecords:
    """run.json and gate.json of ``ds`` (and the jobs' outcome records when there is no gate.json)."""
    locations = run_locations(cfg, ds)
    records = RunRecords(ds=ds)
    records.run = _read(s3, locations["run_record"], "run.json", records.problems)
    records.gate = _read(s3, locations["gate_report"], "gate.json", records.problems)
    if records.gate is None:
        for job in JOBS:
            outcome = _read(
                s3, f"{locations['outcomes']}/{job}.json", f"outcomes/{job}.json", records.problems
            )
            if outcome is not None:
                records.outcomes[job] = outcome
    return records


def read_registry(s3, cfg: PipelineConfig) -> Dict[str, Any]:
    """The live pointer (or the reason it is unreadable) and every version's manifest."""
    where = registry_locations(cfg)
    out: Dict[str, Any] = {"root": where["registry_root"], "live": None, "problems": [], "versions": {}}
    try:
        pointer = registry.read_pointer(s3, where["latest"])
    except ValueError as err:
        out["problems"].append(str(err))
        pointer = None
    if pointer is not None:
        rolled = _mapping(pointer.doc.get("rolled_back"))
        out["live"] = {
            "version": pointer.version,
            "ds": pointer.ds,
            "run_id": pointer.doc.get("run_id"),
            "promoted_at": pointer.doc.get("promoted_at"),
            "rolled_back": dict(rolled) or None,
        }
    for version in _folders(s3, f"{where['registry_root']}/versions"):
        problems: List[str] = []
        manifest = _read(
            s3, f"{where['registry_root']}/versions/{version}/{registry.MANIFEST}", "_manifest.json", problems
        )
        out["problems"] += [f"version {version}: {p}" for p in problems]
        out["versions"][version] = manifest  # None: incomplete (or unreadable)
    return out


# --- the plot and the page -------------------------------------------------------------------------

STATUS_COLORS = {
    "promoted": "tab:green",
    "backfill": "tab:blue",
    "held": "tab:orange",
    "failed": "tab:red",
    "incomplete": "tab:gray",
    "unreadable": "tab:purple",
}


def _series(rows: Sequence[Mapping[str, Any]], key: str) -> List[float]:
    """``key`` of every row, None as NaN: a gap in a line, no bar."""
    return [math.nan if row.get(key) is None else row[key] for row in rows]


def plot_runs(
    rows: Sequence[Mapping[str, Any]], path: Path, max_reject_ratio: Optional[float] = None
) -> Path:
    """Four panels over the run dates: NDCG@k (candidate, production, popularity; the candidate's marker
    says promoted / held / ...), reject ratio, estimated cost, cluster minutes. Failed runs are shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    dates = [dt.datetime.strptime(row["ds"], "%Y-%m-%d") for row in rows]
    ks = sorted({row["k"] for row in rows if row.get("k")})
    ndcg = f"NDCG@{ks[0]}" if len(ks) == 1 else "NDCG@k"
    fig, axes = plt.subplots(4, 1, figsize=(10, 10.5), sharex=True, height_ratios=[2.2, 1, 1, 1])
    ax_ndcg, ax_reject, ax_cost, ax_minutes = axes
    span = (max(dates) - min(dates)).days if dates else 0
    width = max(0.3, min(0.8, 0.8 * (span + 1) / max(len(dates), 1)))  # bar width in days

    ax_ndcg.plot(
        dates,
        _series(rows, "popularity_ndcg"),
        color="gray",
        linestyle="--",
        marker="o",
        markersize=3,
        label="popularity (same split)",
    )
    ax_ndcg.plot(
        dates,
        _series(rows, "production_ndcg"),
        color="tab:blue",
        marker="s",
        markersize=4,
        label="production, refitted on the split",
    )
    ax_ndcg.plot(dates, _series(rows, "candidate_ndcg"), color="black", linewidth=1, label="candidate")
    handles, _ = ax_ndcg.get_legend_handles_labels()
    size = 70 if len(rows) <= 15 else 30
    for status in STATUSES:
        picked = [(d, r["candidate_ndcg"]) for d, r in zip(dates, rows) if r["status"] == status]
        picked = [(d, v) for d, v in picked if v is not None]
        if picked:
            filled = status in ("promoted", "backfill")
            ax_ndcg.scatter(
                [d for d, _ in picked],
                [v for _, v in picked],
                s=size,
                zorder=3,
                color=STATUS_COLORS[status] if filled else "white",
                edgecolors=STATUS_COLORS[status],
                linewidths=2,
            )
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="",
                    marker="o",
                    markersize=8,
                    markeredgewidth=2,
                    markeredgecolor=STATUS_COLORS[status],
                    markerfacecolor=STATUS_COLORS[status] if filled else "white",
                    label=f"candidate {status}",
                )
            )
    failed = [
        (d, r["status"]) for d, r in zip(dates, rows) if r["status"] in ("failed", "unreadable", "incomplete")
    ]
    for ax in axes:
        for day, _ in failed:
            ax.axvspan(
                day - dt.timedelta(days=width * 0.6),
                day + dt.timedelta(days=width * 0.6),
                color="tab:red",
                alpha=0.08,
                linewidth=0,
            )
    for day, status in failed if len(rows) <= 15 else []:  # a label per shaded day while there is room
        ax_ndcg.annotate(
            status,
            xy=(day, 0.97),
            xycoords=("data", "axes fraction"),
            ha="center",
            va="top",
            fontsize=8,
            color="tab:red",
        )
    if failed:
        handles.append(Patch(color="tab:red", alpha=0.15, label="run failed, incomplete or unreadable"))
    ax_ndcg.set_ylabel(ndcg)
    ax_ndcg.set_title(f"{ndcg} as the quality gate compared them (holdout of each run date)", fontsize=10)
    ax_ndcg.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)

    colors = [STATUS_COLORS.get(row["status"], "tab:gray") for row in rows]
    ax_reject.bar(dates, _series(rows, "reject_ratio"), width=width, color=colors, alpha=0.8)
    if max_reject_ratio is not None:
        ax_reject.axhline(max_reject_ratio, color="tab:red", linestyle=":", linewidth=1)
        ax_reject.annotate(
            f"max_reject_ratio {max_reject_ratio:g}",
            xy=(1.01, max_reject_ratio),
            xycoords=("axes fraction", "data"),
            fontsize=8,
            color="tab:red",
            va="center",
        )
    ax_reject.set_ylabel("reject ratio")

    ax_cost.bar(dates, _series(rows, "cost_usd"), width=width, color=colors, alpha=0.8)
    ax_cost.set_ylabel("est. cost USD")

    running = _series(rows, "cluster_minutes")
    provisioning = _series(rows, "provisioning_minutes")
    ax_minutes.bar(dates, running, width=width, color=colors, alpha=0.8)
    ax_minutes.bar(
        dates,
        provisioning,
        width=width,
        bottom=[0 if math.isnan(v) else v for v in running],
        color="none",
        edgecolor="gray",
        hatch="//",
        linewidth=0.5,
    )
    ax_minutes.set_ylabel("cluster minutes")
    ax_minutes.legend(
        handles=[
            Patch(facecolor="lightgray", label="ready to end (costed; colour = status)"),
            Patch(facecolor="white", edgecolor="gray", hatch="//", label="provisioning (not costed)"),
        ],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        frameon=False,
    )
    ax_cost.legend(
        handles=[
            Patch(color=STATUS_COLORS[s], alpha=0.8, label=s)
            for s in STATUSES
            if any(r["status"] == s for r in rows)
        ],
        title="bar colour",
        title_fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        frameon=False,
    )
    total = [r + (0 if math.isnan(p) else p) for r, p in zip(running, provisioning)]
    panels = (
        (ax_reject, _series(rows, "reject_ratio"), ".3f", [max_reject_ratio or 0]),
        (ax_cost, _series(rows, "cost_usd"), ".2f", []),
        (ax_minutes, total, ".0f", []),
    )
    for ax, values, spec, extra in panels:
        finite = [v for v in values if not math.isnan(v)] + extra
        ax.set_ylim(0, (max(finite) if finite and max(finite) > 0 else 1) * 1.2)  # room for the labels
        if len(rows) <= 15:  # each bar's value: a real 0 reads "0", a gap "n/a"
            for day, value in zip(dates, values):
                ax.annotate(
                    "n/a" if math.isnan(value) else format(value, spec),
                    xy=(day, 0 if math.isnan(value) else value),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    color="dimgray",
                )
    for ax in axes:
        ax.grid(axis="y", alpha=0.3)
    if dates and len(dates) <= 31:
        ax_minutes.set_xticks(dates)
        ax_minutes.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
        plt.setp(ax_minutes.get_xticklabels(), rotation=30, ha="right")
    else:
        locator = mdates.AutoDateLocator()
        ax_minutes.xaxis.set_major_locator(locator)
        ax_minutes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if dates:
        pad = dt.timedelta(days=max(1.0, span * 0.03))
        ax_minutes.set_xlim(min(dates) - pad, max(dates) + pad)
    ax_minutes.set_xlabel("run date (logical date ds)")
    fig.align_ylabels(axes)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


def _fmt(value: Optional[float], spec: str) -> str:
    return "" if value is None else format(value, spec)


def render_page(context: Mapping[str, Any]) -> str:
    """The HTML page from the Jinja2 template (autoescaped)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = _fmt
    return env.get_template(TEMPLATE).render(**context)


@dataclass
class Report:
    path: Path
    plot: Path
    rows: List[Dict[str, Any]]
    live: Optional[dict]
    problems: int


def write_report(
    s3, cfg: PipelineConfig, output: Path, source: str, now: Optional[dt.datetime] = None
) -> Report:
    """Read the runs and the registry, write ``output`` (HTML) and the plot beside it."""
    dates = run_dates(s3, cfg)
    reg = read_registry(s3, cfg)
    live = reg["live"]
    rows = build_rows(
        (read_run(s3, cfg, ds) for ds in dates), version_index(reg["versions"]), (live or {}).get("version")
    )
    output = Path(output)
    plot = output.parent / PLOT_NAME
    if rows:
        plot_runs(rows, plot, cfg.max_reject_ratio)
    elif plot.exists():
        plot.unlink()  # no runs: no stale plot from an earlier report
    at = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%d %H:%M:%S UTC")
    ks = sorted({row["k"] for row in rows if row.get("k")})
    context = {
        "generated_at": at,
        "source": source,
        "runs_root": s3_uri(cfg.artifact_bucket, cfg.runs_prefix),
        "retention_days": cfg.retention_runs_days,
        "registry_root": reg["root"],
        "registry_problems": reg["problems"],
        "live": live,
        "versions": [
            {"version": v, "complete": m is not None, "registered_at": (m or {}).get("registered_at")}
            for v, m in sorted(reg["versions"].items(), reverse=True)
        ],
        "rows": list(reversed(rows)),  # newest first in the table
        "statuses": STATUSES,
        "status_colors": {
            "promoted": "#2ca02c",
            "backfill": "#1f77b4",
            "held": "#ff7f0e",
            "failed": "#d62728",
            "incomplete": "#7f7f7f",
            "unreadable": "#9467bd",
        },
        "counts": {s: sum(1 for r in rows if r["status"] == s) for s in STATUSES},
        "ndcg": f"NDCG@{ks[0]}" if len(ks) == 1 else "NDCG@k",
        "plot_png": base64.b64encode(plot.read_bytes()).decode("ascii") if rows else None,
        "plot_name": PLOT_NAME,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_page(context), encoding="utf-8")
    problems = len(reg["problems"]) + sum(1 for r in rows if r["problems"])
    return Report(output, plot, rows, live, problems)


def summary_line(report: Report) -> str:
    counts = {s: sum(1 for r in report.rows if r["status"] == s) for s in STATUSES}
    parts = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no runs"
    live = f"live {report.live['version']}" if report.live else "no live model"
    flagged = f"; {report.problems} with unreadable records" if report.problems else ""
    return f"report: {report.path} ({len(report.rows)} runs: {parts}; {live}{flagged})"


def report_line(s3, config: Mapping[str, Any], output: Path = DEFAULT_OUTPUT) -> str:
    """make run's one line: the report of the local stack, or a warning; never raises."""
    try:
        from recsys_dag.config import config_from_mapping

        cfg = config_from_mapping(config)
        return summary_line(write_report(s3, cfg, output, "the local stack (make run)"))
    except Exception as err:  # the report is a by-product: it never decides make run
        return f"warning: no run report ({type(err).__name__}: {' '.join(str(err).split())})"[:300]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", default=None, help="S3 endpoint (LocalStack, moto), default AWS")
    parser.add_argument("--local", action="store_true", help="the local stack's buckets (make run's config)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the HTML page to write")
    args = parser.parse_args(argv)

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError
    from recsys_dag.config import config_from_mapping, load_config

    try:
        if args.local:
            from tools.local.run import local_client, local_config

            cfg = config_from_mapping(local_config("0.0.0"))
            s3 = (
                boto3.client("s3", endpoint_url=args.endpoint_url)
                if args.endpoint_url
                else local_client("s3")
            )
            source = f"the local stack ({args.endpoint_url or 'resources.json endpoint'})"
        else:
            cfg = load_config()
            s3 = boto3.client("s3", endpoint_url=args.endpoint_url)
            source = args.endpoint_url or "AWS S3 (default credential chain)"
        print(summary_line(write_report(s3, cfg, args.output, source)))
    except ValueError as err:  # the configuration in force does not parse
        print(f"ERROR: {err}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as err:  # credentials, permissions, endpoint, bucket
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
