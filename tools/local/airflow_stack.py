"""Airflow on 127.0.0.1, wired to the local AWS stack: trigger the DAG and watch it in the UI.

    python -m tools.local.airflow_stack [--port 8080] [--run-date 1998-04-22]

Starts the local stack if needed, loads MovieLens-100K as the run date's raw data and deploys the jobs, as
``make run`` does. Then it prepares its own metadata DB under var/airflow-ui (the DAG unpaused and manual
only) and runs Airflow's four components itself: API server + UI, scheduler (LocalExecutor), DAG
processor and triggerer. ``airflow standalone`` is not used because its components' log servers listen
on every interface; here the API server binds 127.0.0.1 and the log servers are not started (the UI reads
task logs from the local files). Each component logs to var/airflow-ui/components/<component>.log and its PID
is kept in var/airflow-ui/<component>.pid. Ctrl-C (or SIGTERM) stops them by those PIDs; the stack stays
up (``make local-down`` stops it). Local only: every user is an admin, no password.

With ``--statsd`` (``make airflow STATSD=1``) it first starts the reference StatsD server (Etsy's statsd,
tools/local/statsd/, on node) on UDP 127.0.0.1:8125, management console on TCP 127.0.0.1:8126, as one more
component (log, PID file, stopped by its PID), and Airflow sends its own metrics there
(``[metrics] statsd_on``, prefix ``airflow``). Every flush (10 s) of what arrived is one JSON line in
var/airflow-ui/statsd/metrics.jsonl, rewritten each session.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from tools.local.run import DAG_ID, ROOT, airflow_env, clients, load_and_deploy, local_config

sys.path.insert(0, str(ROOT / "localstack"))  # local_aws.proc: the local stack's process supervisor
from local_aws import proc

# Its own metadata DB: `make run` resets var/airflow on every run and would wipe the UI's history.
UI_AIRFLOW_HOME = ROOT / "var" / "airflow-ui"
COMPONENT_LOGS = UI_AIRFLOW_HOME / "components"  # task logs go to logs/, as Airflow decides
COMPONENTS: Dict[str, List[str]] = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
STOP_GRACE_S = 30

# The reference StatsD server, installed by `make statsd-setup` (tools/local/statsd/package.json pins it).
STATSD_DIR = Path(__file__).resolve().parent / "statsd"
STATSD_SERVER = STATSD_DIR / "node_modules" / "statsd" / "stats.js"
STATSD_CONFIG = STATSD_DIR / "config.js"
STATSD_PORT = 8125  # UDP, where Airflow sends
STATSD_MGMT_PORT = 8126  # TCP, statsd's management console (health, counters, timers, gauges)
STATSD_PREFIX = "airflow"
STATSD_FLUSH_MS = 10_000


def statsd_env(port: int, prefix: str = STATSD_PREFIX) -> Dict[str, str]:
    """Airflow's [metrics] settings that send its metrics to a StatsD server on 127.0.0.1:``port``."""
    return {
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(port),
        "AIRFLOW__METRICS__STATSD_PREFIX": prefix,
    }


def ui_env(code_version: str, port: int, statsd_port: Optional[int] = None) -> Dict[str, str]:
    """The airflow CLI environment of ``make run``, plus the UI's own home, loopback API and local auth;
    with ``statsd_port``, Airflow's metrics go to StatsD on that port of 127.0.0.1."""
    # Manual triggers only: the nightly schedule would start a run for today, whose data is not loaded, and
    # with max_active_runs=1 that run would block the one a person triggers.
    env = airflow_env(local_config(code_version, schedule=None))
    env.update(
        {
            "AIRFLOW_HOME": str(UI_AIRFLOW_HOME),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # The DAG runs at most two tasks at once; the default 32 would fork 32 idle worker processes.
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        }
    )
    if statsd_port is not None:
        env.update(statsd_env(statsd_port))
    return env


def prepare_db(env: Dict[str, str], dag_id: str = DAG_ID) -> None:
    """Migrate the UI's DB and register the DAG unpaused (paused-at-creation only covers new DAGs)."""
    for command in (["db", "migrate"], ["dags", "reserialize"], ["dags", "unpause", dag_id]):
        subprocess.run(
            [sys.executable, "-m", "airflow", *command],
            check=True,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )


