"""The page's PNG plots (matplotlib, headless), drawn from the results documents into ``out``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ENGINES = (("implicit", "implicit ALS"), ("spark_als", "Spark MLlib ALS"))
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#7f7f7f")


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def breakdown(parts: Sequence[Sequence[Any]], title: str, path: Path) -> None:
    """One horizontal stacked bar of (label, seconds) parts: where the time goes."""
    fig, axis = plt.subplots(figsize=(8, 2.4))
    left = 0.0
    for color, (label, seconds) in zip(COLORS * 2, parts):
        axis.barh([0], [seconds], left=left, color=color, label=f"{label}: {seconds:.1f} s")
        left += seconds
    axis.set(yticks=[], xlabel=f"wall s (total {left:.1f} s)", title=title)
    axis.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    _save(fig, path)


def parse_logs(doc: Dict[str, Any], out: Path) -> None:
    """Wall seconds and peak tree RSS (JVM + Python, and the JVM's live heap) by input size; RSS traces."""
    runs = doc["runs"]
    x, seconds = [r["events"] / 1e6 for r in runs], [r["seconds"] for r in runs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(x, seconds, "o-", color=COLORS[0])
    for xi, yi, r in zip(x, seconds, runs):
        text = f"{r['events_per_s'] / 1e3:.1f}k events/s"
        left.annotate(text, (xi, yi), textcoords="offset points", xytext=(-30, 8))
    left.set(xlabel="input events (millions)", ylabel="wall seconds (spark-submit, start-up included)")
    left.set(title="parse_logs time", ylim=(0, max(seconds) * 1.2), xlim=(0, None))
    left.grid(alpha=0.3)
    java, python = ([r["peak_rss_by_process_mib"].get(k, 0.0) for r in runs] for k in ("java", "python"))
    width = 0.35 * x[-1] / len(x)
    right.bar(x, java, width=width, color=COLORS[0], label="JVM (RSS at peak)")
    right.bar(x, python, width=width, bottom=java, color=COLORS[1], label="Python driver + workers")
    live = [r["jvm_heap"].get("max_live_mib", 0) for r in runs]
    right.plot(x, live, "s--", color=COLORS[3], label="JVM live heap after GC (max)")
    right.set(xlabel="input events (millions)", ylabel="MiB", title="peak RSS of the process tree")
    right.set(xlim=(0, None), ylim=(0, max(j + p for j, p in zip(java, python)) * 1.35))
    right.legend(loc="upper left", fontsize=8)
    right.grid(alpha=0.3, axis="y")
    _save(fig, out / "bench_parse_logs_scaling.png")
    fig, axis = plt.subplots(figsize=(10, 3.6))
    for color, r in zip(COLORS, runs):
        trace = [(t, m) for t, m in r["rss_trace_mib"] if m > 0]  # 0 = sampled after the exit
        axis.plot(*zip(*trace), color=color, label=f"{r['events'] / 1e6:g}M events")
    axis.set(xlabel="seconds since spark-submit", ylabel="tree RSS (MiB)", ylim=(0, None))
    axis.set_title("parse_logs: memory over time")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    _save(fig, out / "bench_parse_logs_memory.png")


def train(doc: Dict[str, Any], out: Path) -> None:
    """Per matrix: fit seconds, peak RSS and NDCG@10 of both engines, with Spark's iterations if fewer."""
    matrices = doc["matrices"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    panels = [("fit seconds", "fit_seconds", "{:.1f}"), ("NDCG@10 (held-out 20%)", "ndcg", "{:.3f}")]
    panels.insert(1, ("peak RSS of the process tree (MiB)", "peak_rss_mib", "{:.0f}"))
    for axis, (title, key, fmt) in zip(axes, panels):
        for offset, (engine, label) in enumerate(ENGINES):
            ys = [m[engine]["metrics"]["ndcg"] if key == "ndcg" else m[engine][key] for m in matrices]
            xs = [i + (offset - 0.5) * 0.38 for i in range(len(matrices))]
            bars = axis.bar(xs, ys, width=0.38, color=COLORS[offset], label=label)
            for bar, m, y in zip(bars, matrices, ys):
                short = m[engine]["iterations"] != m["hyperparameters"]["iterations"]  # Spark's, to save time
                text = fmt.format(y) + (f"\n({m[engine]['iterations']} it.)" if short else "")
                where = (bar.get_x() + bar.get_width() / 2, y)
                axis.annotate(text, where, ha="center", va="bottom", fontsize=8)
        axis.set_xticks(range(len(matrices)), [m["spec"]["name"] + " nnz" for m in matrices])
        axis.set_title(title, fontsize=10)
        axis.margins(y=0.2)
        axis.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=8, loc="upper left")
    _save(fig, out / "bench_train_engines.png")


def quality(doc: Dict[str, Any], out: Path) -> None:
    """NDCG@10 and precision@10 of the tuned and previous models, popularity and the published rows."""
    rows = [(m["label"].replace("implicit ", ""), m["test"], False) for m in doc["models"]]
    rows = [row for row in rows if "tuned" in row[0] or "before" in row[0]]
    rows.append(("popularity", doc["popularity"]["test"], False))
    rows += [(f"{name} (published)", doc["published"][name], True) for name in ("BiVAE", "BPR", "SAR")]
    fig, axis = plt.subplots(figsize=(10, 4))
    for shift, key, label, color in ((-0.2, "ndcg", "NDCG@10", 0), (0.2, "precision", "precision@10", 1)):
        xs, ys = [i + shift for i in range(len(rows))], [r[1][key] for r in rows]
        for bar, row in zip(axis.bar(xs, ys, width=0.4, color=COLORS[color], label=label), rows):
            if row[2]:
                bar.set(hatch="//", alpha=0.6)
            x, y = bar.get_x() + bar.get_width() / 2, bar.get_height()
            axis.annotate(f"{y:.3f}", (x, y), ha="center", va="bottom", fontsize=7)
    axis.set_xticks(range(len(rows)), [r[0] for r in rows], rotation=20, ha="right", fontsize=8)
    title = "MovieLens-100K test split, top-10 (hatched: recommenders-team's published rows, their split"
    axis.set_title(title + " and settings)", fontsize=10)
    axis.set_ylim(0, max(r[1][k] for r in rows for k in ("ndcg", "precision")) * 1.2)
    axis.grid(alpha=0.3, axis="y")
    axis.legend(fontsize=8)
    _save(fig, out / "bench_quality_movielens.png")
