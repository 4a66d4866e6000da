"""train_cf engines side by side: implicit ALS vs Spark MLlib ALS on the same matrices, and the
pipeline's train_cf job vs a bare implicit fit of the same matrix.

    python -m benchmarks.bench_train [--quick] [--spark-iterations N] [--eval-users N]

Synthetic matrices (``benchmarks.ml``) of about 1M and 10M non-zeros, split per user 80/20. Each fit is
its own monitored process (``workers/fit.py``), scored by the same code on the same sampled test users;
then ``spark-submit train_cf.py`` on the first matrix, its wall split by its own log lines.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.sparse import csr_matrix, save_npz

from benchmarks import common as c
from benchmarks.ml import MatrixSpec, evaluate, split_matrix, synthetic_matrix, users_with_items
from spark_jobs.common.engines import TrainParams

FULL = (MatrixSpec("1M", 50_000, 20_000, 1_200_000), MatrixSpec("10M", 500_000, 50_000, 12_000_000))
QUICK = (MatrixSpec("100k", 10_000, 4_000, 120_000),)
TRAIN_RATIO, K = 0.8, 10
# Both engines: 64 factors x 15 iterations, regularization 0.01, alpha 1 (train_cf's defaults before the
# MovieLens tuning). Not the tuned 30: Spark multiplies regParam by each user's and item's number of
# ratings (ALS-WR), so it would smother Spark's model.
HP = {"factors": 64, "iterations": 15, "regularization": 0.01, "alpha": 1.0, "seed": TrainParams().seed}


def write_features(train: csr_matrix, folder: Path) -> None:
    """``train`` as build_features output: train/, an empty holdout/ (train_cf's serving fit sees the same
    matrix), window/, users/ (only users with training rows, as real features), items/, manifest.json."""
    shutil.rmtree(folder, ignore_errors=True)
    coo, items = train.tocoo(), np.arange(train.shape[1], dtype=np.int32)
    active, empty, tables = np.unique(coo.row).astype(np.int32), np.empty(0, dtype=np.int32), {}
    for name, (rows, cols, values) in (("train", (coo.row, coo.col, coo.data)), ("holdout", (empty,) * 3)):
        tables[name] = {"user_idx": rows.astype(np.int32), "item_idx": cols.astype(np.int32)}
        tables[name]["confidence"] = values.astype(np.float64)
        ts = np.zeros(len(rows), dtype="datetime64[us]")
        tables[name]["last_ts"] = pa.array(ts).cast(pa.timestamp("us", "UTC"))
    tables["window"] = {"user_id": np.char.add("u", coo.row.astype(str))}
    tables["window"]["item_id"] = np.char.add("i", coo.col.astype(str))
    tables["users"] = {"user_idx": active, "user_id": [f"u{i}" for i in active]}
    tables["items"] = {"item_idx": items, "item_id": [f"i{i}" for i in items]}
    for name, table in tables.items():
        pq.write_table(pa.table(table), c.mkdir(folder / name) / "part-00000.parquet")
    counts = {"users": train.shape[0], "items": train.shape[1], "train_nnz": int(train.nnz), "holdout_nnz": 0}
    counts["window_users"] = len(active)
    (folder / "manifest.json").write_text(json.dumps(counts, indent=2) + "\n")


def hyper_args(iterations: Optional[int] = None) -> List[str]:
    hp = {**HP, "iterations": iterations or HP["iterations"]}
    return [arg for key, value in hp.items() for arg in (f"--{key}", str(value))]


def fit_and_score(engine: str, folder: Path, train: csr_matrix, test: csr_matrix, users: np.ndarray,
                  iterations: Optional[int] = None) -> Dict[str, Any]:  # fmt: skip
    """Fit ``engine`` in a monitored process, then score its factors on ``test``."""
    out, iterations = folder / f"fit-{engine}", iterations or HP["iterations"]
    if engine == "implicit":
        command = [c.PYTHON, "-m", "benchmarks.workers.fit", "--matrix", str(folder / "train.npz")]
    else:  # full JIT, as on EMR: the local defaults' quick-compiler-only setting is for short jobs
        command = ["spark-submit", "--driver-java-options", "-XX:+TieredCompilation"]
        command += [str(c.ROOT / "benchmarks/workers/fit.py"), "--features", str(folder / "features")]
        command += ["--users", str(train.shape[0]), "--items", str(train.shape[1])]
    print(f"train bench: {folder.name} {engine} ...", flush=True)
    command += ["--engine", engine, "--out", str(out), *hyper_args(iterations)]
    record = {**c.monitored(command, folder / f"fit-{engine}.log").record(), "engine": engine}
    fit = json.loads((out / "fit.json").read_text())["fit_seconds"]
    factors = np.load(out / "user_factors.npy"), np.load(out / "item_factors.npy")
    record.update(iterations=iterations, fit_seconds=fit, fit_seconds_per_iteration=fit / iterations)
    record["metrics"] = evaluate(*factors, train, test, K, users)
    print(f"train bench: fit {fit:.1f} s, NDCG@10 {record['metrics']['ndcg']:.4f}", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    return record


def train_cf_job(folder: Path, bare: Dict[str, Any], startup: float) -> Dict[str, Any]:
    """The real train_cf job on ``folder``'s features, and where its wall time goes."""
    out = folder / "train_cf-output"
    command = ["spark-submit", str(c.ROOT / "spark_jobs/train_cf.py"), "--features", str(folder / "features")]
    command += ["--output", str(out), "--engine", "implicit", "--k", str(K), *hyper_args()]
    print(f"train bench: {folder.name} train_cf job ...", flush=True)
    result = c.monitored(command, folder / "train_cf.log")
    fits = json.loads((out / "model" / "params.json").read_text())["fits"]["evaluation"]["seconds"]
    lines = ("read", "evaluation fit", "served lists")  # the job's own log lines
    read, evaluated, served = (result.first_line_at(f"recsys.train_cf: {x} ") for x in lines)
    phases = [  # in order; a list, so JSON keeps the order
        ("Spark start-up (session ready, as in an empty job)", startup),
        ("read features, count", read - startup),
        ("collect to the driver + CSR", evaluated - read - fits["fit"] - fits["recommend"]),
        ("implicit fit (evaluation model)", fits["fit"]),
        ("top-K evaluation lists", fits["recommend"]),
        ("serving fit, served lists, factors, params.json", served - evaluated),
        ("shutdown", result.seconds - served),
    ]
    shutil.rmtree(out, ignore_errors=True)
    record = {**result.record(), "fit_seconds": fits["fit"], "recommend_seconds": fits["recommend"]}
    record.update(phases_seconds=phases, overhead_ratio_vs_bare_fit=result.seconds / bare["fit_seconds"])
    return {**record, "overhead_ratio_vs_bare_process": result.seconds / bare["wall_seconds"]}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = c.parser(__doc__, "train")
    p.add_argument("--spark-iterations", type=int, default=None, help="Spark ALS iterations on the largest "
                   "matrix (default 15; fewer only to fit the time budget, said on the page)")  # fmt: skip
    p.add_argument("--eval-users", type=int, default=None, help="test users sampled for metrics")
    args, doc = c.begin("train", p, argv)
    specs = [replace(spec, seed=args.seed) for spec in (QUICK if args.quick else FULL)]
    doc.update(k=K, train_ratio=TRAIN_RATIO, empty_job=c.empty_job(args.work / "empty_job.log"), matrices=[])
    for index, spec in enumerate(specs):
        folder, matrix = c.mkdir(args.work / spec.name), synthetic_matrix(spec)
        train, test = split_matrix(matrix, TRAIN_RATIO, args.seed)
        save_npz(folder / "train.npz", train)
        write_features(train, folder / "features")
        candidates = np.intersect1d(users_with_items(test), users_with_items(train))
        sample = min(args.eval_users or (2_000 if args.quick else 5_000), len(candidates))
        users = np.sort(np.random.default_rng(args.seed).choice(candidates, size=sample, replace=False))
        m = {"spec": asdict(spec), "shape": list(matrix.shape), "nnz": int(matrix.nnz), "hyperparameters": HP}
        m.update(train_nnz=int(train.nnz), test_nnz=int(test.nnz), eval_users=len(users))
        m["implicit"] = fit_and_score("implicit", folder, train, test, users)
        iterations = args.spark_iterations if index == len(specs) - 1 else None
        m["spark_als"] = fit_and_score("spark-als", folder, train, test, users, iterations)
        if index == 0:
            m["train_cf_job"] = train_cf_job(folder, m["implicit"], doc["empty_job"]["session_ready_seconds"])
        doc["matrices"].append(m)
    return c.save(doc, args)


if __name__ == "__main__":
    sys.exit(main())
