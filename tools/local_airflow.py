"""Airflow standalone on 127.0.0.1, wired to the local AWS stack: trigger the DAG and watch it in the UI.

    python -m tools.local_airflow [--port 8080] [--run-date 1998-04-22]

Starts the local stack if needed, loads MovieLens-100K as the run date's raw data, deploys the jobs,
then runs ``airflow standalone`` (scheduler, DAG processor, triggerer, API server and UI) in the
foreground with the same config and connection ``make run`` uses. Ctrl-C stops Airflow; the stack
stays up (``make local-down`` stops it). Local only: every user is an admin, no password.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from tools.local_run import AIRFLOW_HOME, ROOT, airflow_env, clients, load_and_deploy, local_config


def main(argv: Optional[Sequence[str]] = None) -> int:
    import subprocess

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8080, help="UI/API port on 127.0.0.1")
    parser.add_argument("--run-date", default="1998-04-22", help="day whose raw data is loaded")
    args = parser.parse_args(argv)

    stack_env = {**os.environ, "PYTHONPATH": str(ROOT / "localstack")}
    subprocess.run([sys.executable, "-m", "local_aws", "up"], check=True, env=stack_env)
    s3, _ = clients()
    _, version = load_and_deploy(s3, args.run_date)

    env = airflow_env(local_config(version))
    env.update(
        {
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(args.port),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__SCHEDULER__CATCHUP_BY_DEFAULT": "False",
        }
    )
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    print(
        f"Airflow UI: http://127.0.0.1:{args.port}/dags/recsys_training  "
        f"(trigger with logical date {args.run_date}T02:00:00+00:00; Ctrl-C to stop)",
        flush=True,
    )
    os.execvpe(sys.executable, [sys.executable, "-m", "airflow", "standalone"], env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
