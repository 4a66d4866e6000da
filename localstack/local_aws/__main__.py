"""``python -m local_aws up|down|status|setup|connection``: the local AWS stack from the command line.

``up`` sets up what is missing (LocalStack's venv, the S3A jars), then starts LocalStack, the local
DynamoDB endpoint and the local EMR endpoint, each with a readiness wait; starting twice is harmless.
``down`` stops them all (and any step process the EMR endpoint left behind); stopping when nothing
runs is harmless. Exit status 0 on success, 1 on a start failure (message on stderr), and for
``status`` 3 if anything is not running and ready.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from local_aws import connection, dynamodb_server, emr_server, localstack_server, setup_env
from local_aws.service import ManagedService, StartError
from local_aws.settings import Settings, load_settings

SERVICES = ("localstack", "dynamodb", "emr")


def _services(settings: Settings, only: Optional[str]) -> List[ManagedService]:
    """In start order: the EMR endpoint's steps write to LocalStack S3 and to DynamoDB, so it comes last."""
    chosen = []
    if only in (None, "localstack"):
        chosen.append(localstack_server.service(settings))
    if only in (None, "dynamodb"):
        chosen.append(dynamodb_server.service(settings))
    if only in (None, "emr"):
        chosen.append(emr_server.service(settings))
    return chosen


def _up(settings: Settings, only: Optional[str]) -> int:
    if only in (None, "localstack") and setup_env.ensure_localstack_venv(settings):
        print("local_aws: installed .venv-localstack", flush=True)
    if only in (None, "emr") and setup_env.ensure_jars(settings):
        print(f"local_aws: fetched the S3A jars into {settings.jars_dir}", flush=True)
    try:
        for service in _services(settings, only):
            print(service.start(), flush=True)
    except StartError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    return 0


def _down(settings: Settings, only: Optional[str]) -> int:
    # Reverse start order: the EMR endpoint first, so no step is left writing to a vanished LocalStack.
    for service in reversed(_services(settings, only)):
        print(service.stop(), flush=True)
    return 0


def _status(settings: Settings, only: Optional[str], as_json: bool) -> int:
    states = [service.status() for service in _services(settings, only)]
    if as_json:
        print(json.dumps(states, indent=2))
    else:
        for state in states:
            flag = "ready" if state["ready"] else ("running, NOT ready" if state["running"] else "stopped")
            detail = f" PID {state['pid']}, RSS {state['rss_mib']} MiB" if state["running"] else ""
            print(f"{state['service']:<14} {flag:<18} {state['address']:<16}{detail}  log: {state['log']}")
    return 0 if all(state["ready"] for state in states) else 3


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="local_aws", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("up", "set up, start and wait until ready"),
        ("down", "stop (SIGTERM, SIGKILL fallback)"),
        ("status", "running / ready / PID / RSS"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("--only", choices=SERVICES, help="act on one server only")
        if name == "status":
            command.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("setup", help="install .venv-localstack and fetch the S3A jars (idempotent)")
    sub.add_parser("setup-venv", help="install .venv-localstack only (idempotent)")
    sub.add_parser("setup-jars", help="fetch the S3A jars only (idempotent)")
    conn = sub.add_parser("connection", help="print the Airflow connection (aws_local) as JSON")
    conn.add_argument("--env", action="store_true", help="print as AIRFLOW_CONN_AWS_LOCAL=<json>")
    args = parser.parse_args(argv)

    settings = load_settings()
    if args.command == "up":
        return _up(settings, args.only)
    if args.command == "down":
        return _down(settings, args.only)
    if args.command == "status":
        return _status(settings, args.only, args.json)
    if args.command in ("setup", "setup-venv"):
        setup_env.ensure_localstack_venv(settings)
    if args.command in ("setup", "setup-jars"):
        setup_env.ensure_jars(settings)
    if args.command.startswith("setup"):
        return 0
    if args.command == "connection":
        print(connection.env_line(settings) if args.env else connection.as_json(settings))
        return 0
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
