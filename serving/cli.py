"""The serving table from a shell (default AWS credential chain and region, or ``--endpoint-url``).

    python -m serving.cli recommend --table T --user 1 [--n 10] [--titles FILE]
    python -m serving.cli pointer --table T [--history 10]
    python -m serving.cli rollback --table T --version V --reason WHY [--by WHO]
    python -m serving.cli ensure-table --table T [--billing-mode PROVISIONED --read-capacity R
        --write-capacity W]

``--titles``: item titles, JSON lines ``{"item_id": ..., "title": ...}`` (the MovieLens loader's
``_items.jsonl``) or delimited lines ``<item_id>|<title>|...`` / ``<item_id><TAB><title>`` (MovieLens
``u.item``). Exit status 0, or 2 with an ``error:`` line for a refused request (no live version, a
version not loaded, bad arguments), 1 with an ``error:`` line for an AWS error (credentials,
permissions, endpoint).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from typing import Dict, Optional, Sequence

from serving.client import NoLiveVersion, Recommender, ServingUnavailable
from serving.pointer import NotLoaded, PointerConflict, history, read_pointer, rollback
from serving.table import ensure_table


def read_titles(path: str) -> Dict[str, str]:
    """{item id: title} from a titles file (see the module docstring); unreadable lines are skipped."""
    titles: Dict[str, str] = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            if line.startswith("{"):
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and "item_id" in entry:
                    titles[str(entry["item_id"])] = str(entry.get("title", ""))
                continue
            for sep in ("\t", "|"):
                if sep in line:
                    item_id, title = line.split(sep, 2)[:2]
                    titles[item_id.strip()] = title.strip()
                    break
    return titles


def _client(args: argparse.Namespace):
    import boto3

    kwargs = {}
    if args.endpoint_url:
        kwargs["endpoint_url"] = args.endpoint_url
    if args.region:
        kwargs["region_name"] = args.region
    return boto3.client("dynamodb", **kwargs)


def _recommend(args: argparse.Namespace) -> int:
    answer = Recommender(args.table, client=_client(args), pointer_ttl_s=0).recommend(args.user, n=args.n)
    titles = read_titles(args.titles) if args.titles else {}
    print(
        f"version {answer.version}  user {answer.user_id}  source {answer.source}  items {len(answer.items)}"
    )
    print(f"{'rank':>4}  {'item_id':<12} {'score':>12}  {'source':<10}" + ("  title" if titles else ""))
    for entry in answer.items:
        line = f"{entry.rank:>4}  {entry.item_id:<12} {entry.score:>12.6g}  {answer.source:<10}"
        if titles:
            line += f"  {titles.get(entry.item_id, '?')}"
        print(line)
    return 0


def _pointer(args: argparse.Namespace) -> int:
    client = _client(args)
    current = read_pointer(client, args.table)
    if current is None:
        print(f"{args.table}: no pointer (no version was ever switched live)")
        return 0
    print(
        f"live {current.version} (ds {current.ds}, {current.lists} lists) since {current.at}: "
        f"{current.action} by {current.by} ({current.reason}), seq {current.seq}"
    )
    for move in history(client, args.table, args.history):
        print(
            f"  #{move.seq:<4} {move.at}  {move.action:<8} {move.previous or '-'} -> {move.version}  "
            f"by {move.by}: {move.reason}"
        )
    return 0


def _rollback(args: argparse.Namespace) -> int:
    result = rollback(
        _client(args), args.table, args.version, by=args.by, reason=args.reason, now_epoch=int(time.time())
    )
    print(result.reason)
    return 0 if result.moved else 2


def _ensure(args: argparse.Namespace) -> int:
    result = ensure_table(
        _client(args),
        args.table,
        billing_mode=args.billing_mode,
        read_capacity=args.read_capacity,
        write_capacity=args.write_capacity,
    )
    print(json.dumps(result, sort_keys=True))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m serving.cli", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--table", required=True, help="serving table name")
        sub.add_argument("--endpoint-url", default=None, help="DynamoDB endpoint (default: AWS's)")
        sub.add_argument("--region", default=None, help="AWS region (default: the configured one)")
        return sub

    recommend = command("recommend", "print one user's list from the live version")
    recommend.add_argument("--user", required=True, help="user id")
    recommend.add_argument("--n", type=int, default=10, help="items to print (default 10)")
    recommend.add_argument("--titles", default=None, help="item titles file (JSON lines or id|title)")
    recommend.set_defaults(run=_recommend)

    pointer = command("pointer", "print the live version and the last pointer moves")
    pointer.add_argument("--history", type=int, default=10, help="moves to list (1..100, default 10)")
    pointer.set_defaults(run=_pointer)

    back = command("rollback", "point back at an earlier, loaded version (records who and why)")
    back.add_argument("--version", required=True, help="the version to serve again")
    back.add_argument("--reason", required=True, help="why")
    back.add_argument("--by", default=getpass.getuser(), help="who (default: the OS user)")
    back.set_defaults(run=_rollback)

    ensure = command("ensure-table", "create the table if missing, wait until active, enable TTL")
    ensure.add_argument(
        "--billing-mode", default="PAY_PER_REQUEST", choices=("PAY_PER_REQUEST", "PROVISIONED")
    )
    ensure.add_argument("--read-capacity", type=int, default=None, help="PROVISIONED only")
    ensure.add_argument("--write-capacity", type=int, default=None, help="PROVISIONED only")
    ensure.set_defaults(run=_ensure)
    return top


def main(argv: Optional[Sequence[str]] = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (NoLiveVersion, ServingUnavailable, NotLoaded, PointerConflict, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:  # credentials, permissions, endpoint: AWS's own words
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
