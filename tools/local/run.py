"""The real DAG, end to end, on the local AWS stack: what ``make run`` does.

    python -m tools.local.run [--run-date 1998-04-22] [--keep-stack] [--user 196] [--config JSON]

1. start the local stack (LocalStack + the local EMR endpoint) unless it is up;
2. load MovieLens-100K raw events into the local data lake as the run date's partition (the whole
   history as one backfill day), with its ``_SUCCESS`` marker;
3. package the jobs and deploy them to the artefact bucket (``code/<version>/``), as ``make deploy`` would;
4. ``airflow dags test recsys_training <date>`` for real (SQLite metadata DB in var/airflow), the DAG
   unchanged, configured through ``AIRFLOW_VAR_RECSYS_TRAINING_CONFIG`` and the ``aws_local`` connection;
5. print a summary: task states and durations, step durations, metrics table (with the paired comparison
   against production), the gate's rules, the live version, the served lists (users by source, list
   lengths, items the user already had: must be 0) and the top-10 served to a sample user with titles,
   then one line naming the run history page (``make report``'s, var/report/index.html);
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

from tools.local.dag_progress import run_quietly

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = json.loads((ROOT / "localstack" / "resources.json").read_text())
DAG_ID = "recsys_training"
ML_RAW = ROOT / "data" / "movielens" / "raw"
AIRFLOW_HOME = ROOT / "var" / "airflow"
LOG_DIR = ROOT / "var" / "run"


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
        # The driver is this machine's JVM (client mode): the local-spark default memory, its cores.
        "train_driver_cores": 2,
        "train_driver_memory_gb": 4,
        "train_max_result_size_gb": 2,
        "start_date": "1998-01-01",  # MovieLens-100K's ratings are from 1997-98
        "serving_table": RESOURCES["serving"]["table_name"],  # created by the local DynamoDB endpoint
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
            # The DAG imports the `serving` package (the pointer switch) and the jobs' option defaults
            # (spark_jobs.common.job_defaults); a deployment puts serving/ and spark_jobs/ on Airflow's
            # path (README, "Deploying"), here the checkout is on the path instead.
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
        }
    )
    return env


def local_client(service: str):
    """A boto3 client of one of LocalStack's services, with the local stack's test credentials."""
    import boto3

    session = boto3.Session(
        aws_access_key_id=RESOURCES["aws_access_key_id"],
        aws_secret_access_key=RESOURCES["aws_secret_access_key"],
        region_name=RESOURCES["region"],
    )
    endpoints = RESOURCES["endpoints"]  # EMR and DynamoDB have local endpoints of their own
    endpoint = endpoints.get(service, endpoints["localstack"])
    return session.client(service, endpoint_url=endpoint)


def clients():
    """boto3 clients on the local stack: S3 on LocalStack, EMR on the local EMR endpoint."""
    return local_client("s3"), local_client("emr")


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
    from tools.release.deploy_code import deploy
    from tools.release.package_jobs import build, project_version

    files = load_raw_day(s3, ML_RAW, RESOURCES["buckets"]["data_lake"], run_date)
    version = project_version()
    build(version, ROOT / "build" / "code")
    deploy(
        s3, RESOURCES["buckets"]["artifacts"], "code", version, ROOT / "build" / "code" / version, force=True
    )
    return files, version


def timed(label: str, timings: Dict[str, float], command: List[str], env=None, quiet: bool = False) -> None:
    """Run ``command`` (its output hidden if ``quiet``, shown if it fails) and record its seconds."""
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=quiet, text=True)
    if proc.returncode:
        if quiet:
            print(proc.stdout + proc.stderr, file=sys.stderr)
        raise subprocess.CalledProcessError(proc.returncode, command)
    timings[label] = time.perf_counter() - started


def run(run_date: str, keep_stack: bool, user: Optional[str], overrides: Optional[dict] = None) -> int:
    timings: Dict[str, float] = {}
    local_aws = [sys.executable, "-m", "local_aws"]
    stack_env = {**os.environ, "PYTHONPATH": str(ROOT / "localstack")}
    timed("local stack up", timings, [*local_aws, "up"], env=stack_env, quiet=True)
    print(
        f"local stack up in {timings['local stack up']:.1f} s (make local-status for its servers)", flush=True
    )
    try:
        s3, emr = clients()
        started = time.perf_counter()
        files, version = load_and_deploy(s3, run_date)
        timings["load data + deploy code"] = time.perf_counter() - started
        print(f"loaded {files} raw files for dt={run_date}; deployed code {version}", flush=True)

        env = airflow_env(local_config(version, **(overrides or {})))
        AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
        # A fresh metadata DB each time: runs of earlier DAG versions (e.g. an asset since renamed) must not
        # decide this run, and the DAG processor's clean-up of orphans does not run under `dags test`.
        timed(
            "airflow db reset",
            timings,
            [sys.executable, "-m", "airflow", "db", "reset", "--yes"],
            env,
            quiet=True,
        )
        started = time.perf_counter()
        log_path = LOG_DIR / f"{DAG_ID}-{run_date}.log"
        print(f"{DAG_ID} {run_date}: airflow dags test (full log: {log_path})", flush=True)
        returncode, _ = run_quietly(
            [sys.executable, "-m", "airflow", "dags", "test", DAG_ID, run_date], env, ROOT, log_path
        )
        timings["airflow dags test"] = time.perf_counter() - started
        rows = task_rows(env, run_date)
        print(summary(env, s3, emr, run_date, user, timings, rows))
        from tools.ops.run_report import report_line  # one line: the page's path, or a warning; never raises

        print(report_line(s3, local_config(version, **(overrides or {}))), flush=True)
        code = verdict(returncode, rows)
        if code:
            print(failure_lines(s3, rows, log_path), file=sys.stderr)
        return code
    finally:
        if not keep_stack:
            stopped = subprocess.run(
                [*local_aws, "down"], check=False, env=stack_env, capture_output=True, text=True
            )
            print("local stack stopped" if stopped.returncode == 0 else stopped.stdout + stopped.stderr)


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


def task_rows(env: Dict[str, str], run_date: str, dag_id: str = DAG_ID) -> List[dict]:
    """Task instances of ``dag_id``'s latest run for ``run_date`` from the metadata DB (via the airflow
    CLI); mapped tasks give one row per mapped instance."""
    runs = [
        r
        for r in airflow_json(env, "dags", "list-runs", dag_id)
        if str(r.get("logical_date", "")).startswith(run_date)
    ]
    if not runs:
        return []
    # `airflow dags test` sets a run's start_date to its logical date, so only the run id
    # (manual__<creation time>) tells which run of that date is the newest.
    run_id = max(str(r["run_id"]) for r in runs)
    return airflow_json(env, "tasks", "states-for-dag-run", dag_id, run_id)


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
    from tools.local.run_chain import metrics_table

    lines = ["", f"== {DAG_ID} for {run_date} on the local stack =="]
    skipped = [row["task_id"] for row in rows if row["state"] == "skipped"]
    if skipped:  # the tasks that ran were printed as they ended
        lines.append(f"-- skipped: {', '.join(skipped)}")
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
    run_prefix = f"runs/dt={run_date}"
    metrics = read_json(s3, arts, f"{run_prefix}/evaluation/metrics.json")
    if metrics:
        lines += [
            "-- metrics (evaluation model, held-out latest interactions) --",
            metrics_table({"implicit ALS": metrics}),
        ]
        lines += production_lines(metrics)
    else:
        lines.append(f"-- no metrics at s3://{arts}/{run_prefix}/evaluation/metrics.json --")
    gate = read_json(s3, arts, f"{run_prefix}/gate.json")
    if gate:
        lines.append("-- quality gate --")
        lines += [f"  {reason}" for reason in gate["reasons"]]
    latest = read_json(s3, arts, "registry/latest.json")
    if latest:
        lines.append(f"-- live model: {latest['version']} (s3://{arts}/registry/latest.json)")
    else:
        lines.append("-- live model: none (see gate.json) --")
    lines.append(serving_line())
    served_uri = f"s3://{arts}/{run_prefix}/model/recommendations"
    if latest and latest.get("ds") == run_date and latest.get("recommendations"):
        served_uri = latest["recommendations"]  # what production serves now
    lines += served_lists(s3, served_uri, f"{run_prefix}/features/window/", arts, user)
    record = read_json(s3, arts, f"runs/dt={run_date}/run.json") or {}
    estimate = record.get("cost") or {}
    if estimate.get("usd") is not None:
        lines.append(
            f"-- cost: cluster {estimate['minutes']:.1f} min x {estimate['usd_per_hour']:.3f} USD/h = "
            f"estimated USD {estimate['usd']:.4f} ({estimate['estimate']}); metrics sent: "
            f"{(record.get('metrics_sent') or {}).get('count', 'none')}"
        )
    else:
        lines.append("-- cost: unknown (no run.json, or the cluster had not ended)")
    lines.append("-- wall time: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))
    return "\n".join(lines)


def serving_line() -> str:
    """What the local serving table's pointer names: the version applications are answered from."""
    from serving.pointer import read_pointer

    table = RESOURCES["serving"]["table_name"]
    live = read_pointer(local_client("dynamodb"), table)
    if live is None:
        return f"-- serving table {table}: no live version --"
    return (
        f"-- serving table {table}: live {live.version} ({live.lists} lists, {live.action} by {live.by}); "
        "make recommend USER=<id> reads it (KEEP_STACK=1) --"
    )


