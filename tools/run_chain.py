"""Run the four jobs in sequence with spark-submit, as a person would by hand, and report.

    python -m tools.run_chain --raw data/movielens/raw --work var/run --run-date 1998-04-22

Each job is one ``spark-submit spark_jobs/<job>.py ...`` subprocess (the exact commands are printed),
timed from the outside. The raw input is parsed in one pass into the run date's partition (a backfill of
the whole history), features use that partition, each engine in ``--engines`` trains and is evaluated.
Ends with a metrics table (model vs popularity), per-job wall times and where the outputs are.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from spark_jobs.common.published import local_pointer

ROOT = Path(__file__).resolve().parent.parent
METRIC_NAMES = ("precision", "recall", "ndcg", "map")


@dataclass
class ChainResult:
    """Where a chain run wrote things, and how long each step took (seconds, wall clock)."""

    work: Path
    run_date: str
    timings: Dict[str, float] = field(default_factory=dict)
    spans: Dict[str, Tuple[int, int]] = field(default_factory=dict)  # step -> (start, end) epoch ms
    metrics: Dict[str, dict] = field(default_factory=dict)  # engine label -> metrics.json
    parsed_days: List[str] = field(default_factory=list)  # dt=... partitions written by parse_logs

    def path(self, *parts: str) -> Path:
        return self.work.joinpath(*parts)


class StepFailed(RuntimeError):
    """A spark-submit exited non-zero."""

    def __init__(self, step: str, returncode: int, log_path: Path):
        super().__init__(f"step {step} failed with exit code {returncode}; its log: {log_path}")
        self.step, self.returncode, self.log_path = step, returncode, log_path


def event_log_conf(folder: Path) -> List[str]:
    """spark-submit options that write Spark's event log for the application into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        "--conf", "spark.eventLog.enabled=true",
        "--conf", f"spark.eventLog.dir={folder.resolve().as_uri()}",
    ]  # fmt: skip


