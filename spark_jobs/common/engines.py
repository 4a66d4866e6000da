"""Collaborative-filtering engines behind one interface: ``fit(spark, train, n_users, n_items, params)``.

- ``implicit``: the implicit library on the driver (ALS by default, BPR available). Fast on one node:
  the training matrix (users x items, CSR, float32 confidences) must fit in the driver's memory.
- ``spark-als``: Spark MLlib ALS with implicit preferences, distributed over the cluster, for data that
  outgrows one node.

Both return factor DataFrames, so recommendation and evaluation do not care which engine ran.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, NamedTuple, Optional

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.common import job_defaults as defaults
from spark_jobs.common.cli import non_negative_float_arg, positive_int_arg
from spark_jobs.common.job_defaults import ALGORITHMS, ALGORITHMS_BY_ENGINE, ENGINES, REGULARIZATION_BY_MODEL
from spark_jobs.common.schemas import FACTORS_ITEM, FACTORS_USER


@dataclass(frozen=True)
class TrainParams:
    """Hyperparameters. ``alpha`` scales confidences (ALS); ``learning_rate`` is BPR's step size.

    Defaults from :mod:`spark_jobs.common.job_defaults`. ``regularization=None`` means the engine's and
    algorithm's default (``REGULARIZATION_BY_MODEL``); the instance always holds the resolved number.
    """

    engine: str = defaults.ENGINE
    algorithm: str = defaults.ALGORITHM
    factors: int = defaults.FACTORS
    iterations: int = defaults.ITERATIONS
    regularization: Optional[float] = None
    alpha: float = defaults.ALPHA
    learning_rate: float = defaults.LEARNING_RATE
    seed: int = defaults.SEED
    num_threads: int = 0  # implicit only; 0 = all cores

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r}; choose one of {ENGINES}")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.algorithm!r}; choose one of {ALGORITHMS}")
        if self.algorithm not in ALGORITHMS_BY_ENGINE[self.engine]:
            only = " and ".join(ALGORITHMS_BY_ENGINE[self.engine])
            raise ValueError(f"engine {self.engine} only implements algorithm {only}")
        if self.regularization is None:  # frozen: set the resolved default once, here
            object.__setattr__(self, "regularization", REGULARIZATION_BY_MODEL[(self.engine, self.algorithm)])

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The model options of train_cf and tune_trial (same names, types and defaults in both)."""
    regularization = ", ".join(
        f"{value:g} for {engine} {algorithm}"
        for (engine, algorithm), value in REGULARIZATION_BY_MODEL.items()
    )
    parser.add_argument("--engine", choices=ENGINES, default=defaults.ENGINE, help="training engine")
    parser.add_argument("--algorithm", choices=ALGORITHMS, default=defaults.ALGORITHM, help="implicit only")
    parser.add_argument(
        "--factors", type=positive_int_arg, default=defaults.FACTORS, help="latent dimensions"
    )
    parser.add_argument("--iterations", type=positive_int_arg, default=defaults.ITERATIONS, help="epochs")
    parser.add_argument(
        "--regularization",
        type=non_negative_float_arg,
        default=None,
        help=f"L2 weight (default: per engine: {regularization})",
    )
    parser.add_argument(
        "--alpha", type=non_negative_float_arg, default=defaults.ALPHA, help="confidence scaling (ALS)"
    )
    parser.add_argument(
        "--learning-rate", type=non_negative_float_arg, default=defaults.LEARNING_RATE, help="BPR step size"
    )
    parser.add_argument("--num-threads", type=int, default=0, help="implicit; 0 = all cores")
    parser.add_argument("--seed", type=int, default=defaults.SEED, help="random seed")


