"""tune_trial: one configuration fitted on validation/fit, scored on validation/holdout, as one JSON file."""

from __future__ import annotations

import datetime as dt
import json
import math
import statistics

import pytest

from spark_jobs import tune_trial as job
from spark_jobs.common.cli import JobError
from spark_jobs.common.engines import TrainParams
from spark_jobs.common.ranking import user_metrics
from spark_jobs.common.schemas import INTERACTIONS

pytestmark = pytest.mark.spark

K = 3
N_USERS, N_ITEMS = 13, 9
TS = dt.datetime(2024, 1, 1)
# Two taste groups: users 0-5 like items 0-3, users 6-11 like items 4-7; item 8 is a rare cross-over.
# Fit: each user's 2 older group items (plus item 8 for two users); validation holdout: 1-2 newer ones.
FIT = [(u, (u + j) % 4) for u in range(6) for j in range(2)] + [
    (u, 4 + (u + j) % 4) for u in range(6, 12) for j in range(2)
]
FIT += [(0, 8), (7, 8)]
HOLDOUT = [(u, (u + 2) % 4) for u in range(6)] + [(u, 4 + (u + 2) % 4) for u in range(6, 12)]
HOLDOUT += [(1, 4), (6, (6 + 3) % 4 + 4)]  # a miss-prone cross-group item; a second in-group item
FIT += [(12, 0), (12, 5)]  # user 12: fit rows only (too few training items for validation): not scored
PARAMS = TrainParams(factors=2, iterations=5, num_threads=1)


def write_features(spark, root, fit_pairs=FIT, holdout_pairs=HOLDOUT, validation=True):
    """A features folder with only what tune_trial may read: manifest.json and validation/{fit,holdout}.
    No train/ and no nightly holdout/: reading either would fail."""
    root.mkdir(parents=True, exist_ok=True)
    rows = [(u, i, 1.0 + (u + i) % 3, TS) for u, i in fit_pairs]
    spark.createDataFrame(rows, INTERACTIONS).write.parquet(str(root / "validation" / "fit"))
    rows = [(u, i, 1.0, TS + dt.timedelta(days=1)) for u, i in holdout_pairs]
    spark.createDataFrame(rows, INTERACTIONS).write.parquet(str(root / "validation" / "holdout"))
    block = {
        "fraction": 0.3,
        "fit_nnz": len(fit_pairs),
        "holdout_nnz": len(holdout_pairs),
        "holdout_users": len({u for u, _ in holdout_pairs}),
    }
    manifest = {"users": N_USERS, "items": N_ITEMS, "validation": block if validation else None}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="module")
def features(spark, tmp_path_factory):
    return write_features(spark, tmp_path_factory.mktemp("features"))


def strict_json(path):
    """The file's JSON; NaN / Infinity (which json.loads accepts by default) are an error."""

    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


def spy_on_ranking(monkeypatch):
    """Keep the lists the job ranks (the DataFrame recommend_top_k returned to it)."""
    seen = []
    real = job.recommend_top_k

    def spy(*args, **kwargs):
        ranked = real(*args, **kwargs)
        seen.append(ranked)
        return ranked

    monkeypatch.setattr(job, "recommend_top_k", spy)
    return seen


def brute_force(lists, fit_pairs, holdout_pairs, k):
    """Mean metrics (and the ndcg standard error) in pure Python over the validation users."""
    relevant = {}
    for u, i in holdout_pairs:
        relevant.setdefault(u, set()).add(i)
    per_user = {u: user_metrics(lists.get(u, []), items, k) for u, items in relevant.items()}
    means = {
        f"{mean}@{k}": sum(m[name] for m in per_user.values()) / len(per_user)
        for mean, name in (("precision", "precision"), ("recall", "recall"), ("ndcg", "ndcg"), ("map", "ap"))
    }
    listed = {i for u in relevant for i in lists.get(u, [])}
    means["coverage"] = len(listed) / N_ITEMS
    ndcgs = [m["ndcg"] for m in per_user.values()]
    se = statistics.stdev(ndcgs) / math.sqrt(len(ndcgs)) if len(ndcgs) > 1 else 0.0
    return means, se


def popularity_lists(fit_pairs, users, k):
    """Most distinct fit users first, ties by index, the user's fit items skipped."""
    popularity = {}
    for _user, i in set(fit_pairs):
        popularity[i] = popularity.get(i, 0) + 1
    order = sorted(range(N_ITEMS), key=lambda i: (-popularity.get(i, 0), i))
    own = {}
    for u, i in fit_pairs:
        own.setdefault(u, set()).add(i)
    return {u: [i for i in order if i not in own.get(u, set())][:k] for u in users}