def spark_submit(
    job: str,
    args: Sequence[str],
    log_dir: Path,
    label: Optional[str] = None,
    event_logs: Optional[Path] = None,
    spans: Optional[Dict[str, Tuple[int, int]]] = None,
) -> float:
    """spark-submit one job; stream its stderr to ``<log_dir>/<label>.log``; return wall seconds.

    ``event_logs``: write Spark's event log into ``<event_logs>/<label>/``. ``spans``: record the
    process's (start, end) in epoch milliseconds under ``label``.
    """
    label = label or job
    options = event_log_conf(event_logs / label) if event_logs is not None else []
    command = ["spark-submit", *options, str(ROOT / "spark_jobs" / f"{job}.py"), *args]
    print("$ " + " ".join(shlex.quote(part) for part in command), flush=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{label}.log"
    started, started_ms = time.perf_counter(), time.time_ns() // 1_000_000
    with open(log_path, "w") as log:
        proc = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, check=False)
    seconds = time.perf_counter() - started
    if spans is not None:
        spans[label] = (started_ms, time.time_ns() // 1_000_000)
    for line in log_path.read_text(errors="replace").splitlines():
        if " recsys." in line:  # the jobs' own stage lines, not Spark's chatter
            print("    " + line.split(" ", 2)[-1], flush=True)
    if proc.returncode != 0:
        raise StepFailed(label, proc.returncode, log_path)
    return seconds


def run_chain(
    raw: Path,
    work: Path,
    run_date: str,
    engines: Sequence[str] = ("implicit",),
    features_args: Sequence[str] = (),
    train_args: Sequence[str] = (),
    max_reject_ratio: float = 0.1,
    k: int = 10,
    per_day: bool = False,
    event_logs: Optional[Path] = None,
) -> ChainResult:
    """Run parse_logs -> build_features -> (train_cf -> evaluate) per engine under ``work``.

    ``per_day``: parse each ``raw/dt=*`` folder into its own partition (as the nightly DAG does) and
    build features over all of them; otherwise parse all of ``raw`` at once into the run date's partition.
    ``event_logs``: keep each step's Spark event log in ``<event_logs>/<step>/``.
    """
    result = ChainResult(work=work, run_date=run_date)
    logs = work / "logs"

    def submit(job: str, args: Sequence[str], label: Optional[str] = None) -> float:
        return spark_submit(job, args, logs, label, event_logs, result.spans)

    partition = f"dt={run_date}"
    days = sorted(p.name for p in raw.glob("dt=*")) if per_day else [partition]
    for day in days:
        result.timings[f"parse_logs[{day}]" if per_day else "parse_logs"] = submit(
            "parse_logs",
            [
                "--input", str(raw / day if per_day else raw),
                "--output", str(work / "parsed" / day),
                "--rejects", str(work / "rejects" / day),
                "--max-reject-ratio", str(max_reject_ratio),
            ],
            f"parse_logs-{day}",
        )  # fmt: skip
    result.parsed_days = days
    result.timings["build_features"] = submit(
        "build_features",
        [
            "--events", str(work / "parsed"),
            "--run-date", run_date,
            "--output", str(work / "features" / partition),
            "--lookback-days", str(len(days)),
            *features_args,
        ],
    )  # fmt: skip
    for engine in engines:
        name, _, algorithm = engine.partition(":")
        label = engine.replace(":", "-")
        model_dir = work / "models" / label / partition
        engine_args = ["--engine", name] + (["--algorithm", algorithm] if algorithm else [])
        result.timings[f"train_cf[{label}]"] = submit(
            "train_cf",
            [
                "--features", str(work / "features" / partition),
                "--output", str(model_dir),
                "--k", str(k),
                *engine_args,
                *train_args,
            ],
            f"train_cf-{label}",
        )  # fmt: skip
        eval_dir = work / "evaluation" / label / partition
        result.timings[f"evaluate[{label}]"] = submit(
            "evaluate",
            [
                "--features", str(work / "features" / partition),
                "--recommendations", str(model_dir / "evaluation" / "recommendations"),
                "--output", str(eval_dir),
                "--k", str(k),
            ],
            f"evaluate-{label}",
        )  # fmt: skip
        result.metrics[label] = json.loads((eval_dir / "metrics.json").read_text())
    return result


def metrics_table(metrics: Dict[str, dict]) -> str:
    """A fixed-width table: one row per engine and one for popularity (same split, so shown once)."""
    first = next(iter(metrics.values()))
    k = first["k"]
    columns = [f"{name}@{k}" for name in METRIC_NAMES] + ["coverage"]
    rows = [(label, m["model"]) for label, m in metrics.items()] + [("popularity", first["popularity"])]
    width = max(len(label) for label, _ in rows) + 2
    lines = ["model".ljust(width) + "".join(c.rjust(14) for c in columns)]
    lines.append("-" * len(lines[0]))
    for label, values in rows:
        lines.append(label.ljust(width) + "".join(f"{values[c]:14.4f}" for c in columns))
    lines.append(f"users evaluated: {first['users_evaluated']}")
    return "\n".join(lines)


def report(result: ChainResult) -> str:
    """The closing summary of a chain run."""
    parsed = result.path("parsed")
    stats = [local_pointer(result.path("parsed", day))["stats"] for day in result.parsed_days]
    lines_total = sum(s["lines"] for s in stats)
    accepted, rejected = sum(s["accepted"] for s in stats), sum(s["rejected"] for s in stats)
    features = json.loads(result.path("features", f"dt={result.run_date}", "manifest.json").read_text())
    lines = [
        "",
        f"== metrics on the held-out latest interactions (run date {result.run_date}) ==",
        metrics_table(result.metrics),
        "",
        "== wall time per job (seconds, including Spark start-up) ==",
    ]
    lines += [f"  {step:<28}{seconds:8.1f}" for step, seconds in result.timings.items()]
    lines += [f"  {'total':<28}{sum(result.timings.values()):8.1f}", "", "== data =="]
    lines.append(
        f"  parse_logs: {lines_total} lines = {accepted} accepted + {rejected} rejected "
        f"({len(stats)} partition(s))"
    )
    lines.append(
        f"  build_features: {features['users']} users x {features['items']} items, "
        f"{features['train_nnz']} train + {features['holdout_nnz']} holdout pairs"
    )
    lines += ["", "== outputs =="]
    partition = f"dt={result.run_date}"
    places = [("parsed events", parsed), ("rejects", result.path("rejects"))]
    places.append(("features", result.path("features", partition)))
    for label in result.metrics:
        places.append((f"model [{label}]", result.path("models", label, partition)))
        places.append((f"metrics [{label}]", result.path("evaluation", label, partition)))
    places.append(("job logs", result.path("logs")))
    width = max(len(name) for name, _ in places) + 2
    lines += [f"  {name.ljust(width)}{place}" for name, place in places]
    return "\n".join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw", type=Path, required=True, help="raw events folder (dt=... folders inside)")
    parser.add_argument(
        "--work", type=Path, required=True, help="output folder for this run (outputs overwritten)"
    )
    parser.add_argument("--run-date", required=True, help="YYYY-MM-DD partition to write")
    parser.add_argument(
        "--engines",
        default="implicit",
        help="comma-separated engines to train and evaluate: implicit, implicit:bpr, spark-als",
    )
    parser.add_argument("--features-args", default="", help="extra build_features arguments (one string)")
    parser.add_argument("--train-args", default="", help="extra train_cf arguments (one string)")
    parser.add_argument("--max-reject-ratio", type=float, default=0.1)
    parser.add_argument("--per-day", action="store_true", help="parse each raw dt= folder separately")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--event-logs", type=Path, default=None, help="keep each step's Spark event log under this folder"
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if not args.raw.is_dir():
        print(f"ERROR: no raw data at {args.raw}", file=sys.stderr)
        return 2
    engines: List[str] = [e.strip() for e in args.engines.split(",") if e.strip()]
    try:
        result = run_chain(
            args.raw,
            args.work,
            args.run_date,
            engines,
            shlex.split(args.features_args),
            shlex.split(args.train_args),
            args.max_reject_ratio,
            args.k,
            args.per_day,
            args.event_logs,
        )
    except StepFailed as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        tail = exc.log_path.read_text(errors="replace").splitlines()[-15:]
        print("\n".join("    " + line for line in tail), file=sys.stderr)
        return 1
    print(report(result))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.exit(main())
