"""train_cf: engines behind one interface, top-K scoring, and the job's outputs."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from spark_jobs import train_cf
from spark_jobs.common import production
from spark_jobs.common.cli import JobError
from spark_jobs.common.engines import TrainParams, factors_frame, fit, interactions_matrix, matrix_from_frame
from spark_jobs.common.recommend import rank_in_memory, recommend_top_k, score_block
from spark_jobs.common.schemas import INTERACTIONS, ITEM_MAP, USER_MAP

pytestmark = pytest.mark.spark

# Two taste groups: users 0-3 like items 0-2, users 4-7 like items 3-5.
PAIRS = [(u, i) for u in range(4) for i in range(3) if (u + i) % 3 != 0] + [
    (u, i) for u in range(4, 8) for i in range(3, 6) if (u + i) % 3 != 0
]
N_USERS, N_ITEMS = 8, 6


# Held out (each user's latest item): one more in-group item per user, and user 9, whom minimum support
# dropped, exists only in the window.
HOLDOUT = [(u, i) for u in range(4) for i in range(3) if (u + i) % 3 == 0] + [
    (u, i) for u in range(4, 8) for i in range(3, 6) if (u + i) % 3 == 0
]
WINDOW_ONLY = [("u9", "i0"), ("u9", "i7")]  # i7: an item minimum support dropped


def write_features(spark, root, train_pairs=PAIRS, holdout_pairs=HOLDOUT):
    import datetime as dt

    ts = dt.datetime(2024, 1, 1)
    spark.createDataFrame([(u, i, 1.0 + (u % 2), ts) for u, i in train_pairs], INTERACTIONS).write.parquet(
        str(root / "train")
    )
    spark.createDataFrame([(u, i, 1.0, ts) for u, i in holdout_pairs], INTERACTIONS).write.parquet(
        str(root / "holdout")
    )
    spark.createDataFrame([(u, f"u{u}") for u in range(N_USERS)], USER_MAP).write.parquet(str(root / "users"))
    spark.createDataFrame([(i, f"i{i}") for i in range(N_ITEMS)], ITEM_MAP).write.parquet(str(root / "items"))
    window = [(f"u{u}", f"i{i}") for u, i in train_pairs + holdout_pairs] + WINDOW_ONLY
    spark.createDataFrame(window, "user_id string, item_id string").write.parquet(str(root / "window"))
    manifest = {
        "users": N_USERS,
        "items": N_ITEMS,
        "train_nnz": len(train_pairs),
        "holdout_nnz": len(holdout_pairs),
        "window_users": len({user for user, _ in window}),
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="module")
def features(spark, tmp_path_factory):
    return write_features(spark, tmp_path_factory.mktemp("features"))


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


def test_lists_ranked_on_the_driver_equal_the_distributed_ones(spark):
    # The implicit engine ranks on the driver, Spark ALS inside mapInPandas: the same rows, bit for bit,
    # over more users than one block, an item without factors and users with no interactions.
    import pandas as pd

    rng = np.random.default_rng(5)
    n_users, n_items, k = 700, 40, 7
    user_array = rng.normal(size=(n_users, 8)).astype(np.float32)
    item_array = rng.normal(size=(n_items, 8)).astype(np.float32)
    item_array[3] = np.nan
    pairs = pd.DataFrame(
        {"user_idx": rng.integers(0, n_users - 20, 3000), "item_idx": rng.integers(0, n_items, 3000)}
    ).drop_duplicates()
    pairs["confidence"] = 1.0
    matrix = matrix_from_frame(pairs, n_users, n_items)
    interactions = spark.createDataFrame(pairs.astype({"user_idx": "int32", "item_idx": "int32"}))
    distributed = recommend_top_k(
        spark,
        factors_frame(spark, user_array, "user_idx"),
        factors_frame(spark, item_array, "item_idx"),
        interactions,
        n_items,
        k,
        items_array=item_array,
    ).toPandas()
    driver = rank_in_memory(user_array, item_array, matrix, k)
    columns = ["user_idx", "rank", "item_idx", "score"]
    expected = distributed[columns].sort_values(["user_idx", "rank"]).reset_index(drop=True)
    assert len(driver) == n_users * k
    assert 3 not in set(driver["item_idx"])
    pd.testing.assert_frame_equal(driver[columns], expected, check_dtype=False, check_exact=True)


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


@pytest.mark.parametrize("ranked_on", ["driver", "spark"])
def test_run_writes_both_fits_and_the_served_lists(spark, features, tmp_path, monkeypatch, ranked_on):
    if ranked_on == "spark":  # the path a large catalogue takes: the same outputs
        monkeypatch.setattr(train_cf, "DRIVER_RANK_MAX_CELLS", 0)
    out = tmp_path / "model"
    params = TrainParams(factors=4, iterations=5, num_threads=1)
    summary = train_cf.run(spark, str(features), str(out), params, k=3, serve_k=2)
    assert summary["users"] == N_USERS and summary["train_nnz"] == len(PAIRS)
    assert summary["serving_nnz"] == len(PAIRS) + len(HOLDOUT)
    assert summary["fits"]["evaluation"]["interactions"] == len(PAIRS)
    assert summary["fits"]["serving"]["interactions"] == len(PAIRS) + len(HOLDOUT)
    assert summary["served_lists"] == {"users": 9, "model_users": 8, "popularity_users": 1, "rows": 18}

    # Evaluation lists: training items excluded only (each user has 6 - 2 training items = 4 candidates).
    evaluation = spark.read.parquet(str(out / "evaluation" / "recommendations"))
    assert evaluation.columns == ["user_idx", "user_id", "rank", "item_idx", "item_id", "score"]
    assert evaluation.count() == N_USERS * 3
    assert not {(r["user_idx"], r["item_idx"]) for r in evaluation.collect()} & set(PAIRS)

    # Served lists: nothing the user interacted with in the window, held-out items included.
    served = spark.read.parquet(str(out / "recommendations"))
    assert served.columns == ["user_id", "rank", "item_id", "score", "source", "user_idx", "item_idx"]
    rows = served.collect()
    window = {(f"u{u}", f"i{i}") for u, i in PAIRS + HOLDOUT} | set(WINDOW_ONLY)
    assert not {(r["user_id"], r["item_id"]) for r in rows} & window
    assert {r["user_id"] for r in rows if r["source"] == "model"} == {f"u{u}" for u in range(N_USERS)}
    # u9 is outside the model: the most popular items (3 users each; ties by index) minus its own i0.
    fallback = sorted(
        (r["rank"], r["item_id"], r["score"], r["user_idx"]) for r in rows if r["user_id"] == "u9"
    )
    assert fallback == [(1, "i1", 4.0, None), (2, "i2", 4.0, None)]
    assert {r["source"] for r in rows if r["user_id"] == "u9"} == {"popularity"}

    assert spark.read.parquet(str(out / "model" / "item_factors")).count() == N_ITEMS
    saved = json.loads((out / "model" / "params.json").read_text())
    assert saved["params"]["factors"] == 4 and saved["engine"] == "implicit" and saved["serve_k"] == 2
    assert not (out / "production").exists()  # no production plan given

    # Same seed, same data: identical served lists on a rerun (overwritten, not appended).
    key = ["user_id", "rank"]
    first = [tuple(r) for r in served.orderBy(key).collect()]
    train_cf.run(spark, str(features), str(out), params, k=3, serve_k=2)
    again = spark.read.parquet(str(out / "recommendations"))
    assert [tuple(r) for r in again.orderBy(key).collect()] == first


def test_the_serving_fit_saw_train_and_holdout(spark, features, tmp_path):
    params = TrainParams(factors=4, iterations=5, num_threads=1)
    train_cf.run(spark, str(features), str(tmp_path / "m"), params, k=3, serve_k=2)
    saved = spark.read.parquet(str(tmp_path / "m" / "model" / "user_factors")).orderBy("user_idx")
    served_factors = np.stack([np.asarray(r["factors"]) for r in saved.collect()])

    both = spark.read.parquet(str(features / "train")).unionByName(
        spark.read.parquet(str(features / "holdout"))
    )
    direct = fit(spark, both, N_USERS, N_ITEMS, params).user_factors.orderBy("user_idx").collect()
    np.testing.assert_array_equal(served_factors, np.stack([np.asarray(r["factors"]) for r in direct]))
    train_only = fit(spark, spark.read.parquet(str(features / "train")), N_USERS, N_ITEMS, params)
    train_factors = np.stack(
        [np.asarray(r["factors"]) for r in train_only.user_factors.orderBy("user_idx").collect()]
    )
    assert not np.array_equal(served_factors, train_factors)


def test_production_is_refitted_on_the_training_split_only(spark, features, tmp_path):
    out = tmp_path / "m"
    candidate = TrainParams(factors=4, iterations=5, num_threads=1)
    production_params = TrainParams(factors=2, iterations=3, num_threads=1)
    pointer = {"version": "2024-01-01_j-1", "ds": "2024-01-01", "params": production_params.as_dict()}
    plan = production.plan(pointer, dt.date(2024, 1, 2), candidate, lambda _: None)
    summary = train_cf.run(spark, str(features), str(out), candidate, k=3, serve_k=2, production_plan=plan)

    assert summary["production"]["status"] == "refit"
    assert summary["fits"]["production"]["interactions"] == len(PAIRS)  # never the holdout
    doc = json.loads((out / "production" / "production.json").read_text())
    assert doc["recommendations"] == str(out / "production" / "recommendations")
    refit = spark.read.parquet(doc["recommendations"])
    direct = fit(spark, spark.read.parquet(str(features / "train")), N_USERS, N_ITEMS, production_params)
    expected = recommend_top_k(
        spark,
        direct.user_factors,
        direct.item_factors,
        spark.read.parquet(str(features / "train")),
        N_ITEMS,
        3,
    )
    key = ["user_idx", "rank"]
    assert [(r["user_idx"], r["rank"], r["item_idx"]) for r in refit.orderBy(key).collect()] == [
        (r["user_idx"], r["rank"], r["item_idx"]) for r in expected.orderBy(key).collect()
    ]

    same = production.plan({**pointer, "params": candidate.as_dict()}, dt.date(2024, 1, 2), candidate, None)
    train_cf.run(spark, str(features), str(out), candidate, k=3, serve_k=2, production_plan=same)
    doc = json.loads((out / "production" / "production.json").read_text())
    assert doc["status"] == "same_config"
    assert doc["recommendations"] == str(out / "evaluation" / "recommendations")


def test_run_without_features_is_a_clear_error(spark, tmp_path):
    with pytest.raises(JobError, match="run build_features first"):
        train_cf.run(spark, str(tmp_path / "none"), str(tmp_path / "out"), TrainParams())


def test_features_that_disagree_with_their_manifest_are_a_clear_error(spark, tmp_path):
    root = write_features(spark, tmp_path / "features")
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps({**manifest, "train_nnz": manifest["train_nnz"] + 1}))
    with pytest.raises(JobError, match="manifest says"):
        train_cf.run(spark, str(root), str(tmp_path / "out"), TrainParams(factors=4, iterations=2))