def check_document(doc, features_uri, name, params, k):
    names = {f"{m}@{k}" for m in ("ndcg", "recall", "precision", "map")}
    assert set(doc) == {
        "name",
        "status",
        "features",
        "k",
        "params",
        "validation",
        "metrics",
        "standard_error",
        "popularity",
        "seconds",
    }
    assert (doc["name"], doc["status"], doc["features"], doc["k"]) == (name, "ok", features_uri, k)
    assert doc["params"] == params.as_dict()
    assert set(doc["validation"]) == {"users", "fit_nnz", "holdout_nnz", "users_listed"}
    assert set(doc["metrics"]) == set(doc["popularity"]) == names | {"coverage"}
    assert set(doc["standard_error"]) == names
    assert set(doc["seconds"]) == {"fit", "recommend", "score", "total"}
    for block in ("metrics", "popularity"):
        assert all(0.0 <= value <= 1.0 for value in doc[block].values()), doc[block]
    assert all(value >= 0.0 for value in doc["standard_error"].values())
    assert all(value >= 0.0 for value in doc["seconds"].values())
    assert doc["seconds"]["total"] >= doc["seconds"]["fit"]


def test_trial_scores_its_lists_on_the_validation_holdout(spark, features, tmp_path, monkeypatch):
    ranked = spy_on_ranking(monkeypatch)
    output = tmp_path / "trials" / "t01.json"
    doc = job.run(spark, str(features), str(output), "t01 factors=2", PARAMS, K)

    assert strict_json(output) == doc
    check_document(doc, str(features), "t01 factors=2", PARAMS, K)
    validation_users = {u for u, _ in HOLDOUT}
    assert doc["validation"] == {
        "users": len(validation_users),
        "fit_nnz": len(FIT),
        "holdout_nnz": len(HOLDOUT),
        "users_listed": len(validation_users),
    }

    # The lists the job ranked: k per validation user (user 12 is not ranked), never a fit item.
    assert len(ranked) == 1
    rows = ranked[0].collect()
    lists = {}
    for row in sorted(rows, key=lambda r: (r["user_idx"], r["rank"])):
        lists.setdefault(row["user_idx"], []).append(row["item_idx"])
    assert set(lists) == validation_users
    assert all(len(items) == K for items in lists.values())
    assert not {(r["user_idx"], r["item_idx"]) for r in rows} & set(FIT)

    # The same numbers from the metric definitions in pure Python.
    want, se = brute_force(lists, FIT, HOLDOUT, K)
    assert doc["metrics"] == pytest.approx(want, rel=1e-12, abs=1e-15)
    assert doc["standard_error"][f"ndcg@{K}"] == pytest.approx(se, rel=1e-9)
    assert doc["metrics"][f"ndcg@{K}"] > 0  # the groups are learnt: not a vacuous comparison

    # The popularity baseline: popularity of validation/fit, excluding each user's fit items.
    baseline, _ = brute_force(popularity_lists(FIT, validation_users, K), FIT, HOLDOUT, K)
    assert doc["popularity"] == pytest.approx(baseline, rel=1e-12, abs=1e-15)


def test_spark_als_trial_stays_distributed_and_excludes_fit_items(spark, features, tmp_path, monkeypatch):
    ranked = spy_on_ranking(monkeypatch)

    def no_driver_matrix(*args, **kwargs):
        raise AssertionError("the fit rows were collected to the driver")

    monkeypatch.setattr(job, "matrix_from_frame", no_driver_matrix)
    fitted, real_fit = [], job.fit
    monkeypatch.setattr(job, "fit", lambda *args: fitted.append(args) or real_fit(*args))
    params = TrainParams(engine="spark-als", factors=2, iterations=2)
    output = tmp_path / "t02.json"
    doc = job.run(spark, str(features), str(output), "t02", params, 2)
    assert strict_json(output) == doc
    check_document(doc, str(features), "t02", params, 2)
    assert doc["validation"]["users"] == len({u for u, _ in HOLDOUT})
    rows = ranked[0].collect()
    assert {r["user_idx"] for r in rows} == {u for u, _ in HOLDOUT}
    assert not {(r["user_idx"], r["item_idx"]) for r in rows} & set(FIT)
    # The engine got the fit rows as a DataFrame and no driver-side matrix of them.
    ((_, fit_rows, *_, matrix),) = fitted
    assert isinstance(fit_rows, type(ranked[0])) and matrix is None