def _spawn(name: str, command: List[str], env: Dict[str, str], cwd: Path) -> subprocess.Popen:
    # Own session (proc.spawn): a terminal's Ctrl-C reaches only this supervisor, so each component gets
    # exactly one SIGTERM (a second one makes the scheduler exit without stopping its executor workers),
    # and the component's PID is also the group ID that finds any of its children left behind.
    log, pid_file = COMPONENT_LOGS / f"{name}.log", UI_AIRFLOW_HOME / f"{name}.pid"
    return proc.spawn(command, env, log, pid_file, cwd=cwd)


def start(env: Dict[str, str]) -> Dict[str, subprocess.Popen]:
    """Start every component with its output in components/<name>.log and its PID in <name>.pid."""
    return {
        name: _spawn(name, [sys.executable, "-m", "airflow", *args], env, ROOT)
        for name, args in COMPONENTS.items()
    }


def statsd_metrics_file() -> Path:
    """Where the StatsD server's backend appends one JSON line per flush (statsd/jsonl_backend.js)."""
    return UI_AIRFLOW_HOME / "statsd" / "metrics.jsonl"


def start_statsd(
    port: int = STATSD_PORT, mgmt_port: int = STATSD_MGMT_PORT, flush_ms: int = STATSD_FLUSH_MS
) -> Dict[str, subprocess.Popen]:
    """Start the StatsD server on 127.0.0.1 (UDP ``port``, TCP ``mgmt_port``) as the component "statsd":
    output in components/statsd.log, PID in statsd.pid, a fresh metrics file. Stopped by ``stop``."""
    node = shutil.which("node")
    if node is None or not STATSD_SERVER.exists():
        raise RuntimeError(
            "the StatsD server needs Node.js and `make statsd-setup` (tools/local/statsd/node_modules/)"
        )
    metrics = statsd_metrics_file()
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.unlink(missing_ok=True)
    env = {
        **os.environ,
        "STATSD_PORT": str(port),
        "STATSD_MGMT_PORT": str(mgmt_port),
        "STATSD_FLUSH_INTERVAL_MS": str(flush_ms),
        "STATSD_METRICS_FILE": str(metrics),
    }
    return {"statsd": _spawn("statsd", [node, str(STATSD_SERVER), str(STATSD_CONFIG)], env, STATSD_DIR)}


def statsd_health(mgmt_port: int) -> Optional[str]:
    """The StatsD server's answer to ``health`` on its management console ("health: up"), None if none."""
    try:
        with socket.create_connection(("127.0.0.1", mgmt_port), timeout=2) as conn:
            conn.sendall(b"health\n")
            return conn.recv(64).decode("ascii", "replace").strip() or None
    except OSError:
        return None


def _wait_ready(
    ready: Callable[[], bool],
    what: str,
    processes: Dict[str, subprocess.Popen],
    timeout_s: float,
    interval_s: float,
) -> None:
    """Poll ``ready`` every ``interval_s`` s for ``timeout_s`` s; fail at once, naming the component and
    its log, if any of ``processes`` exits."""
    try:
        proc.wait_for(ready, timeout_s, what, lambda: died(processes) is None, interval_s)
    except RuntimeError:
        raise RuntimeError(died(processes)) from None


def wait_until_statsd_ready(
    mgmt_port: int, processes: Dict[str, subprocess.Popen], timeout_s: float = 30
) -> None:
    """Wait until the StatsD console on 127.0.0.1:``mgmt_port`` answers "health: up"."""
    what = f"the StatsD server on 127.0.0.1:{mgmt_port}"
    _wait_ready(lambda: statsd_health(mgmt_port) == "health: up", what, processes, timeout_s, 0.2)


def stop(processes: Dict[str, subprocess.Popen]) -> None:
    """SIGTERM each component by its PID, SIGKILL it after the grace period, then SIGKILL whatever is
    left in its process group (e.g. executor workers of a scheduler that did not stop them). The StatsD
    server goes last, so that it still receives what the Airflow components send while they stop."""
    airflow = {name: process for name, process in processes.items() if name != "statsd"}
    _stop(airflow)
    _stop({name: process for name, process in processes.items() if name == "statsd"})


