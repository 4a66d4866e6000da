"""The tuning DAG, end to end, on the local AWS stack: what ``make tune`` does.

    python -m tools.local.tune [--run-date 1998-04-22] [--keep-stack] [--config JSON]

1. start the local stack unless it is up; load MovieLens-100K as the run date's raw day and deploy the
   jobs (as ``make run`` does);
2. if the day's parsed events are not published yet (a fresh stack), run ``recsys_training`` for that
   date first: the sweep reads what the nightly published, as in production;
3. ``airflow dags test recsys_tuning <date>`` for real: one cluster on the local EMR endpoint running
   ``tuning_parallelism`` configuration steps at once;
4. print the leaderboard (tuning/<run>/leaderboard.md), draw it to var/tuning/leaderboard.png, and name
   the new tuning/best.json. A following ``make run CONFIG='{"params_from_tuning": true}'`` trains the
   nightly with the winner (KEEP_STACK=1 keeps the stack's S3 between the two).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from tools.local.run import (
    AIRFLOW_HOME,
    ML_RAW,
    RESOURCES,
    ROOT,
    airflow_env,
    clients,
    load_and_deploy,
    local_config,
    read_json,
    task_rows,
)

TUNING_DAG = "recsys_tuning"
NIGHTLY_DAG = "recsys_training"
PLOT = ROOT / "var" / "tuning" / "leaderboard.png"


def dags_test(env: Dict[str, str], dag_id: str, run_date: str) -> int:
    """``airflow dags test`` of ``dag_id``; its output goes to var/tuning/<dag>-<date>.log (quiet)."""
    log = ROOT / "var" / "tuning" / f"{dag_id}-{run_date}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.run(
            [sys.executable, "-m", "airflow", "dags", "test", dag_id, run_date],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, check=False,
        ).returncode  # fmt: skip
    print(
        f"{dag_id} {run_date}: exit {code} in {time.perf_counter() - started:.0f} s (log: {log})", flush=True
    )
    return code


def failed_tasks(rows: List[dict]) -> List[str]:
    return [row["task_id"] for row in rows if row["state"] in ("failed", "upstream_failed")]


def latest_leaderboard(s3, bucket: str, run_date: str) -> Optional[dict]:
    """The newest sweep's leaderboard for ``run_date`` (run keys end in the run id, manual__<time>)."""
    prefix = f"tuning/dt={run_date}/"
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    boards = sorted(key for key in keys if key.endswith("/leaderboard.json"))
    return read_json(s3, bucket, boards[-1]) if boards else None


def plot(board: dict, path: Path) -> None:
    """Validation NDCG@k ± one standard error per configuration, best first; the winner highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = board["metric"]
    rows = [row for row in board["configurations"] if row["status"] == "ok"][::-1]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.5))
    colors = [
        "tab:green" if row["winner"] else ("tab:olive" if row["tied_with_best"] else "tab:blue")
        for row in rows
    ]
    ax.barh(
        [row["name"] for row in rows],
        [row["metrics"][metric] for row in rows],
        xerr=[row["standard_error"][metric] for row in rows],
        color=colors,
        capsize=3,
    )
    popularity = [row["popularity"].get(metric) for row in rows if row["popularity"].get(metric) is not None]
    if popularity:
        ax.axvline(popularity[0], color="grey", linestyle="--", label=f"popularity {metric}")
        ax.legend(loc="lower right")
    ax.set_xlabel(f"validation {metric} (± 1 standard error)")
    ax.set_title(
        f"tuning of {board['date']}: winner {board['winner']} (green)\ntied within one standard error: olive",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(run_date: str, keep_stack: bool, overrides: dict) -> int:
    local_aws = [sys.executable, "-m", "local_aws"]
    stack_env = {**os.environ, "PYTHONPATH": str(ROOT / "localstack")}
    subprocess.run([*local_aws, "up"], check=True, env=stack_env)
    try:
        s3, _ = clients()
        files, version = load_and_deploy(s3, run_date)
        print(f"loaded {files} raw files for dt={run_date}; deployed code {version}", flush=True)
        config = local_config(version, **overrides)
        env = airflow_env(config)
        AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "airflow", "db", "reset", "--yes"], env=env, check=True,
                       capture_output=True)  # fmt: skip
        lake = RESOURCES["buckets"]["data_lake"]
        marker = f"parsed/events/dt={run_date}/_PUBLISHED.json"
        if read_json(s3, lake, marker) is None:
            print(f"dt={run_date} is not published yet: running {NIGHTLY_DAG} first", flush=True)
            if dags_test(env, NIGHTLY_DAG, run_date) != 0 or failed_tasks(
                task_rows(env, run_date, NIGHTLY_DAG)
            ):
                print(f"ERROR: {NIGHTLY_DAG} failed; see its log", file=sys.stderr)
                return 1
        code = dags_test(env, TUNING_DAG, run_date)
        states = {row["task_id"]: row["state"] for row in task_rows(env, run_date, TUNING_DAG)}
        arts = RESOURCES["buckets"]["artifacts"]
        board = latest_leaderboard(s3, arts, run_date)
        if board is not None:
            md = s3.get_object(Bucket=arts, Key=f"tuning/{board['run']}/leaderboard.md")["Body"].read()
            print("\n" + md.decode())
            if board["winner"]:
                plot(board, PLOT)
                print(f"plot: {PLOT}")
        if code != 0 or states.get("publish_best") != "success":
            print(f"ERROR: {TUNING_DAG} failed (task states {states}); see its log", file=sys.stderr)
            return 1
        best = read_json(s3, arts, "tuning/best.json")
        print(f"best: s3://{arts}/tuning/best.json -> {best['configuration']} {json.dumps(best['values'])}")
        if board["failed"]:
            print(f"note: configurations that failed (marked in the leaderboard): {board['failed']}")
        return 0
    finally:
        if not keep_stack:
            subprocess.run([*local_aws, "down"], check=False, env=stack_env)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-date", default="1998-04-22", help="data date (MovieLens' last day)")
    parser.add_argument("--keep-stack", action="store_true", help="leave LocalStack and local EMR running")
    parser.add_argument(
        "--config", type=json.loads, default={}, help="JSON object of config overrides, e.g. a tuning_grid"
    )
    args = parser.parse_args(argv)
    if not (ML_RAW / "_manifest.json").exists():
        print(f"ERROR: no MovieLens raw data at {ML_RAW}: run make data-movielens", file=sys.stderr)
        return 2
    return run(args.run_date, args.keep_stack, args.config)


if __name__ == "__main__":
    sys.exit(main())
