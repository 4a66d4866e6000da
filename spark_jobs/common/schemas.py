"""Schemas of the datasets the jobs exchange (the data contracts between steps).

Shapes:
- parsed events: one row per accepted raw event (parse_logs output).
- interactions (train / holdout): one row per (user_idx, item_idx) with a positive confidence.
- id maps: contiguous indices 0..n-1 and the original string ids.
- recommendations: long format, K rows per user, rank 1..K, best first.
"""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

PARSED_EVENTS = StructType(
    [
        StructField("event_id", StringType(), False),
        StructField("user_id", StringType(), False),
        StructField("item_id", StringType(), False),
        StructField("event_type", StringType(), False),
        StructField("event_ts", TimestampType(), False),  # UTC
        StructField("session_id", StringType(), True),
        StructField("value", DoubleType(), True),
    ]
)

REJECTS = StructType(
    [
        StructField("raw", StringType(), False),
        StructField("reason", StringType(), False),
        StructField("detail", StringType(), True),
        StructField("raw_base64", StringType(), True),  # the exact bytes of a line that is not UTF-8
    ]
)

INTERACTIONS = StructType(
    [
        StructField("user_idx", IntegerType(), False),
        StructField("item_idx", IntegerType(), False),
        StructField("confidence", DoubleType(), False),  # sum of decayed event weights, > 0
        StructField("last_ts", TimestampType(), False),  # latest event of the pair, UTC
    ]
)

USER_MAP = StructType(
    [StructField("user_idx", IntegerType(), False), StructField("user_id", StringType(), False)]
)
ITEM_MAP = StructType(
    [StructField("item_idx", IntegerType(), False), StructField("item_id", StringType(), False)]
)

FACTORS_USER = StructType(
    [
        StructField("user_idx", IntegerType(), False),
        StructField("factors", ArrayType(FloatType(), False), False),
    ]
)
FACTORS_ITEM = StructType(
    [
        StructField("item_idx", IntegerType(), False),
        StructField("factors", ArrayType(FloatType(), False), False),
    ]
)

RECOMMENDATIONS = StructType(
    [
        StructField("user_idx", IntegerType(), False),
        StructField("user_id", StringType(), False),
        StructField("rank", IntegerType(), False),  # 1..K, 1 = best
        StructField("item_idx", IntegerType(), False),
        StructField("item_id", StringType(), False),
        StructField("score", DoubleType(), False),
    ]
)

COUNT = LongType()