def failure_lines(s3, rows: List[dict], log_path: Path) -> str:
    """What failed, the alert it sent (from the local alert inbox), and where the full log is."""
    failed = [row["task_id"] for row in rows if row["state"] == "failed"]
    lines = [f"FAILED task(s): {', '.join(failed) or 'none recorded (see the log)'}"]
    lines += [f"alert: {text}" for text in alert_messages()]
    lines.append(f"full Airflow and step log: {log_path}")
    return "\n".join(lines)


def alert_messages(limit: int = 3) -> List[str]:
    """The failure alerts in the local stack's alert inbox (SQS), newest last; read, not deleted."""
    import boto3

    sqs = boto3.client(
        "sqs",
        endpoint_url=RESOURCES["endpoints"]["localstack"],
        region_name=RESOURCES["region"],
        aws_access_key_id=RESOURCES["aws_access_key_id"],
        aws_secret_access_key=RESOURCES["aws_secret_access_key"],
    )
    url = sqs.get_queue_url(QueueName=RESOURCES["alerts"]["inbox_queue_name"])["QueueUrl"]
    found = []
    for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
        "Messages", []
    ):
        text = json.loads(message["Body"]).get("Message", message["Body"])
        if text.startswith("dag: "):
            found.append(text)
    return found[-limit:]


