"""Idempotent set-up of what the local stack needs besides ``.venv``: LocalStack's venv and the S3A jars.

Both are recorded by stamp files whose content is a fingerprint of their input, so a changed
``localstack/requirements.txt`` reinstalls and an unchanged one costs nothing. The make targets call
these too (``make local-up`` on a clean clone and the test fixture share one code path).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from local_aws.settings import LOCALSTACK_DIR, ROOT, Settings

REQUIREMENTS = LOCALSTACK_DIR / "requirements.txt"
# hadoop-aws 3.3.1 + its matching AWS SDK bundle: S3A for the Hadoop 3.3.4 client of Spark 3.5.
# Shipped inside this sdist; it is downloaded, never installed.
JARS_PACKAGE = "sagemaker-pyspark==1.4.5"
JARS = ("hadoop-aws-3.3.1.jar", "aws-java-sdk-bundle-1.11.901.jar")


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _stamp_matches(stamp: Path, fingerprint: str) -> bool:
    try:
        return stamp.read_text(encoding="ascii").strip() == fingerprint
    except OSError:
        return False


def localstack_venv_stamp(settings: Settings) -> Path:
    return settings.localstack_venv / ".installed"


def ensure_localstack_venv(settings: Settings, quiet: bool = True) -> bool:
    """Create ``.venv-localstack`` and install the pinned requirements if needed; True if it did work."""
    stamp = localstack_venv_stamp(settings)
    fingerprint = _fingerprint(REQUIREMENTS.read_text(encoding="utf-8"))
    python = settings.localstack_venv / "bin" / "python"
    if python.exists() and _stamp_matches(stamp, fingerprint):
        return False
    if not python.exists():
        # The base interpreter of .venv (Python 3.11): LocalStack 4.13 supports it.
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(settings.localstack_venv)], check=True
        )
    uv = settings.project_venv / "bin" / "uv"
    command = [str(uv), "pip", "install", "--python", str(python), "-r", str(REQUIREMENTS.relative_to(ROOT))]
    subprocess.run([*command, "--quiet"] if quiet else command, check=True, cwd=ROOT)
    stamp.write_text(fingerprint + "\n", encoding="ascii")
    return True


def jars_stamp(settings: Settings) -> Path:
    return settings.jars_dir / ".fetched"


def jar_paths(settings: Settings) -> list[Path]:
    """Absolute paths of the S3A jars (whether or not they exist yet)."""
    return [settings.jars_dir / name for name in JARS]


def ensure_jars(settings: Settings) -> bool:
    """Download the sdist with pip (no install), extract the two jars, drop the rest; True if it did work.

    The sdist (~180 MB) is deleted afterwards; the two jars (~190 MB, nearly all the SDK bundle) stay.
    """
    fingerprint = _fingerprint(JARS_PACKAGE, *JARS)
    if all(path.is_file() for path in jar_paths(settings)) and _stamp_matches(
        jars_stamp(settings), fingerprint
    ):
        return False
    settings.jars_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="s3a-jars-", dir=settings.jars_dir) as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--disable-pip-version-check",
                JARS_PACKAGE,
                "-d",
                tmp,
            ],
            check=True,
        )
        sdists = list(Path(tmp).glob("*.tar.gz"))
        if len(sdists) != 1:
            raise RuntimeError(f"pip download of {JARS_PACKAGE} produced {sdists}, expected one sdist")
        with tarfile.open(sdists[0]) as archive:
            members = {Path(m.name).name: m for m in archive.getmembers() if m.name.endswith(".jar")}
            for name in JARS:
                if name not in members:
                    raise RuntimeError(f"{name} not found in {sdists[0].name}")
                source = archive.extractfile(members[name])
                assert source is not None
                partial = settings.jars_dir / (name + ".part")
                with source, open(partial, "wb") as target:
                    shutil.copyfileobj(source, target)
                partial.replace(settings.jars_dir / name)
    jars_stamp(settings).write_text(fingerprint + "\n", encoding="ascii")
    return True
