"""The code bundle's one builder (spark_jobs/common/bundle.py): what make package zips for EMR's
--py-files and what a checkout run ships to its workers. Layout of the packaged version: test_packaging.py."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

import spark_jobs
from spark_jobs.common import bundle

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _copy_packages(dest: Path) -> Path:
    for package in bundle.PACKAGES:
        shutil.copytree(ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_same_sources_give_the_same_bytes(tmp_path):
    copy = _copy_packages(tmp_path / "copy")
    for path in copy.rglob("*.py"):  # other modification times, same contents
        os.utime(path, (1_000_000_000, 1_000_000_000))
    assert bundle.bundle_bytes(copy) == bundle.bundle_bytes(ROOT) == bundle.bundle_bytes()
    written = bundle.write_bundle(tmp_path / bundle.BUNDLE_NAME, copy)
    assert written.read_bytes() == bundle.bundle_bytes()

    (copy / "serving" / "table.py").write_text("# changed\n")
    assert bundle.bundle_bytes(copy) != bundle.bundle_bytes()


def test_contents_are_every_module_of_the_packages_sorted(tmp_path):
    copy = _copy_packages(tmp_path / "copy")
    (copy / "spark_jobs" / "__pycache__").mkdir()
    (copy / "spark_jobs" / "__pycache__" / "stale.py").write_text("")
    (copy / "spark_jobs" / "notes.txt").write_text("not a module")
    expected = sorted(
        p.relative_to(ROOT).as_posix()
        for package in bundle.PACKAGES
        for p in (ROOT / package).rglob("*.py")
        if "__pycache__" not in p.parts
    )
    entries = bundle.bundle_entries(copy)
    assert sorted(entries) == expected
    assert entries == sorted(entries, key=lambda name: name.split("/"))
    assert {
        "spark_jobs/__init__.py",
        "spark_jobs/common/bundle.py",
        "serving/__init__.py",
        "serving/load.py",
    } <= set(entries)

    path = bundle.write_bundle(tmp_path / "b.zip", copy)
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    assert [info.filename for info in infos] == entries
    assert {info.date_time for info in infos} == {bundle.FIXED_TIME}
    assert {info.external_attr >> 16 for info in infos} == {0o644}
    assert {info.compress_type for info in infos} == {zipfile.ZIP_DEFLATED}


def test_a_missing_package_is_an_error_not_a_smaller_bundle(tmp_path):
    shutil.copytree(
        ROOT / "spark_jobs", tmp_path / "spark_jobs", ignore=shutil.ignore_patterns("__pycache__")
    )
    with pytest.raises(FileNotFoundError, match="no package 'serving'"):
        bundle.bundle_bytes(tmp_path)


class _Context:
    def __init__(self):
        self.py_files = []

    def addPyFile(self, path):  # SparkContext's name
        self.py_files.append(path)


def test_a_checkout_run_ships_the_bundle_once_per_session():
    from spark_jobs.common.session import ship_package

    session = SimpleNamespace(sparkContext=_Context())
    ship_package(session)
    ship_package(session)
    (shipped,) = session.sparkContext.py_files
    try:
        assert os.path.basename(shipped) == bundle.BUNDLE_NAME
        assert Path(shipped).read_bytes() == bundle.bundle_bytes()  # what make package gives EMR
        with zipfile.ZipFile(shipped) as archive:
            assert "serving/load.py" in archive.namelist()  # load_serving's workers import it
    finally:
        shutil.rmtree(os.path.dirname(shipped))


def test_nothing_is_shipped_when_the_package_comes_from_a_zip(monkeypatch):
    from spark_jobs.common.session import ship_package

    monkeypatch.setattr(spark_jobs, "__file__", "/nowhere/code/spark_jobs.zip/spark_jobs/__init__.py")
    session = SimpleNamespace(sparkContext=_Context())
    ship_package(session)
    assert session.sparkContext.py_files == []
