"""``python -m local_emr.server --port 4580``: moto's EMR API over HTTP with the step runner inside.

Serves only EMR (moto's EMR Flask app, not moto's all-services dispatcher), on 127.0.0.1 unless told
otherwise, plus ``GET /_local_emr/health`` (JSON: status, pid, clusters, running steps with their PIDs
and YARN application ids, the container-log delay in seconds and how many container logs are pending).
SIGTERM or SIGINT: running steps' process groups are killed, pending container logs are delivered
(at most ~15 s), then the server exits (status 0).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any, List, Optional

# moto reads these when first imported, so before any moto import: the fixed local account, and no
# CORS (moto's app would answer every origin with Access-Control-Allow-Origin; see origin_guard).
os.environ.setdefault("MOTO_ACCOUNT_ID", "000000000000")
os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"

from flask import jsonify
from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from local_emr import moto_hooks, origin_guard
from local_emr.config import load_config
from local_emr.runner import StepRunner

LOG = logging.getLogger("local_emr.server")


class QuietHandler(MotoRequestHandler):
    """Moto's request handler without a log line per request (the DAG's sensors poll every few seconds)."""

    def log_request(self, code: object = "-", size: object = "-") -> None:
        if str(code).startswith(("4", "5")):
            super().log_request(code, size)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="local_emr.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_EMR_PORT", "4580")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    started = time.monotonic()
    config = load_config()
    missing = [str(path) for path in config.jars if not path.is_file()]
    if missing:
        LOG.warning("S3A jars missing (spark-submit steps will fail to reach s3://): %s", ", ".join(missing))
    runner = StepRunner(config)
    moto_hooks.install(runner)
    app = create_backend_app("emr")
    app.debug = False  # moto sets it; tracebacks in answers are not for this endpoint's callers

    origin_guard.install(app, LOG)  # first: nothing of moto's runs for a refused request

    @app.route("/_local_emr/health", methods=["GET"])
    def health() -> Any:
        return jsonify(
            status="ok",
            pid=os.getpid(),
            clusters=runner.cluster_count(),
            running_steps=runner.running_steps(),
            container_log_delay_s=config.container_log_delay_s,
            pending_container_logs=runner.pending_container_logs(),
        )

    server = make_server(args.host, args.port, app, threaded=True, request_handler=QuietHandler)
    runner.start()

    def stop(signum: int, _frame: Optional[FrameType]) -> None:
        LOG.info("signal %s: stopping running steps, then the server", signum)
        # shutdown() blocks until serve_forever returns: call it from another thread, not the handler.
        threading.Thread(target=lambda: (runner.shutdown(), server.shutdown()), daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    LOG.info(
        "local EMR endpoint on http://%s:%s (LocalStack S3 at %s), ready in %.1f s",
        args.host,
        args.port,
        config.localstack_url,
        time.monotonic() - started,
    )
    server.serve_forever()
    LOG.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
