"""Small-file I/O through Hadoop's FileSystem, so one code path serves s3:// (EMRFS), s3a:// and local paths.

Only small metadata goes through here (stats, manifests, metrics, parameters); datasets go through Spark.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # no pyspark import for callers that only read local pointers (tools, tests)
    from pyspark.sql import SparkSession


def _path_and_fs(spark: SparkSession, uri: str):
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return path, fs


def exists(spark: SparkSession, uri: str) -> bool:
    """True if a file or folder exists at ``uri``."""
    path, fs = _path_and_fs(spark, uri)
    return bool(fs.exists(path))


def write_text(spark: SparkSession, uri: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``uri``, replacing any existing file."""
    path, fs = _path_and_fs(spark, uri)
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def read_text(spark: SparkSession, uri: str) -> str:
    """Read a whole small UTF-8 file at ``uri``."""
    path, fs = _path_and_fs(spark, uri)
    jvm = spark.sparkContext._jvm
    stream = fs.open(path)
    try:
        out = jvm.java.io.ByteArrayOutputStream()
        jvm.org.apache.hadoop.io.IOUtils.copyBytes(stream, out, 65536, False)
        return bytes(out.toByteArray()).decode("utf-8")
    finally:
        stream.close()


def write_json(spark: SparkSession, uri: str, payload: Any) -> None:
    """Write ``payload`` as pretty, key-sorted JSON to ``uri``."""
    write_text(spark, uri, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def read_json(spark: SparkSession, uri: str) -> Any:
    """Read a JSON document from ``uri``."""
    return json.loads(read_text(spark, uri))


def list_folders(spark: SparkSession, uri: str) -> list:
    """Names of the folders directly under ``uri`` (empty if ``uri`` does not exist), sorted."""
    path, fs = _path_and_fs(spark, uri)
    if not fs.exists(path):
        return []
    return sorted(status.getPath().getName() for status in fs.listStatus(path) if status.isDirectory())


def delete(spark: SparkSession, uri: str) -> bool:
    """Delete the file or folder (recursively) at ``uri``; False if there was nothing."""
    path, fs = _path_and_fs(spark, uri)
    return bool(fs.delete(path, True))
