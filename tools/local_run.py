"""The real DAG, end to end, on the local AWS stack: what ``make run`` does.

    python -m tools.local_run [--run-date 1998-04-22] [--keep-stack] [--user 196]

1. start the local stack (LocalStack + the local EMR endpoint) unless it is up;
2. load MovieLens-100K raw events into the local data lake as the run date's partition (the whole
   history as one backfill day), with its ``_SUCCESS`` marker;
3. package the jobs and deploy them to the artefact bucket (``code/<version>/``), as ``make deploy`` would;
4. ``airflow dags test recsys_training <date>`` for real (SQLite metadata DB in var/airflow), the DAG
   unchanged, configured through ``AIRFLOW_VAR_RECSYS_TRAINING_CONFIG`` and the ``aws_local`` connection;
5. print a summary: task states and durations, step durations, metrics table, where the model and the
   recommendations are, and the top-10 of a sample user with movie titles;
6. stop the stack (unless ``--keep-stack``); outputs stay in var/ and in the stack's S3 folder.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = json.loads((ROOT / "localstack" / "resources.json").read_text())
DAG_ID = "recsys_training"
ML_RAW = ROOT / "data" / "movielens" / "raw"
AIRFLOW_HOME = ROOT / "var" / "airflow"


def local_config(code_version: str, **overrides) -> Dict[str, object]:
    """The DAG config for the local stack: names from localstack/resources.json, quick polling."""
    config = {
        "aws_conn_id": "aws_local",
        "region_name": RESOURCES["region"],
        "data_bucket": RESOURCES["buckets"]["data_lake"],
        "artifact_bucket": RESOURCES["buckets"]["artifacts"],
        "alert_topic_arn": RESOURCES["alerts"]["topic_arn"],
        "code_version": code_version,
        "core_instance_type": "m5.xlarge",
        "data_poke_interval_seconds": 5,
        "step_poke_interval_seconds": 5,
        "retries": 0,
        # MovieLens is loaded as one backfill day of ratings: no decay, one-day window.
        "lookback_days": 1,
        "half_life_days": 0.0,
        "max_reject_ratio": 0.05,
        "start_date": "1998-01-01",  # MovieLens-100K's ratings are from 1997-98
    }
    config.update(overrides)
    return config


def airflow_env(config: Dict[str, object]) -> Dict[str, str]:
    """Environment for the airflow CLI: project DAGs, local metadata DB, local stack connection + config."""
    connection = subprocess.run(
        [sys.executable, "-m", "local_aws", "connection"],
        env={**os.environ, "PYTHONPATH": str(ROOT / "localstack")},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(AIRFLOW_HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_AWS_LOCAL": connection,
            "AIRFLOW_VAR_RECSYS_TRAINING_CONFIG": json.dumps(config),
            "AWS_ACCESS_KEY_ID": RESOURCES["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": RESOURCES["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": RESOURCES["region"],
        }
    )
    return env


def clients():
    """boto3 clients on the local stack: S3 on LocalStack, EMR on the local EMR endpoint."""
    import boto3

    session = boto3.Session(
        aws_access_key_id=RESOURCES["aws_access_key_id"],
        aws_secret_access_key=RESOURCES["aws_secret_access_key"],
        region_name=RESOURCES["region"],
    )
    s3 = session.client("s3", endpoint_url=RESOURCES["endpoints"]["localstack"])
    emr = session.client("emr", endpoint_url=RESOURCES["endpoints"]["emr"])
    return s3, emr


def load_raw_day(s3, raw_dir: Path, bucket: str, run_date: str, prefix: str = "raw/events") -> int:
    """Upload every ``dt=*/part-*`` file of ``raw_dir`` under ``<prefix>/dt=<run_date>/``, then _SUCCESS."""
    key_prefix = f"{prefix}/dt={run_date}/"
    old = s3.list_objects_v2(Bucket=bucket, Prefix=key_prefix).get("Contents", [])
    for obj in old:  # a rerun replaces the day, it does not add to it
        s3.delete_object(Bucket=bucket, Key=obj["Key"])
    files = sorted(raw_dir.glob("dt=*/part-*"))
    for path in files:
        s3.upload_file(str(path), bucket, f"{key_prefix}{path.parent.name}-{path.name}")
    s3.put_object(Bucket=bucket, Key=f"{key_prefix}_SUCCESS", Body=b"")
    return len(files)


def load_and_deploy(s3, run_date: str) -> tuple[int, str]:
    """Load MovieLens raw events as ``run_date``'s partition and deploy the packaged jobs (forced: a
    development stack takes the working tree's code). Returns (files loaded, code version)."""
    from tools.deploy_code import deploy
    from tools.package_jobs import build, project_version

    files = load_raw_day(s3, ML_RAW, RESOURCES["buckets"]["data_lake"], run_date)
    version = project_version()
    build(version, ROOT / "build" / "code")
    deploy(
        s3, RESOURCES["buckets"]["artifacts"], "code", version, ROOT / "build" / "code" / version, force=True
    )
    return files, version


