"""Where each benchmark leaves its numbers: one JSON document per benchmark and mode.

``var/bench/results/<mode>/<benchmark>.json`` (mode ``full`` or ``quick``) holds the benchmark's
measurements, its arguments, the machine facts and its start and end times; ``report.py`` builds the
page from the documents of one mode. ``make bench`` clears the mode's folder first, so a page never mixes
numbers from different runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any, Dict, Optional

from benchmarks.env import WORK, load_avg, machine_info


def mode_name(quick: bool) -> str:
    return "quick" if quick else "full"


def results_dir(quick: bool, root: Path = WORK) -> Path:
    return root / "results" / mode_name(quick)


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--seed``, ``--quick`` and ``--results`` for every benchmark script."""
    parser.add_argument("--seed", type=int, default=42, help="seed of every random choice")
    parser.add_argument("--quick", action="store_true", help="small sizes (the make bench-quick variant)")
    parser.add_argument(
        "--results", type=Path, default=None, help="results folder (default var/bench/results/<mode>)"
    )


class Recorder:
    """Collects one benchmark's results and writes them as JSON (with machine facts and times)."""

    def __init__(self, name: str, args: argparse.Namespace):
        self.name = name
        self.folder: Path = args.results or results_dir(args.quick)
        self.doc: Dict[str, Any] = {
            "benchmark": name,
            "mode": mode_name(args.quick),
            "seed": args.seed,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "started_utc": now_utc(),
            "load_avg_start": load_avg(),
            "machine": machine_info(),
        }

    def __setitem__(self, key: str, value: Any) -> None:
        self.doc[key] = value

    def save(self) -> Path:
        self.doc["finished_utc"] = now_utc()
        self.doc["load_avg_end"] = load_avg()
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.name}.json"
        path.write_text(json.dumps(self.doc, indent=2, sort_keys=True, default=str) + "\n")
        print(f"{self.name}: results in {path}", flush=True)
        return path


def load(folder: Path, name: str) -> Optional[Dict[str, Any]]:
    """The JSON document of benchmark ``name`` in ``folder``, or None if it did not run."""
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None
