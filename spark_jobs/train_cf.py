"""train_cf: the evaluation fit, production's refit, the serving fit, and the served top-K lists.

    spark-submit spark_jobs/train_cf.py --features URI --output URI [--engine implicit|spark-als]
        [--algorithm als|bpr] [--factors N] [--iterations N] [--regularization R] [--alpha A]
        [--learning-rate LR] [--seed S] [--num-threads N] [--k K] [--serve-k K]
        [--production-pointer URI --run-date YYYY-MM-DD] [--params-source JSON]

Two fits with the same engine and parameters, for two purposes (docs/contracts.md):

1. the **evaluation model**, fitted on build_features' ``train/`` only; its top ``--k`` lists exclude the
   user's training items and are what evaluate scores on ``holdout/`` (honest metrics, the gate's input);
2. the **serving model**, fitted on every interaction of the window (``train/`` + ``holdout/``); its top
   ``--serve-k`` lists exclude every item the user interacted with in the window. This is what is promoted.

Users of the window that the model cannot serve (dropped by minimum support, or without factors) get the
catalogue's most popular items they have not interacted with, marked ``source = popularity``.

With ``--production-pointer`` (the registry's ``latest.json``), production's recorded configuration is
refitted on ``train/`` too, so that evaluate can score it beside the candidate without leakage
(:mod:`spark_jobs.common.production`).

Writes under ``--output`` (each overwritten):

- ``model/user_factors/``, ``model/item_factors/`` (index, id, factors) of the serving model, and
  ``model/params.json`` (engine, hyperparameters, both fits' sizes and seconds, list counts);
- ``recommendations/``: the served lists (user_id, rank, item_id, score, source, user_idx, item_idx;
  ``serve_k`` rows per user, best first; user_idx is null for users outside the model);
- ``evaluation/recommendations/``: the evaluation model's top-k (user_idx, user_id, rank, item_idx,
  item_id, score);
- ``production/production.json`` and, for a refit, ``production/recommendations/``.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a file by spark-submit: make the `spark_jobs` package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import datetime as dt
import time
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.common import fs, production
from spark_jobs.common import job_defaults as defaults
from spark_jobs.common.cli import JobError, date_arg, json_object_arg, new_parser, positive_int_arg, run_job
from spark_jobs.common.engines import (
    FactorModel,
    TrainParams,
    add_model_arguments,
    fit,
    matrix_from_frame,
    params_from_args,
)
from spark_jobs.common.joblog import get_logger
from spark_jobs.common.popularity import (
    CatalogueMismatch,
    item_popularity,
    item_popularity_of_pairs,
    popular_lists,
    popularity_ranking,
)
from spark_jobs.common.recommend import RANKED, rank_in_memory, recommend_top_k
from spark_jobs.common.session import build_spark
from spark_jobs.common.uris import join_uri

JOB = "train_cf"
log = get_logger(JOB)
# Up to this many user x item scores, a driver-side fit's lists are ranked on the driver: a small
# catalogue ranks there in well under a second, where the distributed pass first starts Python workers
# (about 2 s on MovieLens-100K). Past it the distributed pass wins: it scores on every executor, overlapped
# with the write, where the driver ranks then hands every row to Spark (50,000 x 20,000 with 2 threads:
# 68 s against 49 s for the whole job, measured side by side).
DRIVER_RANK_MAX_CELLS = 100_000_000


def fit_and_rank(
    spark: SparkSession,
    interactions: DataFrame,
    n_users: int,
    n_items: int,
    params: TrainParams,
    k: int,
    matrix: Any = None,
) -> tuple:
    """Fit ``params`` on ``interactions`` and rank each user's top ``k`` excluding their interactions.

    ``matrix``: the interactions already collected as CSR (driver-side engines use it, and up to
    ``DRIVER_RANK_MAX_CELLS`` scores their lists are ranked on the driver from it: :func:`rank_in_memory`,
    the same rows as the distributed :func:`recommend_top_k`). Returns ``(model, ranked, seconds)``:
    ranked is (user_idx, rank, item_idx, score), lazy when Spark ranks (the caller's write computes it);
    seconds = {"fit": ...}.
    """
    model = fit(spark, interactions, n_users, n_items, params, matrix)
    if model.user_array is not None and matrix is not None and n_users * n_items <= DRIVER_RANK_MAX_CELLS:
        threads = params.num_threads or os.cpu_count() or 1  # implicit's convention: 0 = every core
        lists = rank_in_memory(model.user_array, model.item_array, matrix, k, threads=threads)
        ranked = spark.createDataFrame(lists, RANKED)
    else:
        ranked = recommend_top_k(
            spark,
            model.user_factors,
            model.item_factors,
            interactions,
            n_items,
            k,
            items_array=model.item_array,
        )
    return model, ranked, {"fit": round(model.fit_seconds, 3)}


def served_lists(
    spark: SparkSession,
    ranked: DataFrame,
    popularity: np.ndarray,
    window: DataFrame,
    users: DataFrame,
    items: DataFrame,
    serve_k: int,
) -> DataFrame:
    """The served lists: the model's rows for the users it ranked, popularity for every other window user.

    Args:
        ranked: the serving model's (user_idx, rank, item_idx, score), window items already excluded.
        popularity: distinct users per item in train + holdout, shape (n_items,).
        window: (user_id, item_id) of every interaction in the window, before minimum support.
        users, items: the id maps.

    Returns (user_id, rank, item_id, score, source, user_idx, item_idx): ``source`` is ``model`` or
    ``popularity`` (score = the item's distinct users in the window, after minimum support).
    """
    model_rows = (
        ranked.join(users, "user_idx")
        .join(items, "item_idx")
        .select("user_id", "rank", "item_id", "score", F.lit("model").alias("source"), "user_idx", "item_idx")
    )
    served = model_rows.select("user_id").distinct()
    fallback_users = window.select("user_id").distinct().join(served, "user_id", "left_anti")
    own_items = (
        window.join(fallback_users, "user_id", "left_semi")
        .join(items, "item_id")
        .groupBy("user_id")
        .agg(F.collect_set("item_idx").alias("exclude"))
    )
    fallback_users = fallback_users.join(own_items, "user_id", "left").join(users, "user_id", "left")
    popular = popularity_rows(spark, fallback_users, popularity, serve_k).join(items, "item_idx")
    popular_rows = popular.select(
        "user_id", "rank", "item_id", "score", F.lit("popularity").alias("source"), "user_idx", "item_idx"
    )
    return model_rows.unionByName(popular_rows)


def popularity_rows(spark: SparkSession, users: DataFrame, popularity: np.ndarray, k: int) -> DataFrame:
    """Popularity lists as rows: ``users`` (user_id, user_idx or null, exclude: array<int> or null) ->
    (user_id, user_idx, rank, item_idx, score), ``k`` rows per user (fewer if the catalogue runs out);
    score is the item's ``popularity`` (shape (n_items,)). The lists are evaluate's baseline lists
    (:func:`popular_lists`, Spark expressions) over :func:`popularity_ranking`'s order.
    """
    order, _ = popularity_ranking(popularity)
    ranking = spark.createDataFrame(
        pd.DataFrame({"order": [order], "popularity": [popularity.astype(np.float64)]}),
        "order array<int>, popularity array<double>",
    )
    lists = popular_lists(users, ranking, k, keys=("user_id", "user_idx"))
    return (
        lists.select("user_id", "user_idx", F.posexplode("items").alias("position", "item_idx"))
        .crossJoin(F.broadcast(ranking.select("popularity")))
        .select(
            "user_id",
            "user_idx",
            (F.col("position") + 1).alias("rank"),
            "item_idx",
            F.element_at("popularity", F.col("item_idx") + 1).alias("score"),
        )
    )


def write_factors(model: FactorModel, users: DataFrame, items: DataFrame, model_uri: str) -> None:
    model.user_factors.join(users, "user_idx").select("user_idx", "user_id", "factors").write.mode(
        "overwrite"
    ).parquet(join_uri(model_uri, "user_factors"))
    model.item_factors.join(items, "item_idx").select("item_idx", "item_id", "factors").write.mode(
        "overwrite"
    ).parquet(join_uri(model_uri, "item_factors"))


def with_ids(ranked: DataFrame, users: DataFrame, items: DataFrame) -> DataFrame:
    """(user_idx, rank, item_idx, score) -> the evaluation-list schema with ids."""
    return (
        ranked.join(users, "user_idx")
        .join(items, "item_idx")
        .select("user_idx", "user_id", "rank", "item_idx", "item_id", "score")
    )


def collect_interactions(
    spark: SparkSession,
    train: DataFrame,
    holdout: DataFrame,
    params: TrainParams,
    manifest: Dict[str, Any],
) -> Tuple[Any, Any, Optional[np.ndarray]]:
    """For a driver-side engine, collect train + holdout once: ``(train matrix, train + holdout matrix,
    item popularity over both)``; ``(None, None, None)`` for Spark ALS, whose data stays distributed.

    Raises :class:`JobError` if the rows collected disagree with the manifest's counts or fall outside
    the catalogue (features from different builds).
    """
    if params.engine != "implicit":
        return None, None, None
    pdf = (
        train.withColumn("_holdout", F.lit(False))
        .unionByName(holdout.withColumn("_holdout", F.lit(True)))
        .toPandas()
    )
    is_holdout = pdf["_holdout"].to_numpy(dtype=bool)
    counted = (int((~is_holdout).sum()), int(is_holdout.sum()))
    if counted != (int(manifest["train_nnz"]), int(manifest["holdout_nnz"])):
        raise JobError(
            f"features hold {counted[0]} train + {counted[1]} holdout pairs, but their manifest says "
            f"{manifest['train_nnz']} + {manifest['holdout_nnz']}: rebuild the features"
        )
    n_users, n_items = int(manifest["users"]), int(manifest["items"])
    frame = pdf.drop(columns="_holdout")
    try:
        popularity = item_popularity_of_pairs(
            frame["user_idx"].to_numpy(), frame["item_idx"].to_numpy(), n_items
        )
    except CatalogueMismatch as exc:
        raise JobError(str(exc)) from None
    train_matrix = matrix_from_frame(frame[~is_holdout], n_users, n_items)
    return train_matrix, matrix_from_frame(frame, n_users, n_items), popularity


def run(
    spark: SparkSession,
    features_uri: str,
    output_uri: str,
    params: TrainParams,
    k: int = defaults.EVALUATION_K,
    serve_k: int = defaults.SERVE_K,
    production_plan: Optional[Dict[str, Any]] = None,
    params_source: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """Both fits (and production's refit per ``production_plan``); write everything; return params.json.

    ``production_plan`` is :func:`spark_jobs.common.production.plan`'s document, or None to skip
    production altogether (no ``production/`` is written then). ``params_source`` (where the parameters
    came from: the config, or which tuning run) is recorded in params.json as given.
    """
    paths = {name: join_uri(features_uri, name) for name in ("train", "holdout", "users", "items", "window")}
    paths["manifest"] = join_uri(features_uri, "manifest.json")
    if not fs.exists(spark, paths["train"]):
        raise JobError(f"no training data at {paths['train']}: run build_features first")
    missing = [f"{name} ({uri})" for name, uri in paths.items() if not fs.exists(spark, uri)]
    if missing:
        raise JobError(
            f"features at {features_uri} lack {'; '.join(missing)}: rebuild them with build_features"
        )
    # The sizes come from build_features' manifest, not from counting every input again.
    manifest = fs.read_json(spark, paths["manifest"])
    try:
        n_users, n_items = int(manifest["users"]), int(manifest["items"])
        n_train, n_holdout = int(manifest["train_nnz"]), int(manifest["holdout_nnz"])
        window_users = int(manifest["window_users"])
    except (KeyError, TypeError, ValueError) as exc:
        raise JobError(f"{paths['manifest']} lacks a count ({exc}): rebuild the features") from None
    n_all = n_train + n_holdout
    train = spark.read.parquet(paths["train"]).select("user_idx", "item_idx", "confidence")
    holdout = spark.read.parquet(paths["holdout"]).select("user_idx", "item_idx", "confidence")
    users = spark.read.parquet(paths["users"]).select("user_idx", "user_id")
    items = spark.read.parquet(paths["items"]).select("item_idx", "item_id")
    window = spark.read.parquet(paths["window"]).select("user_id", "item_id")
    everything = train.unionByName(holdout)
    if n_train == 0:
        raise JobError(f"training data at {paths['train']} is empty")
    log.info(
        "read %d training + %d held-out pairs (%d users x %d items) from %s",
        n_train,
        n_holdout,
        n_users,
        n_items,
        features_uri,
    )
    train_matrix, all_matrix, popularity = collect_interactions(spark, train, holdout, params, manifest)
    fits: Dict[str, Dict[str, Any]] = {}

    # 1. Evaluation model: train/ only, lists for evaluate.
    _, ranked, seconds = fit_and_rank(spark, train, n_users, n_items, params, k, train_matrix)
    started = time.perf_counter()
    eval_uri = join_uri(output_uri, "evaluation", "recommendations")
    with_ids(ranked, users, items).write.mode("overwrite").parquet(eval_uri)
    seconds["recommend"] = round(time.perf_counter() - started, 3)
    fits["evaluation"] = {"interactions": n_train, "k": k, "seconds": seconds}
    log.info(
        "evaluation fit on %d pairs: %.2f s fit, %.2f s lists (written)",
        n_train,
        seconds["fit"],
        seconds["recommend"],
    )

    # 2. Production's configuration on the same split, unless it is the candidate's own.
    production_doc = None
    if production_plan is not None:
        production_doc = dict(production_plan)
        if production_doc["status"] == "same_config":
            production_doc["recommendations"] = eval_uri
        elif production_doc["status"] == "refit":
            prod_params = production.params_from_record(production_doc["params"])
            _, prod_ranked, seconds = fit_and_rank(
                spark, train, n_users, n_items, prod_params, k, train_matrix
            )
            started = time.perf_counter()
            prod_uri = join_uri(output_uri, "production", "recommendations")
            with_ids(prod_ranked, users, items).write.mode("overwrite").parquet(prod_uri)
            seconds["recommend"] = round(time.perf_counter() - started, 3)
            production_doc["recommendations"] = prod_uri
            fits["production"] = {"interactions": n_train, "k": k, "seconds": seconds}
            log.info(
                "production %s refitted on %d pairs in %.2f s",
                production_doc["version"],
                n_train,
                seconds["fit"],
            )
        log.info("production: %s (%s)", production_doc["status"], production_doc["reason"])
        fs.write_json(spark, join_uri(output_uri, "production", "production.json"), production_doc)

    # 3. Serving model: every interaction of the window; lists exclude all of them.
    serving, ranked, seconds = fit_and_rank(spark, everything, n_users, n_items, params, serve_k, all_matrix)
    started = time.perf_counter()
    # Read twice by served_lists (the model's rows, and which users they cover): computed once.
    ranked = ranked.localCheckpoint()
    seconds["recommend"] = round(time.perf_counter() - started, 3)
    fits["serving"] = {"interactions": n_all, "k": serve_k, "seconds": seconds}
    log.info("serving fit on %d pairs: %.2f s fit, %.2f s lists", n_all, seconds["fit"], seconds["recommend"])
    started = time.perf_counter()
    recs_uri = join_uri(output_uri, "recommendations")
    if popularity is None:
        try:
            popularity = item_popularity(everything, n_items)
        except CatalogueMismatch as exc:
            raise JobError(str(exc)) from None
    served_lists(spark, ranked, popularity, window, users, items, serve_k).write.mode("overwrite").parquet(
        recs_uri
    )
    model_uri = join_uri(output_uri, "model")
    write_factors(serving, users, items, model_uri)
    fits["serving"]["seconds"]["write"] = round(time.perf_counter() - started, 3)

    written = spark.read.parquet(recs_uri)
    by_source = {
        row["source"]: (int(row["users"]), int(row["rows"]))
        for row in written.groupBy("source")
        .agg(F.countDistinct("user_id").alias("users"), F.count(F.lit(1)).alias("rows"))
        .collect()
    }
    lists = {
        "users": window_users,
        "model_users": by_source.get("model", (0, 0))[0],
        "popularity_users": by_source.get("popularity", (0, 0))[0],
        "rows": sum(rows for _, rows in by_source.values()),
    }
    summary = {
        "engine": params.engine,
        "algorithm": params.algorithm,
        "params": params.as_dict(),
        "k": k,
        "serve_k": serve_k,
        "features": features_uri,
        "users": n_users,
        "items": n_items,
        "train_nnz": n_train,
        "serving_nnz": n_all,
        "fits": fits,
        "fit_seconds": fits["serving"]["seconds"]["fit"],
        "params_source": params_source,
        "served_lists": lists,
        "production": None
        if production_doc is None
        else {key: production_doc[key] for key in ("status", "version", "ds", "reason")},
    }
    fs.write_json(spark, join_uri(model_uri, "params.json"), summary)
    if lists["model_users"] + lists["popularity_users"] != window_users:
        raise JobError(
            f"served lists cover {lists['model_users']} model + {lists['popularity_users']} "
            f"popularity users, but the window has {window_users}"
        )
    log.info(
        "served lists for %d users (%d model, %d popularity; %d rows) at %s; serving model at %s",
        window_users,
        lists["model_users"],
        lists["popularity_users"],
        lists["rows"],
        recs_uri,
        model_uri,
    )
    return summary


def resolve_production(
    spark: SparkSession, pointer_uri: str, run_date: dt.date, params: TrainParams
) -> Dict[str, Any]:
    """Read the registry pointer (absent: no production) and plan production's scoring."""
    try:
        pointer = fs.read_json(spark, pointer_uri) if fs.exists(spark, pointer_uri) else None
    except ValueError as exc:
        return production.unavailable(None, f"{pointer_uri} is not valid JSON: {exc}")
    if pointer is not None and not isinstance(pointer, dict):
        return production.unavailable(None, f"{pointer_uri} is not a JSON object")

    def read_params(model_uri: str):
        for candidate in (join_uri(model_uri, "params.json"), join_uri(model_uri, "model", "params.json")):
            if fs.exists(spark, candidate):
                return fs.read_json(spark, candidate)
        return None

    return production.plan(pointer, run_date, params, read_params)


def parse_args(argv: Optional[Sequence[str]] = None):
    parser = new_parser(JOB, __doc__.split("\n\n")[0])
    parser.add_argument("--features", required=True, help="build_features output URI")
    parser.add_argument("--output", required=True, help="output URI (model/, recommendations/, ...)")
    add_model_arguments(parser)
    parser.add_argument(
        "--k", type=positive_int_arg, default=defaults.EVALUATION_K, help="evaluation list length"
    )
    parser.add_argument(
        "--serve-k", type=positive_int_arg, default=defaults.SERVE_K, help="served list length"
    )
    parser.add_argument(
        "--production-pointer", default=None, help="registry latest.json: refit production's configuration"
    )
    parser.add_argument(
        "--run-date", type=date_arg, default=None, help="logical date (with --production-pointer)"
    )
    parser.add_argument(
        "--params-source",
        type=json_object_arg,
        default=None,
        help="JSON object saying where the parameters came from (recorded in params.json)",
    )
    args = parser.parse_args(argv)
    if args.production_pointer and args.run_date is None:
        parser.error("--production-pointer needs --run-date")
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    try:
        params = params_from_args(args)
    except ValueError as exc:
        raise JobError(str(exc)) from None
    spark = build_spark(JOB)
    plan = None
    if args.production_pointer:
        plan = resolve_production(spark, args.production_pointer, args.run_date, params)
    run(spark, args.features, args.output, params, args.k, args.serve_k, plan, args.params_source)


if __name__ == "__main__":
    run_job(JOB, main)
