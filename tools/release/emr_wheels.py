"""The wheels the EMR bootstrap installs, downloaded at deploy time so no cluster start needs an index.

    python -m tools.release.emr_wheels --arch x86_64 [--dest build/wheels]

Downloads exactly the pins of ``emr_configs/bootstrap/requirements-emr.txt``, binary wheels only, for
EMR 7.x's CPython 3.9 on the given architecture, each checked against its hash (pip --require-hashes).
Files already in the destination with the right hash are not fetched again.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "emr_configs" / "bootstrap" / "requirements-emr.txt"
ARCHITECTURES = ("x86_64", "aarch64")
PYTHON_VERSION = "3.9"  # EMR 7.x's system Python
# Amazon Linux 2023 has glibc 2.34: every manylinux tag up to 2_34 installs there.
MANYLINUX = ("manylinux_2_28", "manylinux_2_17", "manylinux2014")


def download_command(arch: str, dest: Path, requirements: Path = REQUIREMENTS) -> List[str]:
    """The ``pip download`` command for ``arch``'s wheels into ``dest``."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")
    platforms = [arg for tag in MANYLINUX for arg in ("--platform", f"{tag}_{arch}")]
    return [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
        "--require-hashes", "--implementation", "cp", "--python-version", PYTHON_VERSION,
        *platforms, "--dest", str(dest), "-r", str(requirements),
    ]  # fmt: skip


def download(arch: str, dest: Path, requirements: Path = REQUIREMENTS) -> List[Path]:
    """Download ``arch``'s wheels into ``dest`` (created); returns the wheel files there."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(download_command(arch, dest, requirements), check=True)
    return sorted(dest.glob("*.whl"))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=ARCHITECTURES, required=True)
    parser.add_argument("--dest", type=Path, default=ROOT / "build" / "wheels")
    args = parser.parse_args(argv)
    wheels = download(args.arch, args.dest / args.arch)
    print(f"{len(wheels)} wheels for {args.arch} in {args.dest / args.arch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