def timed(label: str, timings: Dict[str, float], command: List[str], env=None) -> None:
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, env=env)
    timings[label] = time.perf_counter() - started


def run(run_date: str, keep_stack: bool, user: Optional[str]) -> int:
    timings: Dict[str, float] = {}
    local_aws = [sys.executable, "-m", "local_aws"]
    stack_env = {**os.environ, "PYTHONPATH": str(ROOT / "localstack")}
    timed("local stack up", timings, [*local_aws, "up"], env=stack_env)
    try:
        s3, emr = clients()
        started = time.perf_counter()
        files, version = load_and_deploy(s3, run_date)
        timings["load data + deploy code"] = time.perf_counter() - started
        print(f"loaded {files} raw files for dt={run_date}; deployed code {version}", flush=True)

        env = airflow_env(local_config(version))
        AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
        # A fresh metadata DB each time: runs of earlier DAG versions (e.g. an asset since renamed) must not
        # decide this run, and the DAG processor's clean-up of orphans does not run under `dags test`.
        timed("airflow db reset", timings, [sys.executable, "-m", "airflow", "db", "reset", "--yes"], env=env)
        started = time.perf_counter()
        test = subprocess.run(
            [sys.executable, "-m", "airflow", "dags", "test", DAG_ID, run_date],
            cwd=ROOT,
            env=env,
            check=False,
        )
        timings["airflow dags test"] = time.perf_counter() - started
        rows = task_rows(env, run_date)
        print(summary(env, s3, emr, run_date, user, timings, rows))
        return verdict(test.returncode, rows)
    finally:
        if not keep_stack:
            subprocess.run([*local_aws, "down"], check=False, env=stack_env)


