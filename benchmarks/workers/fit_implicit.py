"""Bare implicit fit in its own process (no Spark): load a CSR matrix, fit, save the factors.

    python -m benchmarks.workers.fit_implicit --matrix train.npz --out DIR [--factors 64 ...]

Writes ``DIR/user_factors.npy``, ``DIR/item_factors.npy`` (float32) and ``DIR/fit.json``
(``fit_seconds``: model.fit only; ``load_seconds``). Prints ``BENCH <phase>`` lines on stderr so the
monitoring parent can stamp the phases.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from scipy.sparse import load_npz

from benchmarks.models import fit_bare
from spark_jobs.common.engines import TrainParams


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matrix", type=Path, required=True, help="scipy .npz CSR (users x items)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--algorithm", default="als", choices=("als", "bpr"))
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--regularization", type=float, default=0.01)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--num-threads", type=int, default=0, help="0 = all cores (train_cf's default)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    matrix = load_npz(args.matrix).tocsr()
    load_seconds = time.perf_counter() - started
    params = TrainParams(
        algorithm=args.algorithm,
        factors=args.factors,
        iterations=args.iterations,
        regularization=args.regularization,
        alpha=args.alpha,
        seed=args.seed,
        num_threads=args.num_threads,
    )
    print("BENCH fit_start", file=sys.stderr, flush=True)
    users, items, fit_seconds = fit_bare(matrix, params)
    print("BENCH fit_end", file=sys.stderr, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / "user_factors.npy", users)
    np.save(args.out / "item_factors.npy", items)
    summary = {"fit_seconds": fit_seconds, "load_seconds": load_seconds, "nnz": int(matrix.nnz)}
    (args.out / "fit.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
