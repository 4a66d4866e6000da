"""The EMR bootstrap script, run by bash for real with stand-ins for the commands only EMR has (``aws s3
cp`` from a local folder, ``sudo``, ``ldconfig``) and a ``python3`` that records what pip was asked to do."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "emr_configs" / "bootstrap" / "install_python_deps.sh"
REQUIREMENTS = ROOT / "emr_configs" / "bootstrap" / "requirements-emr.txt"
REQ_URI = "s3://arts/code/1.0.0/bootstrap/requirements-emr.txt"
WHEELS_URI = "s3://arts/code/1.0.0/wheels/x86_64/"

SHIMS = {
    # aws s3 cp [--only-show-errors] [--recursive] s3://bucket/key DEST, from $FAKE_S3/bucket/key
    "aws": """#!/bin/bash
args=(); recursive=0
for a in "$@"; do
  case "$a" in s3|cp|--only-show-errors) ;; --recursive) recursive=1 ;; *) args+=("$a") ;; esac
done
src="$FAKE_S3/${args[0]#s3://}"; dest="${args[1]}"
if [ $recursive = 1 ]; then mkdir -p "$dest"; cp -r "$src"/. "$dest" 2>/dev/null || true
else cp "$src" "$dest"; fi
""",
    "sudo": '#!/bin/bash\nexec "$@"\n',
    "ldconfig": "#!/bin/bash\necho 'libgomp.so.1 (libc6,x86-64) => /usr/lib64/libgomp.so.1'\n",
    "python3": '#!/bin/bash\necho "$*" >> "$PYTHON_LOG"\n',
}


def pins(text: str):
    return re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", text, flags=re.M)


def run_script(tmp_path: Path, requirements: str, wheels) -> tuple:
    fake = tmp_path / "s3"
    (fake / "arts/code/1.0.0/bootstrap").mkdir(parents=True)
    (fake / "arts/code/1.0.0/bootstrap/requirements-emr.txt").write_text(requirements)
    wheel_dir = fake / "arts/code/1.0.0/wheels/x86_64"
    wheel_dir.mkdir(parents=True)
    for name in wheels:
        (wheel_dir / name).write_bytes(b"wheel")
    shims = tmp_path / "bin"
    shims.mkdir()
    for name, body in SHIMS.items():
        (shims / name).write_text(body)
        (shims / name).chmod(0o755)
    log = tmp_path / "python.log"
    env = {
        "PATH": f"{shims}:{os.path.dirname(shutil.which('bash'))}:/usr/bin:/bin",
        "FAKE_S3": str(fake),
        "PYTHON_LOG": str(log),
        "TMPDIR": str(tmp_path),
    }
    proc = subprocess.run(["bash", str(SCRIPT), REQ_URI, WHEELS_URI], env=env, capture_output=True, text=True)
    return proc, (log.read_text().splitlines() if log.exists() else [])


def wheel_names(text: str):
    return [
        f"{name.lower().replace('-', '_')}-{version}-cp39-cp39-manylinux2014_x86_64.whl"
        for name, version in pins(text)
    ]


def test_the_committed_requirements_are_all_pinned_with_hashes():
    text = REQUIREMENTS.read_text()
    assert len(pins(text)) >= 10
    # Every requirement line (not a comment, not a continuation) is a pin: no range, URL or bare name.
    requirements = [line for line in text.splitlines() if line.strip() and line[0] not in " \t#"]
    assert [line.split()[0] for line in requirements] == [f"{n}=={v}" for n, v in pins(text)]
    for name, version in pins(text):
        block = text.split(f"{name}=={version}", 1)[1].split("\n    # via", 1)[0]
        assert "--hash=sha256:" in block, name


def test_with_every_pin_hashed_and_its_wheel_present_pip_installs_offline_with_hashes(tmp_path):
    text = REQUIREMENTS.read_text()
    proc, calls = run_script(tmp_path, text, wheel_names(text))
    assert proc.returncode == 0, proc.stderr
    install, check = calls
    for flag in ("-m pip install", "--no-index", "--require-hashes", "--only-binary=:all:", "--find-links"):
        assert flag in install
    assert check.startswith("-c import implicit")


def test_requirements_without_hashes_are_refused_before_pip_runs(tmp_path):
    text = "implicit==0.7.3\nnumpy==1.26.4 \\\n    --hash=sha256:" + "0" * 64 + "\n"
    proc, calls = run_script(tmp_path, text, wheel_names(text))
    assert proc.returncode != 0 and calls == []
    assert "requirements without --hash" in proc.stderr and "implicit==0.7.3" in proc.stderr


def test_a_missing_wheel_fails_the_bootstrap_naming_it(tmp_path):
    text = REQUIREMENTS.read_text()
    present = [name for name in wheel_names(text) if not name.startswith("numpy-")]
    proc, calls = run_script(tmp_path, text, present)
    assert proc.returncode != 0 and calls == []
    assert f"no wheel in {WHEELS_URI} for: numpy==1.26.4" in proc.stderr
