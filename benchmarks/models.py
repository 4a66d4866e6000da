"""implicit models built exactly as train_cf builds them (``spark_jobs.common.engines.fit_implicit``),
but fitted on an in-memory CSR matrix, without Spark: the "bare" fit the pipeline is compared against.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Tuple

import numpy as np
from scipy.sparse import csr_matrix

from spark_jobs.common.engines import TrainParams, implicit_model


def fit_bare(matrix: csr_matrix, params: TrainParams) -> Tuple[np.ndarray, np.ndarray, float]:
    """Fit on ``matrix`` (users x items, float32 confidences); return (user_factors, item_factors,
    fit_seconds), factors as float32 arrays (BPR's carry a bias column)."""
    model = implicit_model(params)
    started = time.perf_counter()
    model.fit(matrix.astype(np.float32).tocsr(), show_progress=False)
    seconds = time.perf_counter() - started
    return (
        np.asarray(model.user_factors, dtype=np.float32),
        np.asarray(model.item_factors, dtype=np.float32),
        seconds,
    )


def describe(params: TrainParams) -> Dict[str, Any]:
    """The hyperparameters that matter for ``params.algorithm`` (for tables and JSON)."""
    keys = ["factors", "iterations", "regularization"]
    keys += ["alpha"] if params.algorithm == "als" else ["learning_rate"]
    return {key: getattr(params, key) for key in keys}
