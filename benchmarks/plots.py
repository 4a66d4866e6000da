"""PNG plots for the benchmark page (matplotlib, headless Agg backend), one function per figure.

Each function takes the benchmark's JSON document and a path, draws, saves at 110 dpi and closes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#7f7f7f")


def _save(fig: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def parse_scaling(doc: Dict[str, Any], path: Path) -> None:
    """Two panels against input size: wall seconds (with events/s labels) and peak RSS of the process
    tree split into JVM and Python, with the JVM's largest live heap after a GC."""
    runs = doc["runs"]
    millions = [run["events"] / 1e6 for run in runs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    seconds = [run["seconds"] for run in runs]
    left.plot(millions, seconds, "o-", color=COLORS[0])
    for x, y, run in zip(millions, seconds, runs):
        left.annotate(
            f"{run['events_per_s'] / 1e3:.1f}k events/s", (x, y), textcoords="offset points", xytext=(-30, 8)
        )
    left.set_xlabel("input events (millions)")
    left.set_ylabel("wall seconds (spark-submit, start-up included)")
    left.set_title("parse_logs time")
    left.set_ylim(0, max(seconds) * 1.2)
    left.set_xlim(left=0)
    left.grid(alpha=0.3)

    java = [run["peak_rss_by_process_mib"].get("java", 0.0) for run in runs]
    python = [run["peak_rss_by_process_mib"].get("python", 0.0) for run in runs]
    live = [run["jvm_heap"].get("max_live_mib", 0) for run in runs]
    width = 0.35 * (millions[-1] / max(len(millions), 1)) if millions else 0.3
    right.bar(millions, java, width=width, color=COLORS[0], label="JVM (RSS at peak)")
    right.bar(millions, python, width=width, bottom=java, color=COLORS[1], label="Python driver + workers")
    right.plot(millions, live, "s--", color=COLORS[3], label="JVM live heap after GC (max)")
    right.set_xlabel("input events (millions)")
    right.set_ylabel("MiB")
    right.set_title("peak RSS of the process tree")
    right.set_xlim(left=0)
    right.set_ylim(0, max(j + p for j, p in zip(java, python)) * 1.35)
    right.legend(loc="upper left", fontsize=8)
    right.grid(alpha=0.3, axis="y")
    _save(fig, path)


def parse_rss_traces(doc: Dict[str, Any], path: Path) -> None:
    """RSS of the process tree over time, one line per input size."""
    fig, axis = plt.subplots(figsize=(10, 3.6))
    for color, run in zip(COLORS, doc["runs"]):
        trace = [(t, m) for t, m in run["rss_trace_mib"] if m > 0]  # 0 = sampled after the exit
        axis.plot(
            [t for t, _ in trace],
            [m for _, m in trace],
            color=color,
            label=f"{run['events'] / 1e6:g}M events",
        )
    axis.set_xlabel("seconds since spark-submit")
    axis.set_ylabel("tree RSS (MiB)")
    axis.set_title("parse_logs: memory over time")
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    _save(fig, path)


def train_engines(doc: Dict[str, Any], path: Path) -> None:
    """Per matrix: fit seconds, peak RSS and NDCG@10 of implicit ALS and Spark ALS (three panels)."""
    matrices = doc["matrices"]
    names = [m["spec"]["name"] + " nnz" for m in matrices]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    panels = (
        ("fit seconds", lambda r: r["fit_seconds"], "{:.1f}"),
        ("peak RSS of the process tree (MiB)", lambda r: r["peak_rss_mib"], "{:.0f}"),
        ("NDCG@10 (held-out 20%)", lambda r: r["metrics"]["ndcg"], "{:.3f}"),
    )
    for axis, (title, value, fmt) in zip(axes, panels):
        for offset, (key, label, color) in enumerate(
            (("implicit", "implicit ALS", COLORS[0]), ("spark_als", "Spark MLlib ALS", COLORS[1]))
        ):
            xs = [i + (offset - 0.5) * 0.38 for i in range(len(matrices))]
            ys = [value(m[key]) for m in matrices]
            bars = axis.bar(xs, ys, width=0.38, color=color, label=label)
            for bar, m, y in zip(bars, matrices, ys):
                text = fmt.format(y)
                if key == "spark_als" and m[key]["iterations"] != m["hyperparameters"]["iterations"]:
                    text += f"\n({m[key]['iterations']} it.)"
                axis.annotate(
                    text, (bar.get_x() + bar.get_width() / 2, y), ha="center", va="bottom", fontsize=8
                )
        axis.set_xticks(range(len(matrices)), names)
        axis.set_title(title, fontsize=10)
        axis.margins(y=0.2)
        axis.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=8, loc="upper left")
    _save(fig, path)


def horizontal_breakdown(parts: Sequence[tuple], title: str, path: Path, unit: str = "s") -> None:
    """One horizontal stacked bar of (label, seconds) parts, with a legend; for "where the time goes"."""
    fig, axis = plt.subplots(figsize=(8, 2.4))
    left = 0.0
    for color, (label, seconds) in zip(COLORS * 2, parts):
        axis.barh([0], [seconds], left=left, color=color, label=f"{label}: {seconds:.1f} {unit}")
        left += seconds
    axis.set_yticks([])
    axis.set_xlabel(f"wall {unit} (total {left:.1f} {unit})")
    axis.set_title(title)
    axis.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    _save(fig, path)


def quality_bars(rows: List[tuple], path: Path) -> None:
    """Grouped bars of NDCG@10 and precision@10: (label, ndcg, precision, is_published) rows."""
    fig, axis = plt.subplots(figsize=(10, 4))
    xs = range(len(rows))
    ndcg = [r[1] for r in rows]
    precision = [r[2] for r in rows]
    bars_n = axis.bar([x - 0.2 for x in xs], ndcg, width=0.4, color=COLORS[0], label="NDCG@10")
    bars_p = axis.bar([x + 0.2 for x in xs], precision, width=0.4, color=COLORS[1], label="precision@10")
    for bars in (bars_n, bars_p):
        for bar, row in zip(bars, rows):
            if row[3]:
                bar.set_hatch("//")
                bar.set_alpha(0.6)
            axis.annotate(f"{bar.get_height():.3f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                          ha="center", va="bottom", fontsize=7)  # fmt: skip
    axis.set_xticks(list(xs), [r[0] for r in rows], rotation=20, ha="right", fontsize=8)
    axis.set_title(
        "MovieLens-100K test split, top-10 "
        "(hatched: recommenders-team's published rows, their split and settings)",
        fontsize=10,
    )
    axis.set_ylim(0, max(ndcg + precision) * 1.2)
    axis.grid(alpha=0.3, axis="y")
    axis.legend(fontsize=8)
    _save(fig, path)
