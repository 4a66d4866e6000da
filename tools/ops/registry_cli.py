"""Inspect the model registry and roll production back to an earlier version.

    python -m tools.ops.registry_cli show --registry s3://acme-ml/registry [--endpoint-url URL]
    python -m tools.ops.registry_cli rollback --registry s3://acme-ml/registry \\
        --version 2024-01-30_j-2AB3XYZ --reason "ndcg dropped in the A/B test" [--by WHO] \\
        [--endpoint-url URL] [--serving-table recsys-serving [--dynamodb-endpoint-url URL]]

Uses the default AWS credential chain (environment, profile, instance role); ``--endpoint-url`` points it
at LocalStack. A rollback needs s3:GetObject, s3:PutObject and s3:ListBucket on the registry prefix. It
exits 2 with a one-line error when the version is unknown, incomplete or already current, or when
latest.json kept changing under it; 1 on an AWS error (credentials, permissions, endpoint).

With ``--serving-table`` the serving table's pointer moves back too (serving.pointer.rollback, same who
and why), so production and what applications read stay one version. The version's lists must still
be loaded there (not expired after ``serving_ttl_days``): that is checked before latest.json moves, and
without them nothing moves. It needs dynamodb:GetItem, PutItem and ConditionCheckItem on the pointer,
its history and the loaded markers (the Airflow role's serving statement).
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "dags") not in sys.path:
    sys.path.insert(0, str(ROOT / "dags"))  # recsys_dag, as Airflow imports it from its DAGs folder

from recsys_dag import registry  # noqa: E402


def default_by(endpoint_url: Optional[str] = None) -> str:
    """``<os user>``, plus ``(<caller ARN>)`` when STS answers within a few seconds; never raises."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name (e.g. a container's numeric uid)
        user = "unknown"
    try:
        import boto3
        from botocore.config import Config

        sts = boto3.client(
            "sts",
            endpoint_url=endpoint_url,
            config=Config(connect_timeout=3, read_timeout=3, retries={"max_attempts": 1}),
        )
        return f"{user} ({sts.get_caller_identity()['Arn']})"
    except Exception:  # no credentials, no network, no region: the OS user alone still says who
        return user


def show(s3, registry_root: str) -> str:
    """The latest pointer and the versions, newest first, as text."""
    lines = []
    pointer = registry.read_pointer(s3, registry_root.rstrip("/") + "/" + registry.LATEST)
    if pointer is None:
        lines.append(f"latest.json: none under {registry_root}")
    else:
        lines += [
            f"latest.json -> {pointer.version}",
            f"  ds               {pointer.ds}",
            f"  promoted_at      {pointer.doc.get('promoted_at', '-')}",
            f"  model            {pointer.model or '-'}",
            f"  recommendations  {pointer.recommendations or '-'}",
        ]
        rolled_back = pointer.doc.get("rolled_back")
        if rolled_back:
            lines.append(
                f"  rolled_back      from {rolled_back.get('from_version')} by {rolled_back.get('by')} "
                f"at {rolled_back.get('at')}: {rolled_back.get('reason')}"
            )
    versions = registry.list_versions(s3, registry_root)
    lines.append(f"versions ({len(versions)}, newest first):")
    for entry in versions:
        mark = "*" if pointer is not None and entry["version"] == pointer.version else " "
        state = "complete  " if entry["complete"] else "INCOMPLETE"
        lines.append(f" {mark} {entry['version']:<40} {state} {entry['registered_at'] or ''}".rstrip())
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("show", "print latest.json and the versions"), ("rollback", "point latest back")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--registry", required=True, help="registry root, s3://bucket/prefix")
        cmd.add_argument("--endpoint-url", default=None, help="S3 endpoint (LocalStack), default AWS")
        if name == "rollback":
            cmd.add_argument("--version", required=True, help="the complete version to serve again")
            cmd.add_argument("--reason", required=True, help="why (kept in latest.json and history/)")
            cmd.add_argument("--by", default=None, help="who (default: OS user and AWS caller ARN)")
            cmd.add_argument("--serving-table", default=None, help="move this serving table's pointer too")
            cmd.add_argument("--dynamodb-endpoint-url", default=None, help="DynamoDB endpoint, default AWS")
    args = parser.parse_args(argv)

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from serving.pointer import NotLoaded, PointerConflict

    s3 = boto3.client("s3", endpoint_url=args.endpoint_url)
    try:
        if args.command == "show":
            print(show(s3, args.registry))
            return 0
        dynamodb = None
        if args.serving_table:
            dynamodb = boto3.client("dynamodb", endpoint_url=args.dynamodb_endpoint_url)
            check_servable(dynamodb, args.serving_table, args.version, int(time.time()))
        by = args.by or default_by(args.endpoint_url)
        result = registry.rollback(s3, args.registry, args.version, by=by, reason=args.reason)
        # Not moved only if another writer had just put the same version there: the wanted state holds.
        print(result.reason + (f" after {result.conflicts} conflicting write(s)" if result.conflicts else ""))
        if dynamodb is not None:
            print(rollback_serving(dynamodb, args.serving_table, args.version, by, args.reason))
    except (ValueError, registry.RegistryConflict, NotLoaded, PointerConflict) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as err:  # credentials, permissions, endpoint: AWS's own words
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    return 0


def check_servable(dynamodb, table: str, version: str, now_epoch: int) -> None:
    """NotLoaded unless ``version``'s lists are loaded in ``table`` and unexpired."""
    from serving.pointer import NotLoaded, read_loaded

    marker = read_loaded(dynamodb, table, version)
    if marker is None or marker.expires_at <= now_epoch:
        state = "expired" if marker else "not loaded"
        raise NotLoaded(
            f"{version}'s lists are {state} in the serving table {table}: nothing rolled back (the "
            "serving table could not follow latest.json)"
        )


def rollback_serving(dynamodb, table: str, version: str, by: str, reason: str) -> str:
    """Point ``table`` at ``version`` (a rollback record with who and why); what happened, as a line."""
    from serving import pointer

    current = pointer.read_pointer(dynamodb, table)
    if current is not None and current.version == version:
        return f"serving table {table}: already names {version}"
    moved = pointer.rollback(dynamodb, table, version, by=by, reason=reason, now_epoch=int(time.time()))
    return f"serving table {table}: {moved.reason}"


if __name__ == "__main__":
    sys.exit(main())
