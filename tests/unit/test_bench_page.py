"""benchmarks.run_all's page: the number formats (exact strings) and the template filled from results."""

from __future__ import annotations

import json

import pytest

from benchmarks import run_all
from benchmarks.run_all import FILTERS, count, duration, load, rate, secs

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0 s"),
        (0.0261, "0.026 s"),
        (12.34, "12.3 s"),
        (256.8, "257 s"),
        (1450.2, "1,450 s"),
        (None, "n/a"),
    ],
)
def test_secs(seconds, text):
    assert secs(seconds) == text


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (10_000_000, "10M"),
        (1_234_567, "1.23M"),
        (1_000_000, "1M"),
        (250_000, "250k"),
        (98_396, "98.4k"),
        (943, "943"),
    ],
)
def test_count(n, text):
    assert count(n) == text


def test_other_formats():
    assert rate(38910.2) == "38.9k/s"
    assert rate(1.5e6) == "1.50M/s"
    assert rate(512) == "512/s"
    assert FILTERS["mib"](2476.4) == "2,476 MiB"
    assert load([4.62, 4.1, 3.0], [5.96, 4.2, 3.1]) == "4.62 → 5.96"
    assert load({"load_before": [1.0], "load_after": [2.5]}) == "1.00 → 2.50"
    assert FILTERS["metric"](0.441997) == "0.442"
    assert FILTERS["metric"](None) == "n/a"
    assert FILTERS["kv"]({"factors": 64, "regularization": 30.0}) == "factors 64, regularization 30"


def test_duration():
    assert duration(10_000) == "2 h 47 min"
    assert duration(1_000) == "16 min 40 s"
    assert duration(250) == "4 min 10 s"
    assert duration(2_500) == "41 min 40 s"
    assert duration(3_600) == "1 h"
    assert duration(42.4) == "42 s"
    assert duration(120) == "2 min"


MACHINE = {"cpu": "Test CPU", "cores": 2, "memory_gib": 7.8, "os": "Linux 6", "python": "3.11.9"}
MACHINE.update(java="openjdk 17", packages={"pyspark": "3.5.9"}, git_commit="abc1234")
CHAIN = {
    "benchmark": "chain",
    "mode": "quick",
    "seed": 42,
    "machine": MACHINE,
    "started_utc": "2026-01-01T10:00:00Z",
    "finished_utc": "2026-01-01T10:02:00Z",
    "load_avg_start": [1.5, 1, 1],
    "load_avg_end": [2.25, 1, 1],
    "rounds": [
        {
            "empty_walls": [5.0, 5.0, 5.0, 5.0],
            "chain_total": 50.0,
            "ratio": 2.5,
            "load_before": [1.5, 1, 1],
            "load_after": [2.25, 1, 1],
        }
    ],
    "median_ratio": 2.5,
    "median_chain_total": 50.0,
    "median_empty_wall": 5.0,
    "breakdown": {
        "parse_logs": {
            "wall": 12.0,
            "startup": 4.0,
            "spark_actions": 5.0,
            "action_count": 2,
            "tasks": 8,
            "driver": 2.5,
            "shutdown": 0.5,
            "actions": {
                "count at parse_logs.py:9": {"count": 1, "seconds": 1.0, "tasks": 2},
                "save at parse_logs.py:20": {"count": 1, "seconds": 4.0, "tasks": 6},
            },
        }
    },
}


def test_the_page_from_one_benchmark_notes_the_others_and_fills_its_section(tmp_path, monkeypatch):
    results = tmp_path / "results"
    results.mkdir()
    (results / "chain.json").write_text(json.dumps(CHAIN))
    monkeypatch.setattr(run_all, "results_dir", lambda quick: results)
    monkeypatch.setattr(run_all, "WORK", tmp_path)
    page = run_all.render(True, 120.0).read_text()
    headings = [line for line in page.splitlines() if line.startswith("#")]
    assert headings[:4] == ["# Benchmarks", "## Headline", "## Machine, versions, date",
                            "## 1. parse_logs: speed and memory as data grows"]  # fmt: skip
    assert headings[-1] == "## Closing note" and len(headings) == 11
    assert page.startswith("# Benchmarks\n\n**Quick mode (`make bench-quick`)")
    for name in ("parse_logs", "parse_native", "train", "quality", "overheads", "serving"):
        assert f"_{name} benchmark did not run._" in page
    assert page.count("| make run-chain vs four empty spark-submits (same round) | 2.50x (chain 50.0 s,") == 2
    assert "| date (UTC) | 2026-01-01T10:00:00Z → 2026-01-01T10:02:00Z |" in page
    assert "| whole `make bench-quick` (seven benchmarks) | 120 s |" in page
    assert "| 1 | 20.0 s | 50.0 s | 2.50x | 1.50 → 2.25 |" in page
    row = "| parse_logs | 12.0 s | 4.0 s | 5.0 s (2, 8 tasks) | 2.5 s | 0.500 s | "
    assert row + "save at parse_logs.py:20 x1 4.0 s; count at parse_logs.py:9 x1 1.0 s |" in page


def test_without_an_end_to_end_run_make_run_is_the_chain_s_last_round(tmp_path, monkeypatch):
    results = tmp_path / "results"
    results.mkdir()
    split = [["set-up (make prerequisites, code bundle)", 0.5], ["Airflow (none in the chain)", 0],
             ["Spark fixed cost (empty spark-submit: start, first action, stop; x jobs)", 20.0],
             ["Spark work (job walls minus the fixed cost)", 30.0], ["other", 0.5]]  # fmt: skip
    run = {"kind": "chain", "wall_s": 51.0, "make_setup_s": 0.04, "jobs_s": {"parse_logs": 12.0}}
    run.update(split=split, load_before=[1.0, 1, 1], load_after=[2.0, 1, 1])
    (results / "chain.json").write_text(json.dumps({**CHAIN, "make_run": run}))
    monkeypatch.setattr(run_all, "results_dir", lambda quick: results)
    monkeypatch.setattr(run_all, "WORK", tmp_path)
    page = run_all.render(True, None).read_text()
    assert "#### The four-job chain (what `make run` was before the end-to-end issue)" in page
    assert "| Spark work (job walls minus the fixed cost) | 30.0 s | 59% |" in page
    assert "| parse_logs | 12.0 s |" in page
    assert page.count("issue; make run-chain) | 51.0 s: set-up 0.500 s, Airflow 0 s, Spark fixed cost") == 2
    assert (tmp_path / "quick" / "bench_make_run.png").exists()