def airflow_json(env: Dict[str, str], *args: str):
    """Run an ``airflow ... -o json`` command; its JSON is the last line (log lines may come first)."""
    out = subprocess.run(
        [sys.executable, "-m", "airflow", *args, "-o", "json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = [line for line in out.splitlines() if line.startswith(("[", "{"))]
    return json.loads(lines[-1]) if lines else []


def task_rows(env: Dict[str, str], run_date: str) -> List[dict]:
    """Task instances of the latest run for ``run_date`` from the metadata DB (via the airflow CLI)."""
    runs = [
        r
        for r in airflow_json(env, "dags", "list-runs", DAG_ID)
        if str(r.get("logical_date", "")).startswith(run_date)
    ]
    if not runs:
        return []
    # `airflow dags test` sets a run's start_date to its logical date, so only the run id
    # (manual__<creation time>) tells which run of that date is the newest.
    run_id = max(str(r["run_id"]) for r in runs)
    return airflow_json(env, "tasks", "states-for-dag-run", DAG_ID, run_id)


def _seconds(start: Optional[str], end: Optional[str]) -> Optional[float]:
    import datetime as dt

    if not start or not end or start == "None" or end == "None":
        return None
    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()


def verdict(returncode: int, rows: List[dict]) -> int:
    """Exit status of make run: the DAG run must have run its tasks, and none may have failed."""
    if not rows:
        print("ERROR: the DAG run executed no task (is the logical date before start_date?)", file=sys.stderr)
        return 1
    failed = [row["task_id"] for row in rows if row["state"] in ("failed", "upstream_failed")]
    if returncode != 0 or failed:
        print(
            f"ERROR: the DAG run failed (tasks {failed}); see the summary above and var/airflow",
            file=sys.stderr,
        )
        return 1
    return 0


def summary(
    env, s3, emr, run_date: str, user: Optional[str], timings: Dict[str, float], rows: List[dict]
) -> str:
    """The closing report of ``make run``."""
    from tools.run_chain import metrics_table

    lines = ["", f"== {DAG_ID} for {run_date} on the local stack =="]
    lines.append("-- tasks (state, seconds) --")
    for row in rows:
        seconds = _seconds(row.get("start_date"), row.get("end_date"))
        shown = f"{seconds:8.1f}" if seconds is not None else "       -"
        lines.append(f"  {row['task_id']:<24}{row['state'] or '-':<18}{shown}")
    lines.append("-- EMR steps (state, seconds) --")
    clusters = emr.list_clusters()["Clusters"]
    if clusters:
        cluster = sorted(clusters, key=lambda c: c["Status"]["Timeline"]["CreationDateTime"])[-1]
        lines.append(f"  cluster {cluster['Id']} {cluster['Status']['State']}")
        for step in reversed(emr.list_steps(ClusterId=cluster["Id"])["Steps"]):
            timeline = step["Status"].get("Timeline", {})
            start, end = timeline.get("StartDateTime"), timeline.get("EndDateTime")
            seconds = f"{(end - start).total_seconds():8.1f}" if start and end else "       -"
            lines.append(f"  {step['Name']:<24}{step['Status']['State']:<18}{seconds}")
    arts = RESOURCES["buckets"]["artifacts"]
    metrics_key = f"runs/dt={run_date}/evaluation/metrics.json"
    try:
        metrics = json.loads(s3.get_object(Bucket=arts, Key=metrics_key)["Body"].read())
        lines += ["-- metrics (held-out latest interactions) --", metrics_table({"implicit ALS": metrics})]
    except s3.exceptions.NoSuchKey:
        lines.append(f"-- no metrics at s3://{arts}/{metrics_key} --")
    try:
        latest = json.loads(s3.get_object(Bucket=arts, Key="registry/latest.json")["Body"].read())
        lines.append(f"-- model: s3://{arts}/registry/latest.json -> {latest['model_uri']}")
    except s3.exceptions.NoSuchKey:
        lines.append("-- model: not promoted (see gate.json) --")
    recs_prefix = f"runs/dt={run_date}/model/recommendations/"
    lines.append(f"-- recommendations: s3://{arts}/{recs_prefix}")
    lines += top_10(s3, arts, recs_prefix, user)
    lines.append("-- wall time (seconds) --")
    lines += [f"  {name:<28}{seconds:8.1f}" for name, seconds in timings.items()]
    return "\n".join(lines)


def top_10(s3, bucket: str, prefix: str, user: Optional[str]) -> List[str]:
    """The sample user's top-10 with movie titles (titles from the MovieLens catalogue file)."""
    import pyarrow.parquet as pq

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    tables = [
        pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read()))
        for k in keys
        if k.endswith(".parquet")
    ]
    if not tables:
        return ["  (no recommendations written)"]
    import pyarrow as pa

    recs = pa.concat_tables(tables).to_pandas()
    user = user or sorted(recs["user_id"].unique(), key=lambda u: (len(u), u))[0]
    titles = {}
    items_file = ML_RAW / "_items.jsonl"
    if items_file.exists():
        for line in items_file.read_text().splitlines():
            item = json.loads(line)
            titles[str(item["item_id"])] = item.get("title", "")
    mine = recs[recs["user_id"] == user].sort_values("rank")
    out = [f"-- top-10 for user {user} --"]
    for _, row in mine.iterrows():
        title = titles.get(row["item_id"], "?")
        out.append(f"  {int(row['rank']):>2}. {title} (item {row['item_id']}, score {row['score']:.3f})")
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-date", default="1998-04-22", help="logical date (MovieLens' last day)")
    parser.add_argument("--keep-stack", action="store_true", help="leave LocalStack and local EMR running")
    parser.add_argument("--user", default=None, help="sample user for the top-10 (default: the first id)")
    args = parser.parse_args(argv)
    if not (ML_RAW / "_manifest.json").exists():
        print(f"ERROR: no MovieLens raw data at {ML_RAW}: run make data-movielens", file=sys.stderr)
        return 2
    return run(args.run_date, args.keep_stack, args.user)


if __name__ == "__main__":
    sys.exit(main())
