"""train_cf engines side by side: implicit ALS vs Spark MLlib ALS on the same matrices, and the
pipeline's train_cf job vs a bare implicit fit of the same matrix.

    python -m benchmarks.bench_train [--seed 42] [--quick] [--spark-iterations-10m N]

Matrices: synthetic (``benchmarks.matrices``: the clickstream world model, confidence = event count) of
about 1M and 10M non-zeros, each split per user 80/20 at random (seeded). Every fit runs in its own
monitored process (peak RSS of the whole tree at 10 Hz): implicit in a plain Python process
(``benchmarks/workers/fit_implicit.py``, no Spark), Spark ALS through the pipeline's engine code in a
spark-submit (``benchmarks/workers/fit_spark_als.py``). Both get the same hyperparameters (64 factors,
15 iterations, regularization 0.01, alpha 1) and are scored by the same code
(``benchmarks.evaluation``: the job's top-K, docs/contracts.md metrics) on the same sampled test users.
Then the real ``spark-submit spark_jobs/train_cf.py`` runs on the 1M matrix written as build_features
output, and its wall time is split into phases from its own log lines. Reports only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.sparse import csr_matrix, save_npz

from benchmarks.env import ROOT, WORK, spark_env
from benchmarks.evaluation import evaluate_factors, users_with_items
from benchmarks.matrices import MatrixSpec, split_matrix, synthetic_matrix
from benchmarks.procmon import MIB, RunResult, run_monitored
from benchmarks.results import Recorder, add_common_args
from spark_jobs.common.engines import TrainParams

FULL_SPECS = (
    MatrixSpec("1M", users=50_000, items=20_000, events=1_200_000),
    MatrixSpec("10M", users=500_000, items=50_000, events=12_000_000),
)
QUICK_SPECS = (MatrixSpec("100k", users=10_000, items=4_000, events=120_000),)
TRAIN_RATIO = 0.8
K = 10


def hyperparameters() -> Dict[str, Any]:
    """What both engines get: the issue's 64 factors x 15 iterations, with regularization 0.01 and
    alpha 1 (train_cf's defaults before the MovieLens tuning). Not the tuned regularization: Spark
    multiplies its regParam by each user's and item's number of ratings (ALS-WR), so the 30 tuned for
    implicit on 1-5 star confidences would smother Spark's model and the quality columns would compare
    regularization conventions instead of engines."""
    return {"factors": 64, "iterations": 15, "regularization": 0.01, "alpha": 1.0, "seed": TrainParams().seed}


def write_features(train: csr_matrix, folder: Path) -> None:
    """``train`` as build_features output for train_cf and Spark ALS: train/ (the matrix), an empty
    holdout/ (so train_cf's serving fit sees the same matrix), window/, users/ and items/ Parquet, and
    the manifest's counts train_cf reads."""
    shutil.rmtree(folder, ignore_errors=True)
    coo = train.tocoo()
    n_users, n_items = train.shape
    for name in ("train", "holdout", "window", "users", "items"):
        (folder / name).mkdir(parents=True)

    def interactions(rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> pa.Table:
        timestamps = pa.array(np.zeros(len(rows), dtype="datetime64[us]")).cast(pa.timestamp("us", "UTC"))
        return pa.table(
            {
                "user_idx": pa.array(rows.astype(np.int32)),
                "item_idx": pa.array(cols.astype(np.int32)),
                "confidence": pa.array(values.astype(np.float64)),
                "last_ts": timestamps,
            }
        )

    pq.write_table(interactions(coo.row, coo.col, coo.data), folder / "train" / "part-00000.parquet")
    empty = np.empty(0, dtype=np.int32)
    pq.write_table(interactions(empty, empty, empty), folder / "holdout" / "part-00000.parquet")
    window = pa.table(
        {
            "user_id": pa.array(np.char.add("u", coo.row.astype(str))),
            "item_id": pa.array(np.char.add("i", coo.col.astype(str))),
        }
    )
    pq.write_table(window, folder / "window" / "part-00000.parquet")
    # Only users with training rows are in the id map, as in real features (minimum support keeps no
    # user without interactions): train_cf serves exactly the window's users. The matrix keeps its
    # shape, so the job fits the same matrix as the bare fit.
    active = np.unique(coo.row).astype(np.int32)
    users = pa.table({"user_idx": pa.array(active), "user_id": [f"u{i}" for i in active]})
    items = pa.table(
        {
            "item_idx": pa.array(np.arange(n_items, dtype=np.int32)),
            "item_id": [f"i{i}" for i in range(n_items)],
        }
    )
    pq.write_table(users, folder / "users" / "part-00000.parquet")
    pq.write_table(items, folder / "items" / "part-00000.parquet")
    counts = {
        "users": n_users,
        "items": n_items,
        "train_nnz": int(train.nnz),
        "holdout_nnz": 0,
        "window_users": len(active),
    }
    (folder / "manifest.json").write_text(json.dumps(counts, indent=2) + "\n")


def hyper_args(hp: Dict[str, Any], iterations: Optional[int] = None) -> list:
    return [
        "--factors", str(hp["factors"]),
        "--iterations", str(iterations or hp["iterations"]),
        "--regularization", str(hp["regularization"]),
        "--alpha", str(hp["alpha"]),
        "--seed", str(hp["seed"]),
    ]  # fmt: skip


def monitored(command: list, log: Path, python_only: bool = False) -> RunResult:
    env = spark_env()
    result = run_monitored(command, cwd=ROOT, env=env, log_path=log)
    if result.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed (exit {result.returncode}); log: {log}")
    return result


def run_record(result: RunResult) -> Dict[str, Any]:
    """The common measurements of one monitored process."""
    return {
        "wall_seconds": result.seconds,
        "peak_rss_mib": result.peak_rss_bytes / MIB,
        "peak_rss_by_process_mib": {
            k: (v if k == "processes" else round(v / MIB, 1)) for k, v in result.peak_breakdown.items()
        },
        "load_before": list(result.load_before),
        "load_after": list(result.load_after),
    }


def fit_and_score(
    engine: str,
    folder: Path,
    hp: Dict[str, Any],
    train: csr_matrix,
    test: csr_matrix,
    eval_users: np.ndarray,
    iterations: Optional[int] = None,
) -> Dict[str, Any]:
    """Fit ``engine`` on ``folder``'s matrix in a monitored process, then score it on ``test``."""
    out = folder / f"fit-{engine}"
    shutil.rmtree(out, ignore_errors=True)
    if engine == "implicit":
        command = [
            sys.executable,
            "-m",
            "benchmarks.workers.fit_implicit",
            "--matrix",
            str(folder / "train.npz"),
        ]
    else:
        command = [
            # Full JIT, as on EMR: the local defaults' quick-compiler-only setting is for short jobs.
            "spark-submit", "--driver-java-options", "-XX:+TieredCompilation",
            str(ROOT / "benchmarks" / "workers" / "fit_spark_als.py"),
            "--features", str(folder / "features"),
            "--users", str(train.shape[0]), "--items", str(train.shape[1]),
        ]  # fmt: skip
    command += ["--out", str(out), *hyper_args(hp, iterations)]
    print(f"train bench: {folder.name} {engine} ...", flush=True)
    result = monitored(command, folder / f"fit-{engine}.log")
    fit = json.loads((out / "fit.json").read_text())
    users, items = np.load(out / "user_factors.npy"), np.load(out / "item_factors.npy")
    allowed = np.diff(train.tocsc().indptr) > 0  # items seen in training
    metrics = evaluate_factors(users, items, train, test, K, eval_users, allowed)
    record = run_record(result)
    record.update(
        {
            "engine": engine,
            "iterations": iterations or hp["iterations"],
            "fit_seconds": fit["fit_seconds"],
            "fit_seconds_per_iteration": fit["fit_seconds"] / (iterations or hp["iterations"]),
            "metrics": metrics,
        }
    )
    print(
        f"train bench: {folder.name} {engine}: fit {fit['fit_seconds']:.1f} s, "
        f"peak {record['peak_rss_mib']:.0f} MiB, "
        f"ndcg@10 {metrics['ndcg']:.4f}, load {result.load_before[0]:.2f}",
        flush=True,
    )
    shutil.rmtree(out, ignore_errors=True)
    return record


def empty_job(work: Path) -> Dict[str, Any]:
    """The fixed cost of a spark-submit (session start-up, one trivial action, shutdown)."""
    result = monitored(
        ["spark-submit", str(ROOT / "benchmarks" / "workers" / "empty_job.py")], work / "empty_job.log"
    )
    record = run_record(result)
    record["session_ready_seconds"] = result.first_line_at("BENCH session_ready")
    return record


def train_cf_job(
    folder: Path, hp: Dict[str, Any], bare: Dict[str, Any], empty: Dict[str, Any]
) -> Dict[str, Any]:
    """The real train_cf job on ``folder``'s features, and where its wall time goes."""
    out = folder / "train_cf-output"
    command = [
        "spark-submit", str(ROOT / "spark_jobs" / "train_cf.py"),
        "--features", str(folder / "features"), "--output", str(out),
        "--engine", "implicit", "--k", str(K), *hyper_args(hp),
    ]  # fmt: skip
    print(f"train bench: {folder.name} train_cf job ...", flush=True)
    result = monitored(command, folder / "train_cf.log")
    summary = json.loads((out / "model" / "params.json").read_text())
    evaluation = summary["fits"]["evaluation"]["seconds"]
    read_at = result.first_line_at("recsys.train_cf: read ")
    evaluated_at = result.first_line_at("recsys.train_cf: evaluation fit ")
    served_at = result.first_line_at("recsys.train_cf: served lists ")
    startup = empty["session_ready_seconds"]
    phases = [  # in order; a list, so JSON keeps the order
        ("Spark start-up (session ready, as in an empty job)", startup),
        ("read features, count", read_at - startup),
        ("collect to the driver + CSR", evaluated_at - read_at - evaluation["fit"] - evaluation["recommend"]),
        ("implicit fit (evaluation model)", evaluation["fit"]),
        ("top-K evaluation lists", evaluation["recommend"]),
        ("serving fit, served lists, factors, params.json", served_at - evaluated_at),
        ("shutdown", result.seconds - served_at),
    ]
    record = run_record(result)
    record.update(
        {
            "fit_seconds": evaluation["fit"],
            "recommend_seconds": evaluation["recommend"],
            "phases_seconds": phases,
            "overhead_ratio_vs_bare_fit": result.seconds / bare["fit_seconds"],
            "overhead_ratio_vs_bare_process": result.seconds / bare["wall_seconds"],
        }
    )
    shutil.rmtree(out, ignore_errors=True)
    return record


def bench_matrix(
    spec: MatrixSpec,
    work: Path,
    seed: int,
    eval_sample: int,
    spark_iterations: Optional[int],
    job: bool,
    empty: Dict[str, Any],
) -> Dict[str, Any]:
    """Build one matrix, fit both engines (and the train_cf job if ``job``), return the measurements."""
    folder = work / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    matrix = synthetic_matrix(spec)
    train, test = split_matrix(matrix, TRAIN_RATIO, seed)
    save_npz(folder / "train.npz", train)
    write_features(train, folder / "features")
    candidates = np.intersect1d(users_with_items(test), users_with_items(train))
    rng = np.random.default_rng(seed)
    eval_users = np.sort(rng.choice(candidates, size=min(eval_sample, len(candidates)), replace=False))
    hp = hyperparameters()
    record: Dict[str, Any] = {
        "spec": spec.as_dict(),
        "shape": list(matrix.shape),
        "nnz": int(matrix.nnz),
        "train_nnz": int(train.nnz),
        "test_nnz": int(test.nnz),
        "eval_users": len(eval_users),
        "hyperparameters": hp,
    }
    bare = fit_and_score("implicit", folder, hp, train, test, eval_users)
    record["implicit"] = bare
    record["spark_als"] = fit_and_score("spark-als", folder, hp, train, test, eval_users, spark_iterations)
    if job:
        record["train_cf_job"] = train_cf_job(folder, hp, bare, empty)
    return record


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--work", type=Path, default=WORK / "train", help="matrices, factors and logs")
    parser.add_argument(
        "--spark-iterations",
        type=int,
        default=None,
        help="Spark ALS iterations on the largest matrix (default: 15 like implicit; fewer only to fit the "
        "time budget, reported as such on the page)",
    )
    parser.add_argument("--eval-users", type=int, default=None, help="test users sampled for metrics")
    args = parser.parse_args(argv)
    specs = QUICK_SPECS if args.quick else FULL_SPECS
    eval_sample = args.eval_users or (2_000 if args.quick else 5_000)
    recorder = Recorder("train", args)
    args.work.mkdir(parents=True, exist_ok=True)
    empty = empty_job(args.work)
    matrices = []
    for index, spec in enumerate(specs):
        base = MatrixSpec(**{**spec.as_dict(), "seed": args.seed})
        spark_iterations = args.spark_iterations if index == len(specs) - 1 else None
        matrices.append(
            bench_matrix(base, args.work, args.seed, eval_sample, spark_iterations, index == 0, empty)
        )
    recorder["empty_job"] = empty
    recorder["matrices"] = matrices
    recorder["k"] = K
    recorder["train_ratio"] = TRAIN_RATIO
    recorder.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
