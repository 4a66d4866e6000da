"""make package / make deploy: reproducible bundle, immutable versions on S3 (in-process moto)."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import boto3
import pytest
from moto import mock_aws

from tools.release.deploy_code import deploy
from tools.release.package_jobs import build

pytestmark = pytest.mark.unit


def test_bundle_layout_and_reproducible_zip(tmp_path):
    first = build("9.9.9", tmp_path / "a")
    second = build("9.9.9", tmp_path / "b")
    assert first == second  # same sources, same bytes
    assert set(first) == {
        "spark_jobs.zip",
        "jobs/parse_logs.py",
        "jobs/build_features.py",
        "jobs/train_cf.py",
        "jobs/evaluate.py",
        "jobs/tune_trial.py",
        "jobs/load_serving.py",
        "bootstrap/install_python_deps.sh",
        "bootstrap/requirements-emr.txt",
    }


def test_every_job_the_dags_name_is_packaged():
    from recsys_dag.locations import JOBS as NIGHTLY
    from recsys_dag.locations import TUNING_JOBS

    from tools.release.package_jobs import JOBS

    assert set(NIGHTLY + TUNING_JOBS) == set(JOBS)


def test_zip_alone_provides_the_package(tmp_path):
    from spark_jobs.common.bundle import bundle_bytes

    build("9.9.9", tmp_path)
    zip_path = tmp_path / "9.9.9" / "spark_jobs.zip"
    assert zip_path.read_bytes() == bundle_bytes()  # the one builder: what a checkout run ships too
    code = (
        f"import sys; sys.path.insert(0, {str(zip_path)!r}); import spark_jobs.common.events as e;"
        "assert e.__file__.startswith(sys.path[0]), e.__file__;"
        "import serving.table as t; assert t.__file__.startswith(sys.path[0]), t.__file__;"
        'print(e.parse_line(\'{"event_id":"a","user_id":1,"item_id":2,"event_type":"view","ts":0}\').user_id)'
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="arts")
        yield client


def test_deploy_uploads_once_and_refuses_to_change_a_version(s3, tmp_path):
    build("1.0.0", tmp_path)
    local = tmp_path / "1.0.0"
    written = deploy(s3, "arts", "code", "1.0.0", local)
    assert sorted(written) == sorted(
        f"code/1.0.0/{p.relative_to(local).as_posix()}" for p in local.rglob("*") if p.is_file()
    )
    assert deploy(s3, "arts", "code", "1.0.0", local) == []  # identical: nothing to do

    (local / "jobs" / "train_cf.py").write_text("# changed\n")
    with pytest.raises(SystemExit, match=r"refusing to change deployed version 1.0.0.*jobs/train_cf.py"):
        deploy(s3, "arts", "code", "1.0.0", local)
    assert deploy(s3, "arts", "code", "1.0.0", local, force=True) == ["code/1.0.0/jobs/train_cf.py"]
    body = s3.get_object(Bucket="arts", Key="code/1.0.0/jobs/train_cf.py")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(b"# changed\n").hexdigest()


def test_deploy_carries_the_bootstrap_wheels_for_the_architecture(tmp_path, monkeypatch):
    import tools.release.deploy_code as deploy_code
    from tools.release.emr_wheels import download_command

    command = download_command("aarch64", tmp_path / "w")
    assert "--require-hashes" in command and "--only-binary=:all:" in command and "--no-deps" in command
    assert command[command.index("--python-version") :][:2] == ["--python-version", "3.9"]
    assert "manylinux2014_aarch64" in command and "manylinux_2_28_aarch64" in command
    with pytest.raises(ValueError, match="arch must be one of"):
        download_command("sparc", tmp_path)

    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "numpy-1.26.4-cp39-cp39-manylinux2014_x86_64.whl").write_bytes(b"numpy")
    monkeypatch.setattr(
        deploy_code, "download", lambda arch, dest: sorted(dest.glob("*.whl"))
    )  # no index here
    build("9.9.9", tmp_path / "b")
    deploy_code.add_wheels(tmp_path / "b" / "9.9.9", "x86_64", cache)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="arts")
        written = deploy(s3, "arts", "code", "9.9.9", tmp_path / "b" / "9.9.9")
    assert "code/9.9.9/wheels/x86_64/numpy-1.26.4-cp39-cp39-manylinux2014_x86_64.whl" in written
