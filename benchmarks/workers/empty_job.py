"""The smallest spark-submit job: start the session the jobs use, run one trivial action, stop.

    spark-submit benchmarks/workers/empty_job.py

Its wall time is the fixed cost every job pays (launcher, JVM, SparkContext, Python driver, shutdown);
``BENCH session_ready`` / ``BENCH action_done`` lines on stderr let the parent split start-up from the rest.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a file by spark-submit: make `spark_jobs` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from spark_jobs.common.session import build_spark


def main() -> int:
    spark = build_spark("bench_empty_job")
    print("BENCH session_ready", file=sys.stderr, flush=True)
    spark.range(1).count()
    print("BENCH action_done", file=sys.stderr, flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
