"""Headless screenshot of the Airflow UI's graph view of one DAG run (the README's picture).

    python -m tools.local.ui_screenshot --run-id RUN_ID [--out docs/airflow-graph.png] [--url http://127.0.0.1:8080]

Needs a running ``make airflow`` and a Chromium or Chrome binary, which is not a project dependency: the
``CHROME`` environment variable, else ``chromium``/``chromium-browser``/``google-chrome`` on PATH. The
browser runs headless with a throw-away profile and its DevTools port on 127.0.0.1, and is stopped by its
PID. The UI remembers its default DAG view in localStorage, so the tool sets that to "graph" first.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

ROOT = Path(__file__).resolve().parents[2]
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


class DevTools:
    """Minimal Chrome DevTools Protocol client: one page, request/response by id, events ignored."""

    def __init__(self, websocket: Any) -> None:
        self._ws = websocket
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> Dict[str, Any]:
        message_id = next(self._ids)
        self._ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._ws.recv(timeout=60))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")


def find_browser() -> str:
    for candidate in (os.environ.get("CHROME"), *BROWSERS):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    raise SystemExit(f"no Chromium/Chrome found: set CHROME or install one of {', '.join(BROWSERS)}")


def devtools_port(profile: Path, timeout_s: float = 30.0) -> int:
    """The port Chrome chose for --remote-debugging-port=0 (first line of DevToolsActivePort)."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if marker.exists() and marker.read_text().strip():
            return int(marker.read_text().splitlines()[0])
        time.sleep(0.2)
    raise TimeoutError(f"the browser wrote no {marker.name} within {timeout_s:.0f} s")


def wait_for(page: DevTools, expression: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if page.evaluate(expression):
            return True
        time.sleep(0.5)
    return False


def screenshot(base_url: str, dag_id: str, run_id: str, out: Path, width: int, height: int) -> Path:
    """Write a PNG of the run's graph view (``width`` x ``height`` CSS pixels); returns ``out``."""
    from websockets.sync.client import connect

    profile = Path(tempfile.mkdtemp(prefix="ui-screenshot-"))
    browser = subprocess.Popen(
        [
            find_browser(),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-sync",
            "--disable-background-networking",
            "--disable-component-update",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port = devtools_port(profile)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            targets = json.load(response)
        page_url = next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"]
        with connect(page_url, max_size=64 * 2**20) as websocket:
            page = DevTools(websocket)
            page.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            page.call("Page.navigate", url=f"{base_url}/")
            wait_for(page, "document.readyState === 'complete'", 30)
            page.evaluate("localStorage.setItem('default_dag_view', JSON.stringify('graph'))")
            run_url = f"{base_url}/dags/{dag_id}/runs/{urllib.parse.quote(run_id, safe='')}"
            page.call("Page.navigate", url=run_url)
            # Graph nodes carry the task ids; the last task rendering means the layout is done.
            if not wait_for(page, "document.body.innerText.includes('announce')", 60):
                raise TimeoutError(f"the graph view of {run_url} did not render within 60 s")
            # Give the graph the whole width: fold the run's details panel, then re-fit the graph to it.
            page.evaluate("document.querySelector('[aria-label=\"Collapse Details Panel\"]')?.click()")
            time.sleep(1)
            page.evaluate("document.querySelector('.react-flow__controls-fitview')?.click()")
            time.sleep(3)  # let the layout animation settle
            png = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
        shutil.rmtree(profile, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(png)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-id", required=True, help="DAG run id, e.g. manual__2026-11-21T21:12:23+00:00")
    parser.add_argument("--dag-id", default="recsys_training")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="Airflow UI base URL")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "airflow-graph.png")
    parser.add_argument("--width", type=int, default=1600, help="viewport width, CSS pixels")
    parser.add_argument("--height", type=int, default=640, help="viewport height, CSS pixels")
    args = parser.parse_args(argv)
    out = screenshot(args.url.rstrip("/"), args.dag_id, args.run_id, args.out, args.width, args.height)
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
