"""One fit in its own process, through the pipeline's engine code; writes ``user_factors.npy``,
``item_factors.npy`` (float32, (users|items, factors); Spark's missing rows NaN) and ``fit.json`` (the
engine's fit seconds).

    python -m benchmarks.workers.fit --engine implicit --matrix train.npz --out DIR [--factors 64 ...]
    spark-submit benchmarks/workers/fit.py --engine spark-als --features DIR --users N --items M --out DIR
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a file by spark-submit: make `spark_jobs` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import argparse
import json
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from spark_jobs.common.engines import TrainParams, fit_spark_als, implicit_model


def fit_bare(matrix: Any, params: TrainParams) -> Tuple[np.ndarray, np.ndarray, float]:
    """The implicit model train_cf builds, fitted on an in-memory CSR matrix without Spark."""
    model = implicit_model(params)
    started = time.perf_counter()
    model.fit(matrix.astype(np.float32).tocsr(), show_progress=False)
    seconds = time.perf_counter() - started
    return np.asarray(model.user_factors, np.float32), np.asarray(model.item_factors, np.float32), seconds


def describe(params: TrainParams) -> Dict[str, Any]:
    """The hyperparameters that matter for ``params.algorithm``."""
    last = "alpha" if params.algorithm == "als" else "learning_rate"
    return {key: getattr(params, key) for key in ("factors", "iterations", "regularization", last)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engine", choices=("implicit", "spark-als"), required=True)
    p.add_argument("--matrix", type=Path, help="implicit: scipy .npz CSR (users x items)")
    p.add_argument("--features", help="spark-als: folder with train/ (interactions Parquet)")
    p.add_argument("--users", type=int, help="spark-als: matrix rows")
    p.add_argument("--items", type=int, help="spark-als: matrix columns")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    hp = {"factors": 64, "iterations": 15, "regularization": 0.01, "alpha": 1.0, "seed": 42}
    for name, default in hp.items():
        p.add_argument(f"--{name}", type=type(default), default=default)
    args = p.parse_args(argv)
    params = TrainParams(engine=args.engine, **{k: getattr(args, k) for k in hp})
    if args.engine == "implicit":
        from scipy.sparse import load_npz

        users, items, seconds = fit_bare(load_npz(args.matrix).tocsr(), params)
    else:
        from spark_jobs.common.recommend import item_matrix  # pandas: not in the bare implicit process
        from spark_jobs.common.session import build_spark

        spark = build_spark("bench_fit_spark_als")
        train = spark.read.parquet(os.path.join(args.features, "train")).cache()
        train.count()
        model = fit_spark_als(spark, train, args.users, args.items, params)  # factors materialised inside
        users = item_matrix(model.user_factors.withColumnRenamed("user_idx", "item_idx"), args.users)
        items, seconds = item_matrix(model.item_factors, args.items), model.fit_seconds
        spark.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / "user_factors.npy", users)
    np.save(args.out / "item_factors.npy", items)
    (args.out / "fit.json").write_text(json.dumps({"fit_seconds": seconds}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
