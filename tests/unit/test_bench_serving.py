"""benchmarks.bench_serving's pure helpers: percentiles, the lookup plan, the capacity arithmetic, the
synthetic lists; and the CPU seconds read from /proc."""

from __future__ import annotations

import os
import time

import pytest

from benchmarks.bench_serving import (
    capacity_plan,
    latency_summary,
    lookup_plan,
    percentile,
    popularity_of,
    synthetic_lists,
)
from benchmarks.common import cpu_seconds

pytestmark = pytest.mark.unit


def test_percentile_is_nearest_rank():
    values = [float(x) for x in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 90) == 90.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0], 50) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0  # ceil(0.5 * 4) = rank 2
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.1) == 1.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 0)


def test_latency_summary_in_milliseconds_from_any_order():
    summary = latency_summary([0.004, 0.001, 0.003, 0.002])
    assert summary == pytest.approx(
        {"count": 4, "mean_ms": 2.5, "p50_ms": 2.0, "p90_ms": 4.0, "p99_ms": 4.0, "max_ms": 4.0}
    )


def test_lookup_plan_is_seeded_with_the_unknown_share():
    plan = lookup_plan(known_users=1000, count=500, unknown_share=0.1, seed=7)
    assert plan == lookup_plan(1000, 500, 0.1, 7)
    assert plan != lookup_plan(1000, 500, 0.1, 8)
    unknown = [user for user, known in plan if not known]
    assert len(plan) == 500 and len(unknown) == 50 and len(set(unknown)) == 50
    assert all(int(user) > 1000 for user in unknown)
    assert all(1 <= int(user) <= 1000 for user, known in plan if known)


def test_capacity_plan_for_one_unit_lists():
    plan = capacity_plan(1.0, users=10_000_000, rates=(1_000, 40_000), on_demand_start=4_000, quota=40_000)
    assert plan["write_units"] == 10_000_000 and plan["requests"] == 400_000
    assert [r["seconds"] for r in plan["at_rate"]] == [10_000.0, 250.0]
    nights = plan["on_demand_nights"]
    assert [n["units_per_s"] for n in nights] == [4_000, 8_000, 16_000, 32_000, 40_000]
    assert nights[0]["seconds"] == 2_500.0 and nights[-1]["seconds"] == 250.0
    assert capacity_plan(2.0, users=10, rates=(10,))["at_rate"][0]["seconds"] == 2.0


def test_synthetic_lists_are_seeded_ranked_lists():
    lists = synthetic_lists(50, seed=3, items=10, catalogue=100)
    assert [entry.user_id for entry in lists] == [str(u) for u in range(1, 51)]
    assert lists == synthetic_lists(50, seed=3, items=10, catalogue=100)
    for entry in lists:
        ids, scores = entry.ranked.item_ids, entry.ranked.scores
        assert len(set(ids)) == 10 and all(1 <= int(i) <= 100 for i in ids)
        assert list(scores) == sorted(scores, reverse=True)
    popular = popularity_of(lists, items=5)
    assert popular.source == "popularity" and len(popular.item_ids) == 5
    assert list(popular.scores) == sorted(popular.scores, reverse=True)


def test_cpu_seconds_grow_with_work_and_the_tree_includes_the_process():
    before = cpu_seconds(os.getpid(), tree=False)
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    assert cpu_seconds(os.getpid(), tree=False) >= before + 0.1
    assert cpu_seconds(os.getpid()) >= cpu_seconds(os.getpid(), tree=False) - 0.05
