"""The code bundle: one reproducible zip of the packages the jobs import, the same wherever it is built.

``make package`` (tools/release/package_jobs.py) writes it as ``spark_jobs.zip`` for EMR's
``--py-files``; a run from a source checkout (``spark-submit spark_jobs/x.py``, tests) builds it in a
temporary folder and ships it to the Python workers (:func:`spark_jobs.common.session.ship_package`).
Every ``.py`` file of :data:`PACKAGES`, paths relative to the folder holding them, entries sorted, fixed
timestamps and permissions: the same sources give the same bytes. Standard library only, so the release
tools import it without pyspark.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import List, Optional, Union

# The packages in the bundle: the jobs, and the serving layer's library that load_serving writes with.
PACKAGES = ("spark_jobs", "serving")
BUNDLE_NAME = "spark_jobs.zip"
FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # zip entries carry no build time
_MODE = 0o644 << 16

PathLike = Union[str, os.PathLike]


def source_root() -> Path:
    """The folder holding the packages: the checkout's root (``spark_jobs/``'s parent)."""
    return Path(__file__).resolve().parents[2]


def _base(root: Optional[PathLike]) -> Path:
    return Path(root) if root is not None else source_root()


def bundle_sources(root: Optional[PathLike] = None) -> List[Path]:
    """Every ``.py`` file of :data:`PACKAGES` under ``root`` (default :func:`source_root`), sorted by
    entry name; raises FileNotFoundError when a package is not there."""
    base = _base(root)
    sources = []
    for package in PACKAGES:
        if not (base / package / "__init__.py").is_file():
            raise FileNotFoundError(f"no package {package!r} under {base}: the bundle needs {PACKAGES}")
        sources.extend(p for p in (base / package).rglob("*.py") if "__pycache__" not in p.parts)
    return sorted(sources, key=lambda p: p.relative_to(base).parts)


def bundle_entries(root: Optional[PathLike] = None) -> List[str]:
    """The bundle's entry names (``spark_jobs/common/session.py``, ...), in zip order."""
    base = _base(root)
    return [p.relative_to(base).as_posix() for p in bundle_sources(base)]


def bundle_bytes(root: Optional[PathLike] = None) -> bytes:
    """The bundle of the packages under ``root`` (default :func:`source_root`), as zip bytes."""
    base = _base(root)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for source in bundle_sources(base):
            info = zipfile.ZipInfo(source.relative_to(base).as_posix(), date_time=FIXED_TIME)
            info.external_attr = _MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, source.read_bytes())
    return buffer.getvalue()


def write_bundle(target: PathLike, root: Optional[PathLike] = None) -> Path:
    """Write :func:`bundle_bytes` to ``target`` (its folder must exist); returns ``target``."""
    path = Path(target)
    path.write_bytes(bundle_bytes(root))
    return path
