"""Pure helpers of the benchmark scripts: GC-log reading, sizes, make-run splitting (the chain's timings and
tools.local.run's summary), metric aggregation and the tuning selection rule."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from benchmarks.bench_chain import split_make_run
from benchmarks.bench_overheads import local_run_timings, split_e2e_run
from benchmarks.bench_parse_logs import heap_summary, sizes_arg
from benchmarks.bench_quality import select
from benchmarks.ml import metrics_at_k, popularity_factors, top_k_lists

pytestmark = pytest.mark.unit

GC_LOG = """\
[0.010s][info][gc] Using G1
[1.234s][info][gc] GC(0) Pause Young (Normal) (G1 Evacuation Pause) 23M->4M(256M) 3.456ms
[5.000s][info][gc] GC(1) Pause Young (Concurrent Start) (G1 Humongous Allocation) 900M->610M(1212M) 20.1ms
[5.100s][info][gc] GC(2) Concurrent Mark Cycle
[6.000s][info][gc] GC(2) Pause Remark 700M->650M(1500M) 4.0ms
[9.000s][info][gc] GC(3) Pause Full (System.gc()) 800M->120M(1024M) 80.0ms
"""


def test_heap_summary_reads_live_and_committed_heap():
    assert heap_summary(GC_LOG.splitlines()) == {
        "collections": 4,
        "max_live_mib": 650,
        "max_committed_mib": 1500,
    }
    assert heap_summary([]) == {"collections": 0, "max_live_mib": 0, "max_committed_mib": 0}


def test_sizes():
    assert sizes_arg("5000000, 1000000,10000000") == [1_000_000, 5_000_000, 10_000_000]
    with pytest.raises(argparse.ArgumentTypeError):
        sizes_arg("0,5")


def test_split_make_run_accounts_for_the_whole_wall():
    jobs = {"a": 21.5, "b": 30.0, "c": 25.0, "d": 23.5}
    parts = split_make_run(110.0, 4.0, jobs, fixed=12.0)
    assert [round(s, 6) for _, s in parts] == [4.0, 0.0, 48.0, 52.0, 6.0]
    assert sum(s for _, s in parts) == pytest.approx(110.0)


def test_metrics_at_k_and_standard_error():
    lists = np.array([[1, 2, -1], [5, 6, 7]])
    relevant = [np.array([2]), np.array([9])]
    result = metrics_at_k(lists, relevant, k=3)
    # user 0: hit at rank 2 -> precision 1/3, recall 1, ndcg 1/log2(3), ap 1/2; user 1: all zero.
    assert result["precision"] == pytest.approx(1 / 6)
    assert result["recall"] == pytest.approx(0.5)
    assert result["ndcg"] == pytest.approx(0.5 / np.log2(3))
    assert result["map"] == pytest.approx(0.25)
    assert result["ndcg_se"] == pytest.approx(np.std([1 / np.log2(3), 0.0], ddof=1) / np.sqrt(2))


def test_popularity_top_k_excludes_seen_items_and_breaks_ties_by_index():
    from scipy.sparse import csr_matrix

    # item popularity (distinct users): item0 2, item1 1, item2 2, item3 0
    train = csr_matrix(np.array([[1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 1, 0]], dtype=np.float32))
    users, items = popularity_factors(train)
    assert items.ravel().tolist() == [2.0, 1.0, 2.0, 0.0]
    lists = top_k_lists(users, items, train, [0, 1, 2], k=2)
    assert lists.tolist() == [[1, 3], [2, 3], [0, 1]]


def row(ndcg, se=0.01, **params):
    return {"params": params, "valid": {"ndcg": ndcg, "ndcg_se": se}}


def test_select_keeps_defaults_among_configs_within_one_standard_error():
    defaults = {"factors": 64, "regularization": 0.01}
    rows = [
        row(0.300, factors=32, regularization=30.0),  # best
        row(0.295, factors=64, regularization=30.0),  # within 0.01: one default changed
        row(0.289, factors=64, regularization=0.01),  # outside one s.e.
    ]
    chosen = select(rows, defaults)
    assert chosen["params"] == {"factors": 64, "regularization": 30.0}
    assert chosen["rule"]["within_one_se"] == 2
    assert chosen["rule"]["changed_defaults"] == 1
    assert chosen["rule"]["best_params"] == {"factors": 32, "regularization": 30.0}


def test_select_prefers_the_higher_score_among_equal_changes():
    defaults = {"factors": 64}
    rows = [row(0.30, factors=32), row(0.299, factors=128), row(0.10, factors=64)]
    assert select(rows, defaults)["params"] == {"factors": 32}


WALL_LINE = (
    "-- wall time: local stack up 10.0 s, load data + deploy code 5.0 s, airflow db reset 20.0 s, "
    "airflow dags test 200.0 s"
)
LOCAL_RUN_SUMMARY = [
    *"""\
== recsys_training for 1998-04-22 on the local stack ==
-- tasks (state, seconds) --
  wait_for_raw_data       success               5.2
  create_cluster          success               1.0
-- EMR steps (state, seconds) --
  cluster j-ABC123 TERMINATED
  parse_logs              COMPLETED            40.0
  build_features          COMPLETED            45.5
  train_cf                COMPLETED            30.0
  evaluate                COMPLETED            34.5
-- metrics (held-out latest interactions) --
-- cost: unknown (no run.json, or the cluster had not ended)
""".splitlines(),
    WALL_LINE,
]


def test_local_run_timings_reads_its_summary():
    assert local_run_timings(LOCAL_RUN_SUMMARY) == {
        "wall": {
            "local stack up": 10.0,
            "load data + deploy code": 5.0,
            "airflow db reset": 20.0,
            "airflow dags test": 200.0,
        },
        "steps": {"parse_logs": 40.0, "build_features": 45.5, "train_cf": 30.0, "evaluate": 34.5},
    }


def test_split_e2e_run_adds_up_to_the_wall():
    timings = local_run_timings(LOCAL_RUN_SUMMARY)
    # loaded line at 16 s (make + stack up + load/deploy), summary line at 250 s, exit at 260 s; the DB reset
    # (20 s) is set-up.
    parts = split_e2e_run(260.0, 16.0, 250.0, timings, fixed=12.0)
    assert [round(s, 6) for _, s in parts] == [36.0, 64.0, 48.0, 102.0, 10.0]
    assert sum(s for _, s in parts) == pytest.approx(260.0)
