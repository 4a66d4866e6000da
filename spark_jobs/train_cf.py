"""train_cf: collaborative-filtering training and batch top-K recommendations.

    spark-submit spark_jobs/train_cf.py --features URI --output URI [--engine implicit|spark-als]
        [--algorithm als|bpr] [--factors 64] [--iterations 15] [--regularization R] [--alpha 1.0]
        [--learning-rate 0.01] [--k 10] [--seed 42]

Engines: ``implicit`` fits on the driver (fast while the matrix fits one node; ALS by default, BPR with
``--algorithm bpr``); ``spark-als`` fits Spark MLlib ALS (implicit preferences) across the cluster.
Reads build_features' ``train/``, ``users/`` and ``items/``. Writes under ``--output`` (overwritten):
``model/user_factors/``, ``model/item_factors/`` (index, id, factors), ``model/params.json`` (engine,
hyperparameters, data sizes, timings) and ``recommendations/`` (user_idx, user_id, rank, item_idx,
item_id, score; K rows per user, best first, training items excluded).
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a file by spark-submit: make the `spark_jobs` package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import time
from typing import Dict, Optional, Sequence

from pyspark.sql import SparkSession

from spark_jobs.common import fs
from spark_jobs.common.cli import JobError, new_parser, non_negative_float_arg, positive_int_arg, run_job
from spark_jobs.common.engines import ALGORITHMS, ENGINES, TrainParams, fit
from spark_jobs.common.joblog import get_logger
from spark_jobs.common.recommend import recommend_top_k
from spark_jobs.common.session import build_spark
from spark_jobs.common.uris import join_uri

JOB = "train_cf"
log = get_logger(JOB)


def run(spark: SparkSession, features_uri: str, output_uri: str, params: TrainParams, k: int = 10) -> Dict:
    """Train on ``features_uri``, write model + recommendations under ``output_uri``; return params.json."""
    train_uri = join_uri(features_uri, "train")
    if not fs.exists(spark, train_uri):
        raise JobError(f"no training data at {train_uri}: run build_features first")
    train = spark.read.parquet(train_uri).cache()
    users = spark.read.parquet(join_uri(features_uri, "users"))
    items = spark.read.parquet(join_uri(features_uri, "items"))
    n_users, n_items, nnz = users.count(), items.count(), train.count()
    if nnz == 0:
        raise JobError(f"training data at {train_uri} is empty")
    log.info("read %d training pairs (%d users x %d items) from %s", nnz, n_users, n_items, features_uri)

    model = fit(spark, train, n_users, n_items, params)
    log.info("fitted %s/%s in %.2f s", params.engine, params.algorithm, model.fit_seconds)

    started = time.perf_counter()
    ranked = recommend_top_k(spark, model.user_factors, model.item_factors, train, n_items, k)
    recommendations = ranked.join(users, "user_idx").join(items, "item_idx")
    recommendations = recommendations.select("user_idx", "user_id", "rank", "item_idx", "item_id", "score")
    recs_uri = join_uri(output_uri, "recommendations")
    recommendations.write.mode("overwrite").parquet(recs_uri)
    recommend_seconds = time.perf_counter() - started

    model_uri = join_uri(output_uri, "model")
    model.user_factors.join(users, "user_idx").select("user_idx", "user_id", "factors").write.mode(
        "overwrite"
    ).parquet(join_uri(model_uri, "user_factors"))
    model.item_factors.join(items, "item_idx").select("item_idx", "item_id", "factors").write.mode(
        "overwrite"
    ).parquet(join_uri(model_uri, "item_factors"))

    n_recs = spark.read.parquet(recs_uri).count()
    summary = {
        "engine": params.engine,
        "algorithm": params.algorithm,
        "params": params.as_dict(),
        "k": k,
        "features": features_uri,
        "users": n_users,
        "items": n_items,
        "train_nnz": nnz,
        "fit_seconds": round(model.fit_seconds, 3),
        "recommend_seconds": round(recommend_seconds, 3),
        "recommendations": n_recs,
    }
    fs.write_json(spark, join_uri(model_uri, "params.json"), summary)
    train.unpersist()
    log.info("wrote %d recommendations to %s and the model to %s", n_recs, recs_uri, model_uri)
    return summary


def parse_args(argv: Optional[Sequence[str]] = None):
    defaults = TrainParams()
    parser = new_parser(JOB, __doc__.split("\n\n")[0])
    parser.add_argument("--features", required=True, help="build_features output URI")
    parser.add_argument("--output", required=True, help="output URI for model/ and recommendations/")
    parser.add_argument("--engine", choices=ENGINES, default=defaults.engine, help="training engine")
    parser.add_argument("--algorithm", choices=ALGORITHMS, default=defaults.algorithm, help="implicit only")
    parser.add_argument(
        "--factors", type=positive_int_arg, default=defaults.factors, help="latent dimensions"
    )
    parser.add_argument("--iterations", type=positive_int_arg, default=defaults.iterations, help="epochs")
    parser.add_argument(
        "--regularization",
        type=non_negative_float_arg,
        default=None,
        help="L2 weight (default: per engine: 30 for implicit ALS, 0.01 for BPR and spark-als)",
    )
    parser.add_argument(
        "--alpha", type=non_negative_float_arg, default=defaults.alpha, help="confidence scaling (ALS)"
    )
    parser.add_argument(
        "--learning-rate", type=non_negative_float_arg, default=defaults.learning_rate, help="BPR step size"
    )
    parser.add_argument(
        "--num-threads", type=int, default=defaults.num_threads, help="implicit; 0 = all cores"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed")
    parser.add_argument("--k", type=positive_int_arg, default=10, help="recommendations per user")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    try:
        params = TrainParams(
            engine=args.engine,
            algorithm=args.algorithm,
            factors=args.factors,
            iterations=args.iterations,
            regularization=args.regularization,
            alpha=args.alpha,
            learning_rate=args.learning_rate,
            seed=args.seed,
            num_threads=args.num_threads,
        )
    except ValueError as exc:
        raise JobError(str(exc)) from None
    spark = build_spark(JOB)
    run(spark, args.features, args.output, params, args.k)


if __name__ == "__main__":
    run_job(JOB, main)
