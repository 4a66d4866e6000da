"""Spark MLlib ALS fit through the pipeline's engine code, as a spark-submit entry point.

    spark-submit benchmarks/workers/fit_spark_als.py --features DIR --out DIR [--factors 64 ...]

Reads ``DIR/train`` (the build_features interactions schema), fits with
``spark_jobs.common.engines.fit_spark_als`` (implicitPrefs, factors materialised inside the timed fit),
then collects the factors to dense arrays (rows of users/items without factors are NaN) and writes
``user_factors.npy``, ``item_factors.npy`` and ``fit.json`` (``fit_seconds`` as the engine measured it).
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a file by spark-submit: make `benchmarks` and `spark_jobs` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import argparse
import json
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from spark_jobs.common.engines import TrainParams, fit_spark_als
from spark_jobs.common.session import build_spark


def dense(rows, n: int, index: str) -> np.ndarray:
    """Factor rows (index, factors) -> float32 array (n, f); missing indices are NaN rows."""
    pdf = rows.toPandas()
    dim = len(pdf["factors"].iloc[0])
    out = np.full((n, dim), np.nan, dtype=np.float32)
    out[pdf[index].to_numpy()] = np.stack(pdf["factors"].to_numpy()).astype(np.float32)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", required=True, help="folder with train/ (interactions Parquet)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--users", type=int, required=True, help="number of users (matrix rows)")
    parser.add_argument("--items", type=int, required=True, help="number of items (matrix columns)")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--regularization", type=float, default=0.01)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    spark = build_spark("bench_fit_spark_als")
    print("BENCH session_ready", file=sys.stderr, flush=True)
    started = time.perf_counter()
    train = spark.read.parquet(os.path.join(args.features, "train")).cache()
    nnz = train.count()
    load_seconds = time.perf_counter() - started
    params = TrainParams(
        engine="spark-als",
        factors=args.factors,
        iterations=args.iterations,
        regularization=args.regularization,
        alpha=args.alpha,
        seed=args.seed,
    )
    print("BENCH fit_start", file=sys.stderr, flush=True)
    model = fit_spark_als(spark, train, args.users, args.items, params)
    print("BENCH fit_end", file=sys.stderr, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / "user_factors.npy", dense(model.user_factors, args.users, "user_idx"))
    np.save(args.out / "item_factors.npy", dense(model.item_factors, args.items, "item_idx"))
    summary = {"fit_seconds": model.fit_seconds, "load_seconds": load_seconds, "nnz": int(nnz)}
    (args.out / "fit.json").write_text(json.dumps(summary, indent=2) + "\n")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
