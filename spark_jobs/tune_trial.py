"""tune_trial: one tuning configuration, fitted on the validation split's fit part and scored on its holdout.

    spark-submit spark_jobs/tune_trial.py --features URI --output URI --name NAME
        [--engine implicit|spark-als] [--algorithm als|bpr] [--factors N] [--iterations N]
        [--regularization R] [--alpha A] [--learning-rate LR] [--seed S] [--num-threads N] [--k K]

One step of the tuning sweep (docs/contracts.md §6). Reads a build_features folder built with
``--validation-fraction``: ``manifest.json`` (catalogue sizes, the ``validation`` block),
``validation/fit/`` and ``validation/holdout/``, i.e. ``train/`` cut once more by time, each user's
newest training items held out. It never reads ``holdout/``, the nightly holdout the quality gate scores
on, nor ``train/`` as a whole: the sweep chooses a configuration without seeing the gate's data.

The configuration (the model options, as train_cf takes them) is fitted on ``validation/fit/``; each user
with validation items gets their top ``--k`` items excluding their fit items, scored against their
validation items with evaluate's metrics (:mod:`spark_jobs.common.ranking`; users without a list score
zeros). The popularity baseline is scored on the same users the way evaluate does it: the items with the
most distinct fit users, ties by index, excluding the user's fit items. Standard errors are the sample
standard deviation of the per-user metric over the evaluated users / sqrt(users) (0.0 for one user).

Writes one JSON document to ``--output`` (a file URI, overwritten)::

    {"name": NAME, "status": "ok", "features": URI, "k": 10, "params": {...TrainParams...},
     "validation": {"users", "fit_nnz", "holdout_nnz", "users_listed"},
     "metrics": {"ndcg@10", "recall@10", "precision@10", "map@10", "coverage"},
     "standard_error": {"ndcg@10", "recall@10", "precision@10", "map@10"},
     "popularity": {same keys as metrics},
     "seconds": {"fit", "recommend", "score", "total"}}

``seconds``: ``fit`` is the model's fit alone, ``recommend`` computing the lists, ``score`` both scorings,
``total`` the whole trial on a ready Spark session (reading included, writing the document excluded).
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a file by spark-submit: make the `spark_jobs` package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import json
import math
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.common import fs
from spark_jobs.common import job_defaults as defaults
from spark_jobs.common.cli import JobError, new_parser, positive_int_arg, run_job
from spark_jobs.common.engines import (
    FactorModel,
    TrainParams,
    add_model_arguments,
    fit,
    matrix_from_frame,
    params_from_args,
)
from spark_jobs.common.joblog import get_logger
from spark_jobs.common.popularity import CatalogueMismatch, popularity_order
from spark_jobs.common.ranking import MEAN_METRICS, USER_METRICS
from spark_jobs.common.recommend import recommend_top_k
from spark_jobs.common.session import build_spark
from spark_jobs.common.uris import join_uri
from spark_jobs.evaluate import model_lists, popularity_lists, relevant_sets, score_lists, summarise

JOB = "tune_trial"
log = get_logger(JOB)
REBUILD = "rebuild them with build_features --validation-fraction F (e.g. 0.2)"


# ------------------------------------------------------------------------------------------- inputs


def read_validation(spark: SparkSession, features_uri: str) -> Tuple[Dict[str, Any], DataFrame, DataFrame]:
    """``(manifest, fit, holdout)`` of the features' validation split; fit is (user_idx, item_idx,
    confidence), holdout (user_idx, item_idx). Never touches the nightly ``holdout/``.

    Raises :class:`JobError` when the features, their validation split or a count is missing.
    """
    manifest_uri = join_uri(features_uri, "manifest.json")
    if not fs.exists(spark, manifest_uri):
        raise JobError(f"no features manifest at {manifest_uri}: run build_features first")
    manifest = fs.read_json(spark, manifest_uri)
    block = manifest.get("validation") if isinstance(manifest, dict) else None
    if not block:
        raise JobError(f"the features at {features_uri} have no validation split: {REBUILD}")
    try:
        int(manifest["users"]), int(manifest["items"])
        int(block["fit_nnz"]), int(block["holdout_nnz"]), int(block["holdout_users"])
    except (KeyError, TypeError, ValueError) as exc:
        raise JobError(f"{manifest_uri} lacks a count ({exc}): {REBUILD}") from None
    uris = {name: join_uri(features_uri, "validation", name) for name in ("fit", "holdout")}
    missing = [f"validation/{name} ({uri})" for name, uri in uris.items() if not fs.exists(spark, uri)]
    if missing:
        raise JobError(f"the features at {features_uri} lack {'; '.join(missing)}: {REBUILD}")
    fit_rows = spark.read.parquet(uris["fit"]).select("user_idx", "item_idx", "confidence")
    holdout = spark.read.parquet(uris["holdout"]).select("user_idx", "item_idx")
    return manifest, fit_rows, holdout


def collect_fit(fit_rows: DataFrame, params: TrainParams, manifest: Dict[str, Any]) -> Any:
    """For a driver-side engine, ``fit_rows`` collected once as CSR (as train_cf's
    ``collect_interactions``); None for Spark ALS, whose data stays distributed.

    Raises :class:`JobError` if the rows disagree with the manifest's count or fall outside the
    catalogue (features from different builds).
    """
    if params.engine != "implicit":
        return None
    pdf = fit_rows.toPandas()
    expected = int(manifest["validation"]["fit_nnz"])
    if len(pdf) != expected:
        raise JobError(f"validation/fit holds {len(pdf)} pairs, but the manifest says {expected}: {REBUILD}")
    n_users, n_items = int(manifest["users"]), int(manifest["items"])
    for column, size in (("user_idx", n_users), ("item_idx", n_items)):
        values = pdf[column]
        if len(values) and (values.min() < 0 or values.max() >= size):
            raise JobError(
                f"validation/fit has {column} outside 0..{size - 1} (e.g. "
                f"{int(values.max() if values.max() >= size else values.min())}): {REBUILD}"
            )
    return matrix_from_frame(pdf, n_users, n_items)


# ------------------------------------------------------------------------------------------ scoring


def rank_users(
    spark: SparkSession,
    fit_rows: DataFrame,
    users: DataFrame,
    n_users: int,
    n_items: int,
    params: TrainParams,
    k: int,
    matrix: Any = None,
) -> Tuple[FactorModel, DataFrame]:
    """Fit ``params`` on ``fit_rows``; rank the top ``k`` of the users in ``users`` (user_idx) only,
    excluding their fit items. Returns ``(model, ranked)``, ranked (user_idx, rank, item_idx, score) lazy.
    """
    model = fit(spark, fit_rows, n_users, n_items, params, matrix)
    wanted = model.user_factors.join(users.select("user_idx"), "user_idx", "left_semi")
    ranked = recommend_top_k(
        spark, wanted, model.item_factors, fit_rows, n_items, k, items_array=model.item_array
    )
    return model, ranked


def standard_errors(per_user: DataFrame, k: int) -> Dict[str, float]:
    """``PER_USER`` rows (evaluate's) -> ``{"precision@k", ...}``: sample standard deviation of each
    per-user metric over the rows / sqrt(rows); 0.0 when it is undefined (a single user)."""
    row = per_user.agg(
        F.count(F.lit(1)).alias("users"), *(F.stddev_samp(name).alias(name) for name in USER_METRICS)
    ).first()
    users = int(row["users"])
    out = {}
    for mean, name in zip(MEAN_METRICS, USER_METRICS):
        sd = row[name]
        out[f"{mean}@{k}"] = float(sd) / math.sqrt(users) if sd is not None and not math.isnan(sd) else 0.0
    return out


def score_trial(
    spark: SparkSession,
    relevant: DataFrame,
    ranked: DataFrame,
    fit_rows: DataFrame,
    n_items: int,
    k: int,
) -> Dict[str, Any]:
    """The model's lists and the popularity baseline scored on ``relevant`` (evaluate's
    :func:`~spark_jobs.evaluate.relevant_sets` of the validation holdout).

    Returns ``{"metrics", "standard_error", "popularity", "users", "users_listed"}``.
    """
    cached: List[DataFrame] = []
    try:
        model = score_lists(relevant, model_lists(ranked, k), k).persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(model)
        metrics, users, listed = summarise(model, n_items, k)
        errors = standard_errors(model, k)

        order = popularity_order(spark, fit_rows, n_items).localCheckpoint(eager=False)
        checks = order.select("outside", "outside_min").first()
        if checks["outside"]:
            mismatch = CatalogueMismatch.of(checks["outside"], n_items, checks["outside_min"])
            raise JobError(f"validation/fit {mismatch}")
        evaluated = relevant.select("user_idx")
        fit_items = (
            fit_rows.join(evaluated, "user_idx", "left_semi")
            .groupBy("user_idx")
            .agg(F.collect_set("item_idx").alias("train_items"))
        )
        users_fit = evaluated.join(fit_items, "user_idx", "left")  # no fit rows: nothing to exclude
        baseline = score_lists(relevant, popularity_lists(users_fit, order, k), k)
        popularity, _, _ = summarise(baseline, n_items, k)
    finally:
        for frame in cached:
            frame.unpersist()
    return {
        "metrics": metrics,
        "standard_error": errors,
        "popularity": popularity,
        "users": users,
        "users_listed": listed,
    }


# ---------------------------------------------------------------------------------------------- run


def run(
    spark: SparkSession,
    features_uri: str,
    output_uri: str,
    name: str,
    params: TrainParams,
    k: int = defaults.EVALUATION_K,
) -> Dict[str, Any]:
    """Fit ``params`` on the features' validation fit, score it on the validation holdout, write the
    trial's document to ``output_uri`` (one JSON file) and return it."""
    if k < 1:
        raise JobError(f"k must be >= 1, got {k}")
    started = time.perf_counter()
    manifest, fit_rows, holdout = read_validation(spark, features_uri)
    block = manifest["validation"]
    n_users, n_items = int(manifest["users"]), int(manifest["items"])
    n_fit, n_holdout = int(block["fit_nnz"]), int(block["holdout_nnz"])
    if n_items < 1:
        raise JobError(f"the item catalogue of {features_uri} is empty")
    if n_fit == 0 or n_holdout == 0:
        raise JobError(
            f"the validation split of {features_uri} has {n_fit} fit and {n_holdout} holdout pairs: "
            f"nothing to {'fit' if n_fit == 0 else 'score'} ({REBUILD} and enough items per user)"
        )
    log.info(
        "trial %r: %s on %d validation fit pairs, scored on %d validation holdout pairs (%d users x %d "
        "items, features %s)",
        name,
        params.as_dict(),
        n_fit,
        n_holdout,
        n_users,
        n_items,
        features_uri,
    )
    matrix = collect_fit(fit_rows, params, manifest)

    relevant = relevant_sets(holdout).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        # Fills the cache, and checks the holdout against the manifest (features from one build).
        sizes = relevant.agg(
            F.count(F.lit(1)).alias("users"), F.sum(F.size("relevant")).alias("pairs")
        ).first()
        counted = (int(sizes["users"]), int(sizes["pairs"] or 0))
        if counted != (int(block["holdout_users"]), n_holdout):
            raise JobError(
                f"validation/holdout holds {counted[0]} users with {counted[1]} distinct pairs, but the "
                f"manifest says {block['holdout_users']} users with {n_holdout}: {REBUILD}"
            )

        model, ranked = rank_users(spark, fit_rows, relevant, n_users, n_items, params, k, matrix)
        recommend_started = time.perf_counter()
        ranked = ranked.localCheckpoint()  # read by scoring; computed once, and timed here
        recommend_seconds = time.perf_counter() - recommend_started
        log.info(
            "fit in %.2f s, lists for %d users in %.2f s", model.fit_seconds, counted[0], recommend_seconds
        )

        score_started = time.perf_counter()
        scored = score_trial(spark, relevant, ranked, fit_rows, n_items, k)
        score_seconds = time.perf_counter() - score_started
    finally:
        relevant.unpersist()

    document = {
        "name": name,
        "status": "ok",
        "features": features_uri,
        "k": k,
        "params": params.as_dict(),
        "validation": {
            "users": scored["users"],
            "fit_nnz": n_fit,
            "holdout_nnz": n_holdout,
            "users_listed": scored["users_listed"],
        },
        "metrics": scored["metrics"],
        "standard_error": scored["standard_error"],
        "popularity": scored["popularity"],
        "seconds": {
            "fit": round(model.fit_seconds, 3),
            "recommend": round(recommend_seconds, 3),
            "score": round(score_seconds, 3),
            "total": round(time.perf_counter() - started, 3),
        },
    }
    try:
        json.dumps(document, allow_nan=False)
    except ValueError as exc:  # a NaN or infinity would make the document invalid JSON
        raise JobError(f"trial {name!r} produced a non-finite number: {exc}: {document}") from None
    fs.write_json(spark, output_uri, document)
    log.info(
        "trial %r: ndcg@%d %.4f (se %.4f; popularity %.4f) over %d users (%d listed); wrote %s",
        name,
        k,
        document["metrics"][f"ndcg@{k}"],
        document["standard_error"][f"ndcg@{k}"],
        document["popularity"][f"ndcg@{k}"],
        scored["users"],
        scored["users_listed"],
        output_uri,
    )
    return document


def parse_args(argv: Optional[Sequence[str]] = None):
    parser = new_parser(JOB, __doc__.split("\n\n")[0])
    parser.add_argument(
        "--features", required=True, help="build_features output URI, built with --validation-fraction"
    )
    parser.add_argument("--output", required=True, help="URI of the trial's JSON document (overwritten)")
    parser.add_argument("--name", required=True, help="the configuration's name (recorded)")
    add_model_arguments(parser)  # train_cf's model options
    parser.add_argument(
        "--k", type=positive_int_arg, default=defaults.EVALUATION_K, help="list length and metrics' K"
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    try:
        params = params_from_args(args)
    except ValueError as exc:
        raise JobError(str(exc)) from None
    spark = build_spark(JOB)
    run(spark, args.features, args.output, args.name, params, args.k)


if __name__ == "__main__":
    run_job(JOB, main)