def params_from_args(args: argparse.Namespace) -> TrainParams:
    """The parsed model options (:func:`add_model_arguments`) as :class:`TrainParams` (ValueError for a
    bad combination)."""
    return TrainParams(
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


class FactorModel(NamedTuple):
    """A fitted model: ``user_factors`` (user_idx, factors) and ``item_factors`` (item_idx, factors),
    factors being float32 arrays of one length; score(u, i) = dot(user, item).

    ``item_array`` / ``user_array``: the factors as dense float32 arrays (n_items, f) / (n_users, f)
    when the fit ran on the driver (implicit), so scoring need not collect them back from the
    DataFrames; None for Spark ALS.
    """

    user_factors: DataFrame
    item_factors: DataFrame
    fit_seconds: float
    item_array: Optional[np.ndarray] = None
    user_array: Optional[np.ndarray] = None


def interactions_matrix(train: DataFrame, n_users: int, n_items: int):
    """Collect ``train`` (user_idx, item_idx, confidence) into a CSR matrix, shape (n_users, n_items)."""
    return matrix_from_frame(train.select("user_idx", "item_idx", "confidence").toPandas(), n_users, n_items)


def matrix_from_frame(pdf: Any, n_users: int, n_items: int):
    """A pandas frame of (user_idx, item_idx, confidence) rows -> CSR matrix, shape (n_users, n_items)."""
    from scipy.sparse import csr_matrix

    matrix = csr_matrix(
        (
            pdf["confidence"].to_numpy(np.float32),
            (pdf["user_idx"].to_numpy(np.int32), pdf["item_idx"].to_numpy(np.int32)),
        ),
        shape=(n_users, n_items),
    )
    # Canonical order whatever the partitioning that collected the rows: the solvers then add the same
    # numbers in the same order, and a rerun on another cluster gives bit-identical factors.
    matrix.sort_indices()
    return matrix


def factors_frame(spark: SparkSession, factors: np.ndarray, index_column: str) -> DataFrame:
    """A (index, factors) DataFrame from a dense array of shape (n, f); row i gets index i."""
    import pandas as pd

    schema = FACTORS_USER if index_column == "user_idx" else FACTORS_ITEM
    pdf = pd.DataFrame(
        {
            index_column: np.arange(factors.shape[0], dtype=np.int32),
            "factors": list(np.ascontiguousarray(factors, dtype=np.float32)),
        }
    )
    return spark.createDataFrame(pdf, schema)


def implicit_model(params: TrainParams) -> Any:
    """An unfitted implicit ALS or BPR model (CPU) configured from ``params``; the benchmarks build
    their bare fit with this too, so both train exactly the same model."""
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    if params.algorithm == "als":
        return AlternatingLeastSquares(
            factors=params.factors,
            regularization=params.regularization,
            alpha=params.alpha,
            iterations=params.iterations,
            random_state=params.seed,
            num_threads=params.num_threads,
            calculate_training_loss=False,
        )
    return BayesianPersonalizedRanking(
        factors=params.factors,
        learning_rate=params.learning_rate,
        regularization=params.regularization,
        iterations=params.iterations,
        random_state=params.seed,
        num_threads=params.num_threads,
    )


def fit_implicit(
    spark: SparkSession,
    train: DataFrame,
    n_users: int,
    n_items: int,
    params: TrainParams,
    matrix: Any = None,
):
    """Fit implicit's ALS or BPR on the driver; see the module docstring. ``matrix``: ``train`` already
    collected by :func:`matrix_from_frame` (then ``train`` is not read)."""
    if matrix is None:
        matrix = interactions_matrix(train, n_users, n_items)
    model = implicit_model(params)
    started = time.perf_counter()
    model.fit(matrix, show_progress=False)
    fit_seconds = time.perf_counter() - started
    return FactorModel(
        factors_frame(spark, model.user_factors, "user_idx"),
        factors_frame(spark, model.item_factors, "item_idx"),
        fit_seconds,
        np.ascontiguousarray(model.item_factors, dtype=np.float32),
        np.ascontiguousarray(model.user_factors, dtype=np.float32),
    )


def fit_spark_als(
    spark: SparkSession,
    train: DataFrame,
    n_users: int,
    n_items: int,
    params: TrainParams,
    matrix: Any = None,
):
    """Fit Spark MLlib ALS (implicitPrefs) on the cluster. Users/items absent from ``train`` get no row.
    ``matrix`` is ignored: the data stays distributed."""
    from pyspark.ml.recommendation import ALS

    als = ALS(
        rank=params.factors,
        maxIter=params.iterations,
        regParam=params.regularization,
        alpha=params.alpha,
        implicitPrefs=True,
        seed=params.seed,
        userCol="user_idx",
        itemCol="item_idx",
        ratingCol="confidence",
        nonnegative=False,
    )
    started = time.perf_counter()
    model = als.fit(train)
    user_factors = model.userFactors.select(F.col("id").alias("user_idx"), F.col("features").alias("factors"))
    item_factors = model.itemFactors.select(F.col("id").alias("item_idx"), F.col("features").alias("factors"))
    # Materialise here so fit_seconds measures the fit, not a later lazy action.
    user_factors, item_factors = user_factors.localCheckpoint(), item_factors.localCheckpoint()
    return FactorModel(user_factors, item_factors, time.perf_counter() - started)


_FITTERS: Dict[str, Callable[..., FactorModel]] = {"implicit": fit_implicit, "spark-als": fit_spark_als}


def fit(
    spark: SparkSession,
    train: DataFrame,
    n_users: int,
    n_items: int,
    params: TrainParams,
    matrix: Any = None,
) -> FactorModel:
    """Fit the engine named in ``params`` on ``train`` (user_idx, item_idx, confidence).

    ``matrix``: the same interactions as a CSR matrix (:func:`matrix_from_frame`), if the caller has
    collected them already; the driver-side engine then uses it instead of collecting ``train``.
    """
    return _FITTERS[params.engine](spark, train, n_users, n_items, params, matrix)
