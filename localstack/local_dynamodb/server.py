"""``python -m local_dynamodb.server --port 4581``: moto's DynamoDB API over HTTP, with the serving table.

Serves only DynamoDB (moto's DynamoDB Flask app), on 127.0.0.1 unless told otherwise, behind the same
origin guard as the local EMR endpoint, plus ``GET /_local_dynamodb/health`` (JSON: status, pid, tables).
At start it creates the serving table that localstack/resources.json names, with the definition the
pipeline uses (serving/table.py), and reports ``ok`` only once the table exists. State is in memory.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any, List, Optional

# moto reads these when first imported: the fixed local account, and no CORS headers in answers.
os.environ.setdefault("MOTO_ACCOUNT_ID", "000000000000")
os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"

from flask import jsonify
from local_emr import origin_guard
from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]
LOG = logging.getLogger("local_dynamodb.server")


class QuietHandler(MotoRequestHandler):
    """No log line per request, only for errors (a load writes thousands of batches)."""

    def log_request(self, code: object = "-", size: object = "-") -> None:
        if str(code).startswith(("4", "5")):
            super().log_request(code, size)


def create_serving_table(endpoint: str, resources: dict) -> str:
    """Create (idempotently) the serving table of ``resources`` through the endpoint's own API."""
    import boto3

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # the project's serving package: the definition a deployment uses
    from serving.table import ensure_table

    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=resources["region"],
        aws_access_key_id=resources["aws_access_key_id"],
        aws_secret_access_key=resources["aws_secret_access_key"],
    )
    serving = resources["serving"]
    ensure_table(client, serving["table_name"], billing_mode=serving["billing_mode"])
    return serving["table_name"]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="local_dynamodb.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_DYNAMODB_PORT", "4581")))
    parser.add_argument("--resources", default=str(ROOT / "localstack" / "resources.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    resources = json.loads(Path(args.resources).read_text(encoding="utf-8"))
    app = create_backend_app("dynamodb")
    app.debug = False
    state: dict = {"tables": [], "error": None}

    origin_guard.install(app, LOG)  # first: nothing of moto's runs for a refused request

    @app.route("/_local_dynamodb/health", methods=["GET"])
    def health() -> Any:
        status = "error" if state["error"] else ("ok" if state["tables"] else "starting")
        return jsonify(status=status, pid=os.getpid(), tables=state["tables"], error=state["error"])

    server = make_server(args.host, args.port, app, threaded=True, request_handler=QuietHandler)

    def init() -> None:
        try:
            state["tables"] = [create_serving_table(f"http://{args.host}:{args.port}", resources)]
            LOG.info("serving table %s ready", state["tables"][0])
        except Exception as error:  # reported by the health endpoint: the stack is up but not usable
            LOG.exception("could not create the serving table")
            state["error"] = f"{type(error).__name__}: {error}"

    def stop(signum: int, _frame: Optional[FrameType]) -> None:
        LOG.info("signal %s: stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=init, daemon=True).start()  # the server answers its own requests meanwhile
    LOG.info("local DynamoDB endpoint on http://%s:%s", args.host, args.port)
    server.serve_forever()
    LOG.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
