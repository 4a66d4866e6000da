"""SparkSession construction shared by every job."""

from __future__ import annotations

import os
import tempfile
import time
from typing import Mapping, Optional

from pyspark.sql import SparkSession

import spark_jobs
from spark_jobs.common import bundle
from spark_jobs.common.joblog import get_logger

# UTC everywhere: event timestamps are normalised to UTC and day boundaries are UTC days.
_DEFAULTS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.compression.codec": "snappy",
    # Arrow makes toPandas / mapInPandas columnar instead of row-by-row pickling.
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


def build_spark(app_name: str, conf: Optional[Mapping[str, str]] = None) -> SparkSession:
    """Get or create the session for a job.

    The master and cluster settings come from spark-submit (EMR or local); ``conf`` adds job-specific
    settings. Run without spark-submit (``python spark_jobs/x.py``), the session falls back to local mode.
    """
    started = time.perf_counter()
    builder = SparkSession.builder.appName(app_name)
    for key, value in {**_DEFAULTS, **(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    ship_package(spark)
    get_logger(app_name).info(
        "Spark %s session ready in %.1f s (master %s)",
        spark.version,
        time.perf_counter() - started,
        spark.sparkContext.master,
    )
    return spark


def ship_package(spark: SparkSession) -> None:
    """Make the code bundle (``spark_jobs`` and ``serving``) importable on the Python workers when running
    from a source checkout.

    On EMR the bundle arrives as ``--py-files spark_jobs.zip`` and ``spark_jobs.__file__`` lies inside
    that zip: nothing to do. Run from a checkout (``spark-submit spark_jobs/x.py``, tests), the workers do
    not see the checkout, so the bundle EMR gets (:mod:`spark_jobs.common.bundle`, the same builder as
    ``make package``) is built once per session from the checkout and added with ``addPyFile``.
    """
    package_dir = os.path.dirname(os.path.abspath(spark_jobs.__file__))
    if not os.path.isdir(package_dir) or getattr(spark, "_recsys_package_shipped", False):
        return
    target = os.path.join(tempfile.mkdtemp(prefix="recsys-pyfiles-"), bundle.BUNDLE_NAME)
    bundle.write_bundle(target, os.path.dirname(package_dir))
    spark.sparkContext.addPyFile(target)
    spark._recsys_package_shipped = True
