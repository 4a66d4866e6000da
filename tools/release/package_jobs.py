"""Build what EMR steps run: ``spark_jobs.zip`` (for ``--py-files``), one entry point per job, and the
bootstrap files, under ``build/code/<version>/`` in the layout ``make deploy`` uploads.

    python -m tools.release.package_jobs [--version 0.1.0] [--out build/code]

The zip is the code bundle of :mod:`spark_jobs.common.bundle` (the one builder, which a checkout run
ships too): reproducible (sorted entries, fixed timestamps), so the same sources give the same bytes and
a deploy can tell an unchanged version from a changed one.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path
from typing import Dict, Optional, Sequence

from spark_jobs.common.bundle import BUNDLE_NAME, write_bundle

ROOT = Path(__file__).resolve().parents[2]
# Every module at the top of spark_jobs/ is a job a step runs (shared code lives in spark_jobs/common/).
JOBS = tuple(sorted(path.stem for path in (ROOT / "spark_jobs").glob("*.py") if path.stem != "__init__"))


def project_version() -> str:
    """The version in pyproject.toml (no toml parser needed on Python 3.9)."""
    for line in (ROOT / "pyproject.toml").read_text().splitlines():
        if line.startswith("version"):
            return line.split("=", 1)[1].strip().strip('"')
    raise ValueError("no version in pyproject.toml")


def build(version: str, out: Path) -> Dict[str, str]:
    """Write the code bundle for ``version`` into ``out/<version>``; returns {relative path: sha256}."""
    target = out / version
    if target.exists():
        shutil.rmtree(target)
    (target / "jobs").mkdir(parents=True)
    (target / "bootstrap").mkdir()
    write_bundle(target / BUNDLE_NAME, ROOT)
    for job in JOBS:
        shutil.copyfile(ROOT / "spark_jobs" / f"{job}.py", target / "jobs" / f"{job}.py")
    for name in ("install_python_deps.sh", "requirements-emr.txt"):
        shutil.copyfile(ROOT / "emr_configs" / "bootstrap" / name, target / "bootstrap" / name)
    return {
        path.relative_to(target).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(target.rglob("*"))
        if path.is_file()
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default=project_version(), help="code version (default: pyproject's)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "code", help="output folder")
    args = parser.parse_args(argv)
    files = build(args.version, args.out)
    for path, digest in files.items():
        print(f"{digest[:12]}  {args.out / args.version / path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
