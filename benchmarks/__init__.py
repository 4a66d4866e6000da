"""Benchmarks of the pipeline (make bench): scripts, their helpers and the page builder.

BLAS threads are pinned to one before NumPy loads (implicit's own threads do the parallel work), as the
Makefile does for the jobs.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
