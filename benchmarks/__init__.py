"""Benchmarks of the pipeline (make bench). BLAS threads are pinned to one before NumPy loads."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
