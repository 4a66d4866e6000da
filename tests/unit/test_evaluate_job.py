"""evaluate: model and popularity metrics on a tiny hand-computed split, the run() round trip, the CLI."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from spark_jobs import evaluate as job
from spark_jobs.common import schemas
from spark_jobs.common.cli import JobError
from spark_jobs.common.popularity import item_popularity, popular_top_k, popularity_order, popularity_ranking
from spark_jobs.common.production import SCORED_STATUSES
from spark_jobs.common.topk import top_k_excluding
from tests.conftest import ROOT

pytestmark = pytest.mark.spark

K = 2
N_ITEMS = 6  # items 0..5; item 5 has no training user
TS = dt.datetime(2024, 1, 1)

# Training pairs. Distinct users per item: 0 -> 3, 1 -> 2, 2/3/4 -> 1, 5 -> 0, so the popularity order is
# 0, 1, 2, 3, 4, 5 (2, 3, 4 tie and go by index). User 3 has no holdout: counts for popularity only.
TRAIN = [(0, 0), (0, 1), (1, 0), (1, 2), (2, 0), (2, 1), (2, 3), (3, 4)]
# Held-out pairs. Evaluated users: 0, 1, 2, 4 (user 4 has neither training rows nor recommendations).
HOLDOUT = [(0, 2), (0, 5), (1, 1), (2, 4), (4, 3)]
# (user, rank, item), deliberately not in rank order. User 0's rank 3 (item 2, a hit) is beyond K; user 1
# gets one item only; user 3 is not evaluated (its item 0 must not count in coverage); user 4 gets none.
RECS = [(0, 2, 3), (0, 3, 2), (0, 1, 5), (1, 1, 3), (2, 2, 4), (2, 1, 5), (3, 1, 0)]

# Per user with K = 2, T = holdout, R = list (closed forms of docs/contracts.md).
IDCG2 = 1 + 1 / math.log2(3)
# Model: u0 R=[5, 3] T={2, 5} hit@1; u1 R=[3] T={1} none; u2 R=[5, 4] T={4} hit@2; u4 R=[] none.
MODEL = {
    "precision@2": (1 / 2 + 0 + 1 / 2 + 0) / 4,
    "recall@2": (1 / 2 + 0 + 1 + 0) / 4,
    "ndcg@2": (1 / IDCG2 + 0 + 1 / math.log2(3) + 0) / 4,
    "map@2": ((1 / 1) / 2 + 0 + (1 / 2) / 1 + 0) / 4,
    "coverage": 3 / N_ITEMS,  # {5, 3, 4}
}
# Popularity minus own training items: u0 -{0,1}-> [2, 3] hit@1; u1 -{0,2}-> [1, 3] hit@1;
# u2 -{0,1,3}-> [2, 4] hit@2; u4 (nothing to exclude) -> [0, 1] none.
POPULAR_LISTS = {0: [2, 3], 1: [1, 3], 2: [2, 4], 4: [0, 1]}
POPULARITY = {
    "precision@2": (1 / 2 + 1 / 2 + 1 / 2 + 0) / 4,
    "recall@2": (1 / 2 + 1 + 1 + 0) / 4,
    "ndcg@2": (1 / IDCG2 + 1 + 1 / math.log2(3) + 0) / 4,
    "map@2": ((1 / 1) / 2 + 1 / 1 + (1 / 2) / 1 + 0) / 4,
    "coverage": 5 / N_ITEMS,  # {0, 1, 2, 3, 4}
}


def interactions(spark, pairs):
    return spark.createDataFrame([(u, i, 1.0, TS) for u, i in pairs], schemas.INTERACTIONS)


def recommendations(spark, rows):
    return spark.createDataFrame(
        [(u, f"u{u}", rank, i, f"i{i}", 1.0 / rank) for u, rank, i in rows], schemas.RECOMMENDATIONS
    )


@pytest.fixture(scope="module")
def frames(spark):
    return interactions(spark, TRAIN), interactions(spark, HOLDOUT), recommendations(spark, RECS)


def approx(metrics):
    return {name: pytest.approx(value) for name, value in metrics.items()}


def test_model_lists_order_by_rank_and_cut_at_k(spark, frames):
    lists = {row["user_idx"]: row["items"] for row in job.model_lists(frames[2], K).collect()}
    assert lists == {0: [5, 3], 1: [3], 2: [5, 4], 3: [0]}


def test_popularity_lists_exclude_training_items(spark, frames):
    train = frames[0]
    order = popularity_order(spark, train, N_ITEMS)
    checks = order.first()
    assert (checks["order"], checks["with_users"], checks["outside"]) == ([0, 1, 2, 3, 4, 5], 5, 0)
    users_train = spark.createDataFrame(
        [(0, [0, 1]), (1, [0, 2]), (2, [0, 1, 3]), (4, None)], "user_idx int, train_items array<int>"
    )
    got = {row["user_idx"]: row["items"] for row in job.popularity_lists(users_train, order, K).collect()}
    assert got == POPULAR_LISTS


@pytest.mark.parametrize("seed", [3, 7, 11])
def test_native_popularity_equals_the_numpy_ranking(spark, seed):
    # Spark's order and lists (evaluate's baseline, train_cf's fallback) must be exactly popularity_ranking /
    # popular_top_k:
    # many ties, heavy users, users excluding nearly everything, a user excluding nothing.
    rng = np.random.default_rng(seed)
    n_items, k = 40, 5
    pairs = {(int(u), int(i)) for u, i in zip(rng.integers(0, 30, 300), rng.zipf(1.6, 300) % n_items)}
    train = interactions(spark, sorted(pairs))
    expected_order, scores = popularity_ranking(item_popularity(train, n_items))
    order = popularity_order(spark, train, n_items)
    assert order.first()["order"] == expected_order.tolist()
    exclude = [rng.choice(n_items, size=n, replace=False).tolist() for n in (0, 1, 4, 12, 35, 38, 39, 40)]
    users = spark.createDataFrame(list(enumerate(exclude)), "user_idx int, train_items array<int>")
    got = {row["user_idx"]: row["items"] for row in job.popularity_lists(users, order, k).collect()}
    want = popular_top_k(expected_order, scores, [np.array(e, dtype=np.int64) for e in exclude], k)
    assert got == {user: items.tolist() for user, items in enumerate(want)}


def test_evaluate_exact_metrics(spark, frames):
    train, holdout, recs = frames
    metrics = job.evaluate(spark, train, holdout, recs, N_ITEMS, K)
    assert metrics == {"k": K, "model": approx(MODEL), "popularity": approx(POPULARITY), "users_evaluated": 4}


def test_evaluate_rejects_an_empty_holdout(spark, frames):
    train, _, recs = frames
    with pytest.raises(JobError, match="holdout is empty"):
        job.evaluate(spark, train, interactions(spark, []), recs, N_ITEMS, K)


def test_training_items_outside_the_catalogue_fail(spark, frames):
    train, holdout, recs = frames
    with pytest.raises(JobError, match="outside the catalogue"):
        job.evaluate(spark, train, holdout, recs, 4, K)


@pytest.mark.unit
def test_popular_top_k_matches_full_catalogue_top_k():
    # The prefix/bucket shortcut must give exactly top_k_excluding over the whole catalogue, including for
    # heavy users, users excluding almost everything, and ties.
    rng = np.random.default_rng(7)
    n_items, k = 50, 5
    popularity = rng.integers(0, 6, n_items).astype(np.float64)  # many ties
    order, scores = popularity_ranking(popularity)
    exclude = [rng.choice(n_items, size=n, replace=False) for n in (0, 1, 3, 10, 30, 46, 49, 50)]
    expected, _ = top_k_excluding(np.tile(popularity, (len(exclude), 1)), exclude, k)
    got = popular_top_k(order, scores, exclude, k)
    for want, have in zip(expected, got):
        assert have.tolist() == [item for item in want.tolist() if item >= 0]
    assert [len(items) for items in got] == [5, 5, 5, 5, 5, 4, 1, 0]


def write_inputs(spark, root, holdout_pairs=HOLDOUT):
    features = root / "features"
    interactions(spark, TRAIN).write.parquet(str(features / "train"))
    interactions(spark, holdout_pairs).write.parquet(str(features / "holdout"))
    spark.createDataFrame([(i, f"i{i}") for i in range(N_ITEMS)], schemas.ITEM_MAP).write.parquet(
        str(features / "items")
    )
    spark.createDataFrame([(u, f"u{u}") for u in range(5)], schemas.USER_MAP).write.parquet(
        str(features / "users")
    )
    recommendations(spark, RECS).write.parquet(str(root / "recs"))
    return str(features), str(root / "recs")


def test_run_round_trip_writes_metrics_json(spark, tmp_path):
    features, recs = write_inputs(spark, tmp_path)
    output = str(tmp_path / "eval" / "dt=2024-01-01")
    returned = job.run(spark, features, recs, output, K)

    with open(os.path.join(output, "metrics.json"), encoding="utf-8") as handle:
        written = json.load(handle)
    assert written == returned
    assert set(written) == {"k", "model", "popularity", "users_evaluated"}
    keys = {"precision@2", "recall@2", "ndcg@2", "map@2", "coverage"}
    assert set(written["model"]) == keys and set(written["popularity"]) == keys
    assert written["k"] == K and written["users_evaluated"] == 4
    assert written["model"] == approx(MODEL)
    assert written["popularity"] == approx(POPULARITY)


def test_run_fails_clearly_on_missing_holdout(spark, tmp_path):
    features, recs = write_inputs(spark, tmp_path)
    with pytest.raises(JobError, match=r"missing input\(s\): train .*; holdout .*; items"):
        job.run(spark, features + "-nowhere", recs, str(tmp_path / "out"), K)
    os.rename(os.path.join(features, "holdout"), os.path.join(features, "holdout-moved"))
    with pytest.raises(JobError, match=r"missing input\(s\): holdout"):
        job.run(spark, features, recs, str(tmp_path / "out"), K)
    assert not (tmp_path / "out").exists()


def test_run_fails_clearly_on_empty_holdout(spark, tmp_path):
    features, recs = write_inputs(spark, tmp_path, holdout_pairs=[])
    with pytest.raises(JobError, match=r"holdout .* is empty"):
        job.run(spark, features, recs, str(tmp_path / "out"), K)


def test_cli_help_exits_zero():
    env = dict(
        os.environ, PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    )
    done = subprocess.run(
        ["spark-submit", str(ROOT / "spark_jobs" / "evaluate.py"), "--help"],
        cwd=str(ROOT),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for flag in ("--features", "--recommendations", "--output", "--k"):
        assert flag in done.stdout


# Production's lists on the same split: u0 R=[2, 5] both hits (NDCG 1); u1 R=[1] hit (1); u2 R=[3] none;
# u4 none. Candidate minus production per user (NDCG@2): u0 1/IDCG2 - 1, u1 -1, u2 1/log2(3), u4 0.
PRODUCTION_RECS = [(0, 1, 2), (0, 2, 5), (1, 1, 1), (2, 1, 3)]
NDCG_DIFFS = [1 / IDCG2 - 1, -1.0, 1 / math.log2(3), 0.0]


def write_production(spark, root, status="refit", lists=True):
    folder = root / "production"
    folder.mkdir(parents=True, exist_ok=True)
    uri = str(folder / "recommendations")
    if lists:
        recommendations(spark, PRODUCTION_RECS).write.parquet(uri)
    doc = {"status": status, "version": "2024-01-01_j-1", "ds": "2024-01-01", "reason": "why", "params": {}}
    doc["recommendations"] = uri if status in SCORED_STATUSES else None
    (folder / "production.json").write_text(json.dumps(doc))
    return str(folder)


def test_production_is_scored_beside_the_candidate_on_the_same_users(spark, tmp_path):
    features, recs = write_inputs(spark, tmp_path)
    production = write_production(spark, tmp_path)
    metrics = job.run(spark, features, recs, str(tmp_path / "out"), K, production)

    block = metrics["production"]
    assert block["status"] == "refit" and block["version"] == "2024-01-01_j-1"
    assert block["model"]["ndcg@2"] == pytest.approx((1 + 1 + 0 + 0) / 4)
    assert metrics["model"]["ndcg@2"] == pytest.approx(MODEL["ndcg@2"])  # unchanged by the pairing
    paired = block["paired"]
    assert paired["users"] == 4 and paired["users_better"] == 1 and paired["users_worse"] == 2
    assert paired["mean_difference"]["ndcg@2"] == pytest.approx(np.mean(NDCG_DIFFS))
    assert paired["standard_error"]["ndcg@2"] == pytest.approx(np.std(NDCG_DIFFS, ddof=1) / 2)
    assert paired["mean_difference"]["ndcg@2"] == pytest.approx(
        metrics["model"]["ndcg@2"] - block["model"]["ndcg@2"]
    )


def test_an_unscored_production_is_described_not_invented(spark, tmp_path):
    features, recs = write_inputs(spark, tmp_path)
    production = write_production(spark, tmp_path, status="older_date", lists=False)
    metrics = job.run(spark, features, recs, str(tmp_path / "out"), K, production)
    assert metrics["production"] == {
        "status": "older_date",
        "version": "2024-01-01_j-1",
        "ds": "2024-01-01",
        "reason": "why",
        "params": {},
    }


def test_production_lists_that_are_missing_fail_clearly(spark, tmp_path):
    features, recs = write_inputs(spark, tmp_path)
    production = write_production(spark, tmp_path, lists=False)
    with pytest.raises(JobError, match=r"names lists at .* which are missing"):
        job.run(spark, features, recs, str(tmp_path / "out"), K, production)
    with pytest.raises(JobError, match="no production description"):
        job.run(spark, features, recs, str(tmp_path / "out"), K, str(tmp_path / "nowhere"))
