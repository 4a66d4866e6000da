"""The Spark jobs' option defaults and model vocabulary, declared once.

The jobs read them (their argparse defaults, :class:`spark_jobs.common.engines.TrainParams`), and so does
the DAG's configuration (``dags/recsys_dag/config.py``: ``PipelineConfig``'s field defaults, the engine
and algorithm checks), which passes them to the jobs on the command line. Change a default here and
both sides follow.

It imports nothing but ``typing``: Airflow imports this module when it parses the DAGs, where there is
no pyspark, numpy or implicit (``spark_jobs/__init__.py`` and ``spark_jobs/common/__init__.py`` must stay
import-free too). On EMR it arrives in ``spark_jobs.zip``; on Airflow, ``spark_jobs/`` is deployed beside
``dags/`` (README.md, "Deploying"). Python 3.9.
"""

from __future__ import annotations

from typing import Dict, Tuple

# --- the model vocabulary (train_cf, tune_trial; the DAG config and tuning grid check against it)
ALGORITHMS_BY_ENGINE: Dict[str, Tuple[str, ...]] = {
    "implicit": ("als", "bpr"),  # the implicit library on the driver
    "spark-als": ("als",),  # Spark MLlib ALS, distributed
}
ENGINES: Tuple[str, ...] = tuple(ALGORITHMS_BY_ENGINE)
ALGORITHMS: Tuple[str, ...] = ("als", "bpr")  # every engine's, in one list

# --- build_features
LOOKBACK_DAYS = 30  # the features window: this many days, ending on --run-date
# Fail, naming the days, unless at least this share (0..1) of the window's days is published.
MIN_WINDOW_SHARE = 0.8
HALF_LIFE_DAYS = 14.0  # time decay of an event's weight, in days; 0 = no decay
MIN_USER_ITEMS = 2  # users with fewer distinct items are dropped (repeated with MIN_ITEM_USERS)
MIN_ITEM_USERS = 2  # items with fewer distinct users are dropped
HOLDOUT_FRACTION = 0.2  # share (0..1) of each user's latest items held out for evaluation

# --- train_cf and tune_trial: the model (implicit ALS's values are the MovieLens-100K tuning of
# docs/benchmarks.md)
ENGINE = "implicit"
ALGORITHM = "als"
FACTORS = 64  # latent dimensions
ITERATIONS = 15  # epochs
# The L2 weight when none is given, per (engine, algorithm). implicit ALS: on the scale of the
# confidences (1-5 stars on MovieLens). BPR and Spark ALS keep 0.01: BPR regularizes every sampled
# update, and Spark multiplies regParam by each user's and item's number of ratings (ALS-WR), so the
# ALS value would smother both.
REGULARIZATION_BY_MODEL: Dict[Tuple[str, str], float] = {
    ("implicit", "als"): 30.0,
    ("implicit", "bpr"): 0.01,
    ("spark-als", "als"): 0.01,
}
ALPHA = 1.0  # confidence scaling (ALS)
LEARNING_RATE = 0.01  # BPR's step size
SEED = 42

# --- list lengths (items)
EVALUATION_K = 10  # the evaluation cut-off: train_cf's evaluation lists, evaluate's and tune_trial's @k
SERVE_K = 100  # each served list (train_cf --serve-k; load_serving --max-items keeps this many)

# --- load_serving
SERVING_LOAD_THREADS = 4  # BatchWriteItem requests in flight per Spark task (1..16)
