"""The chain runner's metrics table: one row per engine, popularity once, fixed columns."""

from __future__ import annotations

import pytest

from tools.local.run_chain import metrics_table

pytestmark = pytest.mark.unit


def _metrics(scale):
    keys = ("precision@10", "recall@10", "ndcg@10", "map@10", "coverage")
    return {
        "k": 10,
        "model": {key: scale * (i + 1) / 10 for i, key in enumerate(keys)},
        "popularity": {key: 0.01 for key in keys},
        "users_evaluated": 42,
    }


def test_metrics_table():
    table = metrics_table({"implicit": _metrics(1.0), "spark-als": _metrics(0.5)}).splitlines()
    assert table[0].split() == ["model", "precision@10", "recall@10", "ndcg@10", "map@10", "coverage"]
    assert table[2].split() == ["implicit", "0.1000", "0.2000", "0.3000", "0.4000", "0.5000"]
    assert table[3].split() == ["spark-als", "0.0500", "0.1000", "0.1500", "0.2000", "0.2500"]
    assert table[4].split() == ["popularity", "0.0100", "0.0100", "0.0100", "0.0100", "0.0100"]
    assert table[5] == "users evaluated: 42"
