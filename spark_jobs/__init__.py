"""PySpark jobs of the recommendation pipeline.

Each job module (``parse_logs``, ``build_features``, ``train_cf``, ``evaluate``) is a spark-submit entry
point with ``--help``; the logic lives in pure functions (many in :mod:`spark_jobs.common`) that are
unit-tested on tiny inputs. Code here must run on EMR's Python 3.9: no 3.10+ syntax.
"""
