"""train_cf: engines behind one interface, top-K scoring, and the job's outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spark_jobs import train_cf
from spark_jobs.common.cli import JobError
from spark_jobs.common.engines import TrainParams, fit, interactions_matrix
from spark_jobs.common.recommend import recommend_top_k, score_block
from spark_jobs.common.schemas import INTERACTIONS, ITEM_MAP, USER_MAP

pytestmark = pytest.mark.spark

# Two taste groups: users 0-3 like items 0-2, users 4-7 like items 3-5.
PAIRS = [(u, i) for u in range(4) for i in range(3) if (u + i) % 3 != 0] + [
    (u, i) for u in range(4, 8) for i in range(3, 6) if (u + i) % 3 != 0
]
N_USERS, N_ITEMS = 8, 6


@pytest.fixture(scope="module")
def features(spark, tmp_path_factory):
    import datetime as dt

    root = tmp_path_factory.mktemp("features")
    ts = dt.datetime(2024, 1, 1)
    spark.createDataFrame([(u, i, 1.0 + (u % 2), ts) for u, i in PAIRS], INTERACTIONS).write.parquet(
        str(root / "train")
    )
    spark.createDataFrame([(u, f"u{u}") for u in range(N_USERS)], USER_MAP).write.parquet(str(root / "users"))
    spark.createDataFrame([(i, f"i{i}") for i in range(N_ITEMS)], ITEM_MAP).write.parquet(str(root / "items"))
    return root


def test_params_are_validated():
    with pytest.raises(ValueError, match="unknown engine"):
        TrainParams(engine="lightfm")
    with pytest.raises(ValueError, match="only implements algorithm als"):
        TrainParams(engine="spark-als", algorithm="bpr")


def test_interactions_matrix_shape_and_values(spark, features):
    matrix = interactions_matrix(spark.read.parquet(str(features / "train")), N_USERS, N_ITEMS)
    assert matrix.shape == (N_USERS, N_ITEMS) and matrix.nnz == len(PAIRS)
    assert matrix[1, 0] == 2.0 and matrix[0, 1] == 1.0 and matrix[0, 0] == 0.0


def test_score_block_excludes_seen_and_undefined_items():
    users = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    items = np.array([[3.0, 0.0], [2.0, 0.0], [np.nan, np.nan], [0.0, 5.0]], dtype=np.float32)
    top, scores = score_block(users, items, [np.array([0]), np.array([], dtype=np.int64)], 2)
    assert top.tolist() == [[1, 3], [3, 0]]
    assert scores.tolist() == [[2.0, 0.0], [5.0, 0.0]]


@pytest.mark.parametrize(
    "params",
    [
        TrainParams(engine="implicit", algorithm="als", factors=4, iterations=5, num_threads=1),
        TrainParams(engine="implicit", algorithm="bpr", factors=4, iterations=20, num_threads=1),
        TrainParams(engine="spark-als", factors=4, iterations=5),
    ],
    ids=lambda p: f"{p.engine}-{p.algorithm}",
)
def test_each_engine_fits_and_recommends_unseen_items(spark, features, params):
    train = spark.read.parquet(str(features / "train"))
    model = fit(spark, train, N_USERS, N_ITEMS, params)
    user_rows = model.user_factors.collect()
    assert sorted(r["user_idx"] for r in user_rows) == list(range(N_USERS))
    assert {len(r["factors"]) for r in user_rows} <= {4, 5}  # BPR adds a bias column
    recs = recommend_top_k(spark, model.user_factors, model.item_factors, train, N_ITEMS, 2).collect()
    seen = set(PAIRS)
    assert recs and all((r["user_idx"], r["item_idx"]) not in seen for r in recs)
    assert all(r["rank"] in (1, 2) for r in recs)


def test_implicit_als_learns_the_groups(spark):
    # 2 groups x 20 users x 6 items; each user saw 4 of their group's 6 items (seeded).
    rng = np.random.default_rng(7)
    rows = []
    for user in range(40):
        group_items = np.arange(6) + 6 * (user // 20)
        rows += [(user, int(item), 1.0) for item in rng.choice(group_items, size=4, replace=False)]
    train = spark.createDataFrame(rows, "user_idx int, item_idx int, confidence double")
    # Two factors: the true rank of this data (more factors overfit 40 users).
    params = TrainParams(factors=2, iterations=15, regularization=0.01, alpha=1.0, num_threads=1)
    model = fit(spark, train, 40, 12, params)
    recs = recommend_top_k(spark, model.user_factors, model.item_factors, train, 12, 2).collect()
    assert len(recs) == 80
    assert all(r["item_idx"] // 6 == r["user_idx"] // 20 for r in recs)  # both unseen in-group items


def test_run_writes_model_recommendations_and_params(spark, features, tmp_path):
    out = tmp_path / "model"
    params = TrainParams(factors=4, iterations=5, num_threads=1)
    summary = train_cf.run(spark, str(features), str(out), params, k=3)
    assert summary["users"] == N_USERS and summary["train_nnz"] == len(PAIRS)
    recs = spark.read.parquet(str(out / "recommendations"))
    assert recs.columns == ["user_idx", "user_id", "rank", "item_idx", "item_id", "score"]
    # Each user has 6 items minus 2 seen = 4 candidates: exactly 3 recommendations each.
    assert recs.count() == N_USERS * 3 == summary["recommendations"]
    assert {r["user_id"] for r in recs.collect()} == {f"u{u}" for u in range(N_USERS)}
    assert spark.read.parquet(str(out / "model" / "item_factors")).count() == N_ITEMS
    saved = json.loads((out / "model" / "params.json").read_text())
    assert saved["params"]["factors"] == 4 and saved["engine"] == "implicit"

    # Same seed, same data: identical recommendations on a rerun (overwritten, not appended).
    key = ["user_idx", "rank"]
    first = [tuple(r) for r in recs.orderBy(key).collect()]
    train_cf.run(spark, str(features), str(out), params, k=3)
    again = spark.read.parquet(str(out / "recommendations"))
    assert [tuple(r) for r in again.orderBy(key).collect()] == first


def test_run_without_features_is_a_clear_error(spark, tmp_path):
    with pytest.raises(JobError, match="run build_features first"):
        train_cf.run(spark, str(tmp_path / "none"), str(tmp_path / "out"), TrainParams())