def _stop(processes: Dict[str, subprocess.Popen]) -> None:
    # Only running components are signalled by PID: an exited one has been reaped, so its PID is free for
    # reuse; its group (the PID stays reserved while the group has members) still gets the SIGKILL.
    running = [process.pid for process in processes.values() if process.poll() is None]
    proc.terminate_groups(running, STOP_GRACE_S, leader_only=True)
    for name, process in processes.items():
        process.wait()
        proc.kill_group(process.pid)
        (UI_AIRFLOW_HOME / f"{name}.pid").unlink(missing_ok=True)


def _api_healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/api/v2/monitor/health", timeout=5):
            return True
    except OSError:
        return False


def wait_until_healthy(base_url: str, processes: Dict[str, subprocess.Popen], timeout_s: float = 180) -> None:
    """Wait until the API server at ``base_url`` answers its health endpoint."""
    _wait_ready(lambda: _api_healthy(base_url), f"the API server at {base_url}", processes, timeout_s, 1)


def died(processes: Dict[str, subprocess.Popen]) -> Optional[str]:
    """A message naming the first component that has exited, with where its log is; None if all run."""
    for name, process in processes.items():
        if process.poll() is not None:
            log = COMPONENT_LOGS / f"{name}.log"
            component = name if name == "statsd" else f"airflow {name}"
            shown = log.relative_to(ROOT) if log.is_relative_to(ROOT) else log
            return f"{component} exited with code {process.returncode}; see {shown}"
    return None


def _interrupt(signum, frame) -> None:
    """SIGINT (Ctrl-C) and SIGTERM (``kill <pid>``) both stop the components, then exit."""
    raise KeyboardInterrupt


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8080, help="UI/API port on 127.0.0.1")
    parser.add_argument("--run-date", default="1998-04-22", help="day whose raw data is loaded")
    parser.add_argument(
        "--statsd",
        action="store_true",
        help=f"start a StatsD server on 127.0.0.1 (UDP {STATSD_PORT}) and send Airflow's metrics to it",
    )
    parser.add_argument("--statsd-port", type=int, default=STATSD_PORT, help="StatsD's UDP port on 127.0.0.1")
    parser.add_argument(
        "--statsd-mgmt-port", type=int, default=STATSD_MGMT_PORT, help="StatsD's management TCP port"
    )
    args = parser.parse_args(argv)

    stack_env = {**os.environ, "PYTHONPATH": str(ROOT / "localstack")}
    subprocess.run([sys.executable, "-m", "local_aws", "up"], check=True, env=stack_env)
    s3, _ = clients()
    _, version = load_and_deploy(s3, args.run_date)
    env = ui_env(version, args.port, statsd_port=args.statsd_port if args.statsd else None)
    UI_AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    prepare_db(env)

    # Installed explicitly: a shell's `make airflow &` starts us with SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    processes = start_statsd(args.statsd_port, args.statsd_mgmt_port) if args.statsd else {}
    base_url = f"http://127.0.0.1:{args.port}"
    try:
        if args.statsd:
            wait_until_statsd_ready(args.statsd_mgmt_port, processes)
        processes.update(start(env))
        wait_until_healthy(base_url, processes)
        print(
            f"\nAirflow UI: {base_url}/dags/{DAG_ID}\n"
            f"Trigger it there (Trigger, logical date {args.run_date} 02:00 UTC) or from a shell:\n"
            f"  AIRFLOW_HOME={UI_AIRFLOW_HOME.relative_to(ROOT)} .venv/bin/airflow dags trigger {DAG_ID} "
            f"--logical-date {args.run_date}T02:00:00+00:00\n"
            f"Component logs: {COMPONENT_LOGS.relative_to(ROOT)}/<component>.log. Ctrl-C stops Airflow.",
            flush=True,
        )
        if args.statsd:
            print(
                f"StatsD: Airflow's metrics (prefix {STATSD_PREFIX}) to udp 127.0.0.1:{args.statsd_port}; "
                f"each {STATSD_FLUSH_MS // 1000} s flush in "
                f"{statsd_metrics_file().relative_to(ROOT)}; console: "
                f"echo counters | nc 127.0.0.1 {args.statsd_mgmt_port}",
                flush=True,
            )
        while True:
            dead = died(processes)
            if dead:
                print(f"ERROR: {dead}", file=sys.stderr)
                return 1
            time.sleep(1)
    except KeyboardInterrupt:
        print("stopping Airflow", flush=True)
        return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        stop(processes)


if __name__ == "__main__":
    sys.exit(main())