def test_standard_errors_are_sample_deviations_over_sqrt_users(spark):
    rows = [(0, 0.5, 1.0, 0.25, 0.1), (1, 0.0, 0.0, 0.0, 0.0), (2, 1.0, 0.5, 0.75, 0.9)]
    per_user = spark.createDataFrame(
        rows, "user_idx int, precision double, recall double, ndcg double, ap double"
    )
    errors = job.standard_errors(per_user, 5)
    for key, column in (("precision@5", 1), ("recall@5", 2), ("ndcg@5", 3), ("map@5", 4)):
        assert errors[key] == pytest.approx(statistics.stdev(r[column] for r in rows) / math.sqrt(3))
    # One user: no deviation to estimate, 0.0 (never NaN, which is not JSON).
    assert job.standard_errors(per_user.where("user_idx = 2"), 5) == dict.fromkeys(errors, 0.0)


def test_features_without_a_validation_split_are_a_clear_error(spark, tmp_path):
    root = tmp_path / "features"
    root.mkdir()
    (root / "manifest.json").write_text(json.dumps({"users": 3, "items": 3, "validation": None}))
    with pytest.raises(
        JobError, match=r"no validation split: rebuild them with build_features --validation-fraction"
    ):
        job.run(spark, str(root), str(tmp_path / "t.json"), "t", PARAMS, K)
    (root / "manifest.json").write_text(json.dumps({"users": 3, "items": 3}))  # a build before the option
    with pytest.raises(JobError, match="no validation split"):
        job.run(spark, str(root), str(tmp_path / "t.json"), "t", PARAMS, K)
    block = {"fraction": 0.2, "fit_nnz": 4, "holdout_nnz": 2, "holdout_users": 2}
    (root / "manifest.json").write_text(json.dumps({"users": 3, "items": 3, "validation": block}))
    with pytest.raises(JobError, match=r"lack validation/fit .*; validation/holdout .*--validation-fraction"):
        job.run(spark, str(root), str(tmp_path / "t.json"), "t", PARAMS, K)
    with pytest.raises(JobError, match="run build_features first"):
        job.run(spark, str(tmp_path / "nowhere"), str(tmp_path / "t.json"), "t", PARAMS, K)
    assert not (tmp_path / "t.json").exists()


def test_a_validation_split_that_disagrees_with_its_manifest_is_a_clear_error(spark, tmp_path):
    root = write_features(spark, tmp_path / "features")
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["validation"]["holdout_users"] += 1
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(JobError, match="but the manifest says"):
        job.run(spark, str(root), str(tmp_path / "t.json"), "t", PARAMS, K)


@pytest.mark.unit
def test_rendered_arguments_parse_into_the_configuration():
    argv = [
        "--features", "s3://arts/tuning/dt=1998-04-22/manual__1/features/hl0",
        "--output", "s3://arts/tuning/dt=1998-04-22/manual__1/trials/t01_f32.json",
        "--name", "t01_f32",
        "--engine", "implicit", "--algorithm", "als",
        "--factors", "32", "--iterations", "15", "--regularization", "30.0", "--alpha", "1.0",
        "--learning-rate", "0.01", "--seed", "42", "--num-threads", "0", "--k", "10",
        "--outcome", "s3://arts/tuning/dt=1998-04-22/manual__1/outcomes/t01_f32.json",
    ]  # fmt: skip
    args = job.parse_args(argv)
    assert (args.features, args.name, args.k) == (argv[1], "t01_f32", 10)
    assert args.output.endswith("trials/t01_f32.json") and args.outcome.endswith("outcomes/t01_f32.json")
    assert job.params_from_args(args) == TrainParams(factors=32, regularization=30.0)


@pytest.mark.unit
def test_unset_model_options_give_the_default_params_and_name_is_required():
    required = ["--features", "f", "--output", "o"]
    assert job.params_from_args(job.parse_args([*required, "--name", "n"])) == TrainParams()
    with pytest.raises(SystemExit):
        job.parse_args(required)  # --name is required


@pytest.mark.unit
def test_an_impossible_configuration_fails_before_spark_starts(monkeypatch):
    argv = ["--features", "f", "--output", "o", "--name", "n", "--engine", "spark-als", "--algorithm", "bpr"]

    def no_spark(*args, **kwargs):
        raise AssertionError("a Spark session was started")

    monkeypatch.setattr(job, "build_spark", no_spark)
    with pytest.raises(JobError, match="only implements algorithm als"):
        job.main(argv)
