"""Upload a packaged code version to ``s3://<bucket>/<prefix>/<version>/``, the prefix the EMR steps use.

    python -m tools.release.deploy_code --bucket recsys-artifacts [--prefix code] [--version 0.1.0]
        [--endpoint-url URL] [--force] [--arch x86_64|aarch64]

Besides the code bundle it uploads ``wheels/<arch>/``: every package the bootstrap installs, as hashed
wheels for EMR's Python (tools/release/emr_wheels.py), so a cluster start contacts no package index.

Versions are immutable: re-deploying identical files is a no-op, and changed files under an existing
version are refused (bump the version, or pass --force for a development stack).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from tools.release.emr_wheels import ARCHITECTURES, download
from tools.release.package_jobs import ROOT, build, project_version

SHA_KEY = "sha256"  # object metadata holding each file's digest


def deploy(s3, bucket: str, prefix: str, version: str, local: Path, force: bool = False) -> List[str]:
    """Upload the files under ``local`` to ``<prefix>/<version>/``; returns the keys written."""
    base = f"{prefix.strip('/')}/{version}/"
    files: Dict[str, Path] = {
        p.relative_to(local).as_posix(): p for p in sorted(local.rglob("*")) if p.is_file()
    }
    digests = {rel: hashlib.sha256(path.read_bytes()).hexdigest() for rel, path in files.items()}
    existing = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
        for obj in page.get("Contents", []):
            head = s3.head_object(Bucket=bucket, Key=obj["Key"])
            existing[obj["Key"][len(base) :]] = head.get("Metadata", {}).get(SHA_KEY)
    changed = sorted(rel for rel in files if rel in existing and existing[rel] != digests[rel])
    if changed and not force:
        raise SystemExit(
            f"refusing to change deployed version {version} at s3://{bucket}/{base}: {changed} differ. "
            "Bump the version (pyproject.toml and the DAG config's code_version) or pass --force."
        )
    written = []
    for rel, path in files.items():
        if existing.get(rel) == digests[rel]:
            continue
        s3.upload_file(str(path), bucket, base + rel, ExtraArgs={"Metadata": {SHA_KEY: digests[rel]}})
        written.append(base + rel)
    return written


def configured_architecture() -> str:
    """The architecture of the instance types in the DAG config in force (its env var)."""
    sys.path.insert(0, str(ROOT / "dags"))
    from recsys_dag.config import cluster_architecture, load_config

    return cluster_architecture(load_config())


def add_wheels(bundle: Path, arch: str, cache: Path) -> List[Path]:
    """Download (into ``cache``, reused across deploys) and copy into ``bundle/wheels/<arch>/`` the
    bootstrap's wheels: the code version carries the exact packages its clusters install."""
    wheels = download(arch, cache)
    target = bundle / "wheels" / arch
    target.mkdir(parents=True, exist_ok=True)
    for wheel in wheels:
        shutil.copyfile(wheel, target / wheel.name)
    print(
        f"{len(wheels)} wheels for {arch} ({sum(w.stat().st_size for w in wheels) / 1e6:.0f} MB) in {target}"
    )
    return wheels


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bucket", required=True, help="artefact bucket (the DAG config's artifact_bucket)")
    parser.add_argument("--prefix", default="code", help="code prefix (the DAG config's code_prefix)")
    parser.add_argument("--version", default=project_version(), help="code version to deploy")
    parser.add_argument("--endpoint-url", default=None, help="S3 endpoint (LocalStack), default AWS")
    parser.add_argument("--force", action="store_true", help="overwrite changed files of a deployed version")
    parser.add_argument(
        "--arch",
        choices=ARCHITECTURES,
        default=None,
        help="the cluster's CPU architecture for the bootstrap's wheels (default: from the DAG config's "
        "instance types)",
    )
    args = parser.parse_args(argv)

    import boto3

    out = ROOT / "build" / "code"
    build(args.version, out)
    arch = args.arch or configured_architecture()
    add_wheels(out / args.version, arch, ROOT / "build" / "wheels" / arch)
    s3 = boto3.client("s3", endpoint_url=args.endpoint_url)
    written = deploy(s3, args.bucket, args.prefix, args.version, out / args.version, args.force)
    print(
        f"deployed {len(written)} changed file(s) to s3://{args.bucket}/{args.prefix.strip('/')}/{args.version}/"
    )
    for key in written:
        print(f"  {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
