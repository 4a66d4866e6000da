"""The Spark expressions of the ranking metrics equal the Python specification bit for bit.

``ranking.user_metrics`` is the definition (docs/contracts.md); evaluate computes the same numbers with
``ranking_columns.user_metric_columns`` in a real Spark session. Hypothesis draws batches of lists
(repeats, misses, lists shorter and longer than K) and held-out sets; every value must be equal with
``==``, not approximately, so metrics.json does not move when the implementation does.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spark_jobs.common.ranking import USER_METRICS, user_metrics
from spark_jobs.common.ranking_columns import user_metric_columns

pytestmark = pytest.mark.spark

ITEMS = st.integers(0, 30)  # a small catalogue, so lists hit the held-out set often
CASES = st.lists(
    st.tuples(st.lists(ITEMS, max_size=15), st.lists(ITEMS, min_size=1, max_size=20, unique=True)),
    min_size=1,
    max_size=40,
)


def native(spark, cases, k):
    frame = spark.createDataFrame(
        [(n, items, relevant) for n, (items, relevant) in enumerate(cases)],
        "case int, items array<int>, relevant array<int>",
    )
    columns = user_metric_columns(frame["items"], frame["relevant"], k)
    rows = frame.select("case", *(column.alias(name) for name, column in columns.items())).collect()
    return {row["case"]: {name: row[name] for name in USER_METRICS} for row in rows}


@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cases=CASES, k=st.integers(1, 12))
def test_spark_metrics_equal_the_specification(spark, cases, k):
    got = native(spark, cases, k)
    for n, (items, relevant) in enumerate(cases):
        assert got[n] == user_metrics(items, relevant, k), (items, relevant, k)


def test_named_cases(spark):
    # Empty list, a repeated hit, a hit past K, more held-out items than K, every position a hit.
    cases = [([], [1]), ([1, 1], [1, 2]), ([5, 6, 1], [1]), ([1, 2, 3], list(range(1, 30)))]
    cases.append(([3, 2, 1], [1, 2, 3]))
    for k in (1, 2, 3, 10):
        got = native(spark, cases, k)
        assert [got[n] for n in range(len(cases))] == [user_metrics(i, r, k) for i, r in cases]


def test_rejects_a_zero_cut_off(spark):
    frame = spark.createDataFrame([([1], [1])], "items array<int>, relevant array<int>")
    with pytest.raises(ValueError, match="k must be >= 1"):
        user_metric_columns(frame["items"], frame["relevant"], 0)