def read_json(s3, bucket: str, key: str) -> Optional[dict]:
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def read_parquet(s3, bucket: str, prefix: str):
    """Every Parquet part under ``prefix`` as one pandas DataFrame (None when there is none)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    keys = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
        if obj["Key"].endswith(".parquet")
    ]
    if not keys:
        return None
    tables = [pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) for key in keys]
    return pa.concat_tables(tables).to_pandas()


def production_lines(metrics: dict) -> List[str]:
    """The paired comparison with production, as the gate saw it."""
    block = metrics.get("production") or {}
    if "paired" not in block:
        return [f"  production: {block.get('status', 'not compared')} ({block.get('reason', '')})"]
    key = f"ndcg@{metrics['k']}"
    paired = block["paired"]
    return [
        f"  production {block['version']} ({block['status']}): {key} {block['model'][key]:.4f} on the same "
        f"{paired['users']} users; candidate - production {paired['mean_difference'][key]:+.4f} "
        f"(se {paired['standard_error'][key]:.4f}; better for {paired['users_better']}, "
        f"worse for {paired['users_worse']})"
    ]


def served_lists_check(served, window) -> Dict[str, object]:
    """Counts of what is served: users by source, list lengths, and items the user already had."""
    per_user = served.groupby("user_id").size()
    seen = served.merge(window, on=["user_id", "item_id"], how="inner")
    users_by_source = served.groupby("source")["user_id"].nunique().to_dict()
    return {
        "users": int(per_user.size),
        "model_users": int(users_by_source.get("model", 0)),
        "popularity_users": int(users_by_source.get("popularity", 0)),
        "window_users": int(window["user_id"].nunique()),
        "min_items": int(per_user.min()),
        "max_items": int(per_user.max()),
        "already_seen": len(seen),
    }


def served_lists(s3, served_uri: str, window_prefix: str, arts: str, user: Optional[str]) -> List[str]:
    """The served lists as a user of the product sees them: coverage, repeats, and one user's top-10."""
    bucket, _, prefix = served_uri[len("s3://") :].partition("/")
    served = read_parquet(s3, bucket, prefix.rstrip("/") + "/")
    window = read_parquet(s3, arts, window_prefix)
    if served is None or window is None:
        return [f"  (no served lists at {served_uri})"]
    check = served_lists_check(served, window)
    out = [
        f"-- served lists: {served_uri}",
        f"  {check['users']} users ({check['model_users']} model, {check['popularity_users']} popularity) "
        f"of {check['window_users']} in the window; {check['min_items']}-{check['max_items']} items each; "
        f"{check['already_seen']} items the user already interacted with",
    ]
    user = user or sorted(served["user_id"].unique(), key=lambda u: (len(u), u))[0]
    titles = {}
    items_file = ML_RAW / "_items.jsonl"
    if items_file.exists():
        for line in items_file.read_text().splitlines():
            item = json.loads(line)
            titles[str(item["item_id"])] = item.get("title", "")
    mine = served[served["user_id"] == user].sort_values("rank").head(10)
    theirs = set(window.loc[window["user_id"] == user, "item_id"])
    repeats = int(mine["item_id"].isin(theirs).sum())
    out.append(
        f"-- top-10 served to user {user} ({len(theirs)} items in their history; {repeats} of them here) --"
    )
    for _, row in mine.iterrows():
        title = titles.get(row["item_id"], "?")
        out.append(
            f"  {int(row['rank']):>2}. {title} "
            f"(item {row['item_id']}, {row['source']}, score {row['score']:.3f})"
        )
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-date", default="1998-04-22", help="logical date (MovieLens' last day)")
    parser.add_argument("--keep-stack", action="store_true", help="leave LocalStack and local EMR running")
    parser.add_argument("--user", default=None, help="sample user for the top-10 (default: the first id)")
    parser.add_argument(
        "--config",
        type=json.loads,
        default={},
        help="JSON object of DAG config overrides, e.g. '{\"factors\": 32}' (see dags/recsys_dag/config.py)",
    )
    args = parser.parse_args(argv)
    if not (ML_RAW / "_manifest.json").exists():
        print(f"ERROR: no MovieLens raw data at {ML_RAW}: run make data-movielens", file=sys.stderr)
        return 2
    return run(args.run_date, args.keep_stack, args.user, args.config)


if __name__ == "__main__":
    sys.exit(main())
