"""The smallest spark-submit job: the jobs' session, one trivial action, stop (``BENCH`` lines on
stderr stamp the first two): the fixed cost every job pays."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from spark_jobs.common.session import build_spark

spark = build_spark("bench_empty_job")
print("BENCH session_ready", file=sys.stderr, flush=True)
spark.range(1).count()
print("BENCH action_done", file=sys.stderr, flush=True)
spark.stop()
