"""Apply the pipeline's S3 lifecycle rules (dags/recsys_dag/retention.py) to its two buckets.

    python -m tools.release.apply_retention [--endpoint-url URL] [--dry-run]
    python -m tools.release.apply_retention --local      # the running local stack's buckets

Buckets, prefixes and retention days come from the DAG configuration in force
(``AIRFLOW_VAR_RECSYS_TRAINING_CONFIG``; ``--local``: make run's local configuration). Only the rules whose
id starts with ``recsys-`` are replaced; a bucket's other rules are kept. Idempotent.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dags"))

from recsys_dag.config import config_from_mapping, load_config
from recsys_dag.retention import lifecycle_rules, merged


def current_rules(s3, bucket: str) -> List[dict]:
    """The bucket's lifecycle rules; [] when it has none."""
    try:
        return s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchLifecycleConfiguration":
            return []
        raise


def apply(s3, rules: Dict[str, List[dict]], dry_run: bool = False) -> Dict[str, List[dict]]:
    """Merge ``rules`` into each bucket's lifecycle configuration; returns bucket -> rules now in force."""
    out = {}
    for bucket, ours in rules.items():
        wanted = merged(current_rules(s3, bucket), ours)
        if not dry_run:
            s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": wanted})
        out[bucket] = wanted
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", default=None, help="S3 endpoint (LocalStack), default AWS")
    parser.add_argument(
        "--local", action="store_true", help="the running local stack, with make run's config"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the rules, change nothing")
    args = parser.parse_args(argv)
    import boto3

    if args.local:
        from tools.local.run import clients, local_config

        s3, _ = clients()
        cfg = config_from_mapping(local_config("0.0.0"))
    else:
        s3 = boto3.client("s3", endpoint_url=args.endpoint_url)
        cfg = load_config()
    applied = apply(s3, lifecycle_rules(cfg), dry_run=args.dry_run)
    for bucket, rules in applied.items():
        for rule in rules:
            days = rule.get("Expiration", {}).get("Days")
            print(f"s3://{bucket}/{rule['Filter'].get('Prefix', '')}: {rule['ID']} expires after {days} days")
    if args.dry_run:
        print(json.dumps(applied, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
