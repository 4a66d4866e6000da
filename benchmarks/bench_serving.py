"""The serving layer on the local DynamoDB endpoint: load throughput and lookup latency.

    python -m benchmarks.bench_serving [--seed 42] [--quick] [--users N] [--lookups 10000]

**This is moto on loopback, not DynamoDB.** The endpoint is the local stack's DynamoDB stand-in
(``localstack/local_dynamodb``: moto's DynamoDB API in one Python process, no capacity, no throttling,
no network). What it measures is the client's cost (serving.load's encoding, batching and thread pool;
serving.client's reads and caches; boto3) and the stand-in's own speed, both on this machine's cores.
It says nothing about DynamoDB's latency or throughput; the capacity arithmetic for real DynamoDB is
computed separately from the write units of the lists loaded (serving.table.write_units) and the
throughput figures docs/serving.md ("Capacity") gives with their AWS pages.

- **Load.** ``--users`` synthetic users (100,000; 5,000 with ``--quick``), each a 10-item list drawn
  from a catalogue of 5,000 item ids with descending scores (seeded), loaded into one version with
  ``serving.load.load_lists`` at 1, 4 and 16 threads (16 is the library's bound), each thread count on
  a fresh endpoint, started as the stack starts it (``python -m local_dynamodb.server`` with
  PYTHONPATH=localstack, the stack's environment) but on a free loopback port with a private copy of
  ``localstack/resources.json``, and stopped by its PID. The client is configured as
  spark_jobs/load_serving.py configures it. Reported: lists/s, BatchWriteItem requests/s, write units,
  this process's CPU (the client) and the server's CPU per 1,000 lists.
- **Lookups.** On the last endpoint the version is marked loaded (``serving.load.finish_load``) and
  made live (``serving.pointer.switch``); then ``--lookups`` (10,000; 2,000 with ``--quick``)
  ``Recommender.recommend(user, n=10)`` calls, one at a time, for random known users and 10 % unknown
  users (answered with the popularity list), once with the pointer cache on (the default
  ``pointer_ttl_s``) and once with ``pointer_ttl_s=0`` (a pointer read per lookup). 100 warm-up calls
  first, not counted. p50 / p90 / p99 / max in ms, and the GetItem calls per lookup (counted with a
  botocore event hook).

Reports only; asserts no timing (it does check every answer came from the expected source).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from benchmarks.env import ROOT, VENV_BIN, WORK, load_avg
from benchmarks.procmon import MIB, parse_statm_rss_bytes
from benchmarks.results import Recorder, add_common_args
from serving.client import Recommender
from serving.load import BATCH_SIZE, MAX_THREADS, UserList, finish_load, load_lists
from serving.pointer import switch
from serving.table import RankedList, encode_list, item_size, user_key, write_units

HOST = "127.0.0.1"
LOCALSTACK_DIR = ROOT / "localstack"
RESOURCES_FILE = LOCALSTACK_DIR / "resources.json"
SERVER_MODULE = "local_dynamodb.server"

VERSION = "2024-01-31_j-BENCH01"  # a registry version id (serving.table.VERSION_RE)
THREADS = (1, 4, MAX_THREADS)
FULL_USERS = 100_000
QUICK_USERS = 5_000
LOOKUPS = 10_000
QUICK_LOOKUPS = 2_000  # per pointer setting: 10,000 x 2 take ~2 min here, too long for bench-quick
WARMUP_LOOKUPS = 100
UNKNOWN_SHARE = 0.10
LIST_ITEMS = 10
CATALOGUE = 5_000  # item ids 1..5000: up to 4 digits, like MovieLens's
TTL_DAYS = 14

# Capacity arithmetic for real DynamoDB. The throughput figures are the ones docs/serving.md
# ("Capacity") gives with the AWS pages they come from; the page cites that section, this file only
# uses them to turn the measured write units per list into time.
TARGET_USERS = 10_000_000
TABLE_RATES = (1_000, 10_000, 40_000)  # write units per second; 40,000 = the default per-table quota
PER_TABLE_QUOTA = 40_000
ON_DEMAND_NEW_TABLE = 4_000  # writes per second a new on-demand table sustains; then up to 2x the peak


# ------------------------------------------------------------------------------------ pure helpers


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of ascending ``sorted_values``: the smallest value with at least q % of
    the values at or below it (``q`` in (0, 100]; 100 gives the maximum). ValueError when empty."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 < q <= 100:
        raise ValueError(f"q is in (0, 100], got {q}")
    rank = math.ceil(q / 100 * len(sorted_values))
    return sorted_values[max(rank, 1) - 1]


def latency_summary(seconds: Sequence[float]) -> Dict[str, float]:
    """Latencies in seconds -> count, mean, p50, p90, p99 and max in milliseconds."""
    ordered = sorted(seconds)
    summary: Dict[str, float] = {"count": len(ordered), "mean_ms": 1000 * sum(ordered) / len(ordered)}
    for q in (50, 90, 99):
        summary[f"p{q}_ms"] = 1000 * percentile(ordered, q)
    summary["max_ms"] = 1000 * ordered[-1]
    return summary


def parse_stat_cpu_seconds(stat_text: str, ticks_per_s: int) -> float:
    """User + system CPU seconds of a process from the text of ``/proc/<pid>/stat`` (fields 14, 15,
    counted after the command name, which may hold spaces and parentheses)."""
    fields = stat_text.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / ticks_per_s


def server_env(base: Mapping[str, str], account_id: str) -> Dict[str, str]:
    """The endpoint's environment as the stack builds it (localstack/local_aws/dynamodb_server.py):
    no AWS_* variable of the caller, localstack/ on the path, the local account, no proxy for loopback."""
    env = {key: value for key, value in base.items() if not key.startswith("AWS_")}
    env.update(
        {
            "PYTHONPATH": str(LOCALSTACK_DIR),
            "MOTO_ACCOUNT_ID": account_id,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    return env


def lookup_plan(known_users: int, count: int, unknown_share: float, seed: int) -> List[Tuple[str, bool]]:
    """``count`` (user id, known) pairs in a seeded random order: ``round(count * unknown_share)`` users
    the version has no list for (ids above ``known_users``, all distinct), the rest drawn uniformly, with
    repeats, from the known users ``1..known_users``."""
    rng = random.Random(seed)
    unknown = round(count * unknown_share)
    plan = [(str(known_users + 1 + index), False) for index in range(unknown)]
    plan += [(str(rng.randint(1, known_users)), True) for _ in range(count - unknown)]
    rng.shuffle(plan)
    return plan


def fmt_duration(seconds: float) -> str:
    """Seconds as hours, minutes and seconds, largest two units: ``10_000 -> "2 h 47 min"``,
    ``1_000 -> "16 min 40 s"``, ``42.4 -> "42 s"``."""
    if seconds >= 3600 - 30:  # from an hour on, to the nearest minute
        hours, minutes = divmod(round(seconds / 60), 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    minutes, secs = divmod(round(seconds), 60)
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def capacity_plan(
    units_per_list: float,
    users: int = TARGET_USERS,
    rates: Sequence[int] = TABLE_RATES,
    on_demand_start: int = ON_DEMAND_NEW_TABLE,
    quota: int = PER_TABLE_QUOTA,
) -> Dict[str, Any]:
    """Loading ``users`` lists of ``units_per_list`` write units each into real DynamoDB: the units and
    BatchWriteItem requests it takes, the seconds at each table throughput in ``rates`` (units/s), and
    the nightly loads into a *new* on-demand table, which starts at ``on_demand_start`` writes per
    second and may take twice its previous peak each time, up to the per-table ``quota``."""
    units = math.ceil(users * units_per_list)
    nights = []
    rate = on_demand_start
    while True:
        nights.append({"night": len(nights) + 1, "units_per_s": rate, "seconds": units / rate})
        if rate >= quota:
            break
        rate = min(2 * rate, quota)
    return {
        "users": users,
        "units_per_list": units_per_list,
        "write_units": units,
        "requests": math.ceil(users / BATCH_SIZE),
        "at_rate": [{"units_per_s": r, "seconds": units / r} for r in rates],
        "on_demand_nights": nights,
    }


def synthetic_lists(
    users: int, seed: int, items: int = LIST_ITEMS, catalogue: int = CATALOGUE
) -> List[UserList]:
    """Users ``"1".."users"``, each ``items`` distinct item ids of ``1..catalogue`` with descending
    scores in (0, 1): seeded, the same lists for the same arguments."""
    rng = random.Random(seed)
    population = range(1, catalogue + 1)
    out = []
    for user in range(1, users + 1):
        ids = rng.sample(population, items)
        scores = sorted((rng.random() for _ in range(items)), reverse=True)
        out.append(UserList(str(user), RankedList.of(ids, scores, "model")))
    return out


def popularity_of(lists: Sequence[UserList], items: int = LIST_ITEMS) -> RankedList:
    """The ``items`` item ids appearing in most lists (ties by id), scored by that count."""
    counts = Counter(item for entry in lists for item in entry.ranked.item_ids)
    top = sorted(counts.items(), key=lambda kv: (-kv[1], int(kv[0])))[:items]
    return RankedList.of([item for item, _ in top], [count for _, count in top], "popularity")


# ------------------------------------------------------------------------------ the local endpoint


def free_port(host: str = HOST) -> int:
    """A TCP port the kernel considers free on ``host`` right now (never the shared stack's ports:
    the kernel hands out ephemeral ports)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _server_cpu_seconds(pid: int) -> float:
    return parse_stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text(), os.sysconf("SC_CLK_TCK"))


def _server_rss_mib(pid: int) -> float:
    return parse_statm_rss_bytes(Path(f"/proc/{pid}/statm").read_text()) / MIB


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _health(url: str) -> Optional[Dict[str, Any]]:
    try:
        with _NO_PROXY.open(f"{url}/_local_dynamodb/health", timeout=2) as response:
            return json.loads(response.read().decode("utf-8"))
    except (OSError, ValueError):
        return None


@dataclass
class Endpoint:
    """A running private local DynamoDB endpoint."""

    url: str
    pid: int
    table: str
    resources: Dict[str, Any]
    started_in_s: float

    def client(self, **config: Any):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "dynamodb",
            endpoint_url=self.url,
            region_name=self.resources["region"],
            aws_access_key_id=self.resources["aws_access_key_id"],
            aws_secret_access_key=self.resources["aws_secret_access_key"],
            config=Config(**config) if config else None,
        )


@contextlib.contextmanager
def local_dynamodb(work: Path, timeout_s: float = 60.0, attempts: int = 3) -> Iterator[Endpoint]:
    """Start ``python -m local_dynamodb.server`` on a free loopback port with a private copy of the
    resources file (its state is in memory: a fresh table); stop it by its PID on exit."""
    work.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="dynamodb-", dir=work))
    resources_copy = folder / "resources.json"
    shutil.copyfile(RESOURCES_FILE, resources_copy)
    resources = json.loads(resources_copy.read_text(encoding="utf-8"))
    python = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
    env = server_env(os.environ, resources["account_id"])
    process: Optional[subprocess.Popen] = None
    endpoint: Optional[Endpoint] = None
    done = False
    try:
        for attempt in range(1, attempts + 1):  # another process may take the port between probe and bind
            port = free_port()
            url = f"http://{HOST}:{port}"
            log = open(folder / f"server-{attempt}.log", "w")  # noqa: SIM115 (closed once Popen has it)
            started = time.perf_counter()
            process = subprocess.Popen(
                [python, "-m", SERVER_MODULE, "--host", HOST, "--port", str(port),
                 "--resources", str(resources_copy)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            log.close()
            deadline = time.monotonic() + timeout_s
            while process.poll() is None and time.monotonic() < deadline:
                health = _health(url)
                if health and health.get("status") == "error":
                    raise RuntimeError(f"local DynamoDB endpoint: {health.get('error')}; log in {folder}")
                if health and health.get("status") == "ok" and health.get("pid") == process.pid:
                    endpoint = Endpoint(
                        url, process.pid, health["tables"][0], resources, time.perf_counter() - started
                    )
                    break
                time.sleep(0.1)
            if endpoint is not None:
                break
            _stop(process)
            process = None
        if endpoint is None:
            raise RuntimeError(f"local DynamoDB endpoint did not become ready; logs in {folder}")
        yield endpoint
        done = True
    finally:
        if process is not None:
            _stop(process)
    if done:  # kept, with the server's logs, when anything failed
        shutil.rmtree(folder, ignore_errors=True)


def _stop(process: subprocess.Popen, grace_s: float = 15.0) -> None:
    """SIGTERM to our server's PID (it shuts down cleanly), SIGKILL if it is still there after the grace."""
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


# -------------------------------------------------------------------------------------- measuring


def load_once(endpoint: Endpoint, lists: Sequence[UserList], threads: int, expires_at: int) -> Dict[str, Any]:
    """One load of ``lists`` into ``VERSION`` at ``threads`` requests in flight, timed."""
    # As spark_jobs/load_serving.py configures its clients.
    client = endpoint.client(
        retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=threads + 2
    )
    load_before = load_avg()
    server_cpu = _server_cpu_seconds(endpoint.pid)
    cpu = time.process_time()
    started = time.perf_counter()
    counts = load_lists(client, endpoint.table, VERSION, lists, expires_at=expires_at, threads=threads)
    seconds = time.perf_counter() - started
    client_cpu = time.process_time() - cpu
    server_cpu = _server_cpu_seconds(endpoint.pid) - server_cpu
    return {
        "threads": threads,
        "seconds": seconds,
        "lists_per_s": counts.lists / seconds,
        "requests_per_s": counts.requests / seconds,
        "counts": counts.as_dict(),
        "client_cpu_s": client_cpu,
        "server_cpu_s": server_cpu,
        "client_cpu_ms_per_1000_lists": 1e6 * client_cpu / counts.lists,
        "server_cpu_ms_per_1000_lists": 1e6 * server_cpu / counts.lists,
        "cores_used": (client_cpu + server_cpu) / seconds,
        "server_rss_mib_after": _server_rss_mib(endpoint.pid),
        "server_start_s": endpoint.started_in_s,
        "load_before": load_before,
        "load_after": load_avg(),
    }


def time_lookups(
    recommender: Recommender, client, plan: Sequence[Tuple[str, bool]], warmup: Sequence[Tuple[str, bool]]
) -> Dict[str, Any]:
    """``recommend(user, n=10)`` for every user of ``plan``, one at a time, after ``warmup`` (not
    timed): latency percentiles, per source, and GetItem calls per lookup."""
    calls = {"GetItem": 0}

    def count(**_: Any) -> None:
        calls["GetItem"] += 1

    client.meta.events.register("before-call.dynamodb.GetItem", count)
    try:
        for user, _known in warmup:
            recommender.recommend(user, n=LIST_ITEMS)
        calls["GetItem"] = 0
        load_before = load_avg()
        latencies: Dict[str, List[float]] = {"model": [], "popularity": []}
        wrong = 0
        started = time.perf_counter()
        for user, known in plan:
            t0 = time.perf_counter()
            answer = recommender.recommend(user, n=LIST_ITEMS)
            latencies[answer.source].append(time.perf_counter() - t0)
            if answer.source != ("model" if known else "popularity") or len(answer.items) != LIST_ITEMS:
                wrong += 1
        seconds = time.perf_counter() - started
    finally:
        client.meta.events.unregister("before-call.dynamodb.GetItem", count)
    every = latencies["model"] + latencies["popularity"]
    return {
        "pointer_ttl_s": recommender.pointer_ttl_s,
        "lookups": len(plan),
        "seconds": seconds,
        "lookups_per_s": len(plan) / seconds,
        "latency": latency_summary(every),
        "by_source": {src: latency_summary(values) for src, values in latencies.items() if values},
        "get_item_calls": calls["GetItem"],
        "get_items_per_lookup": calls["GetItem"] / len(plan),
        "wrong_answers": wrong,
        "load_before": load_before,
        "load_after": load_avg(),
    }


def lookups(endpoint: Endpoint, lists: Sequence[UserList], count: int, seed: int, expires_at: int) -> Dict:
    """Mark ``VERSION`` loaded, switch the pointer to it, then time lookups with and without the
    pointer cache (the same users in the same order)."""
    client = endpoint.client()
    popularity = popularity_of(lists)
    marker = finish_load(
        client, endpoint.table, VERSION, popularity=popularity, lists_written=len(lists),
        lists_expected=len(lists), expires_at=expires_at,
    )  # fmt: skip
    moved = switch(client, endpoint.table, VERSION, now_epoch=int(time.time()), by="bench_serving")
    if not moved.moved:
        raise RuntimeError(f"the pointer did not move to {VERSION}: {moved.reason}")
    plan = lookup_plan(len(lists), count, UNKNOWN_SHARE, seed)
    warmup = lookup_plan(len(lists), WARMUP_LOOKUPS, UNKNOWN_SHARE, seed + 1)
    rows = []
    for ttl in (None, 0.0):  # None: Recommender's default pointer_ttl_s
        reader = endpoint.client()
        recommender = Recommender(
            endpoint.table, client=reader, **({} if ttl is None else {"pointer_ttl_s": ttl})
        )
        rows.append(time_lookups(recommender, reader, plan, warmup))
    return {
        "marker": {"lists": marker.lists, "popularity_items": marker.popularity_items},
        "unknown_share": UNKNOWN_SHARE,
        "warmup": WARMUP_LOOKUPS,
        "rows": rows,
    }


def item_stats(lists: Sequence[UserList], expires_at: int) -> Dict[str, Any]:
    """Sizes (serving.table.item_size) and write units of the items the lists encode to."""
    sizes, units = [], Counter()
    for entry in lists:
        item = encode_list(user_key(VERSION, entry.user_id), entry.ranked, expires_at)
        sizes.append(item_size(item))
        units[write_units(item)] += 1
    return {
        "bytes_min": min(sizes),
        "bytes_mean": sum(sizes) / len(sizes),
        "bytes_max": max(sizes),
        "write_units": {str(k): v for k, v in sorted(units.items())},
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument(
        "--users", type=int, default=None, help=f"users loaded ({FULL_USERS:,}; quick {QUICK_USERS:,})"
    )
    parser.add_argument(
        "--lookups",
        type=int,
        default=None,
        help=f"timed lookups per pointer setting ({LOOKUPS:,}; quick {QUICK_LOOKUPS:,})",
    )
    parser.add_argument("--work", type=Path, default=WORK / "serving", help="the endpoints' temporary files")
    args = parser.parse_args(argv)
    users = args.users or (QUICK_USERS if args.quick else FULL_USERS)
    count = args.lookups or (QUICK_LOOKUPS if args.quick else LOOKUPS)
    recorder = Recorder("serving", args)
    os.environ["NO_PROXY"] = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1"]))
    os.environ["no_proxy"] = os.environ["NO_PROXY"]
    print(f"serving bench: {users:,} synthetic 10-item lists ...", flush=True)
    lists = synthetic_lists(users, args.seed)
    expires_at = int(time.time()) + TTL_DAYS * 86_400
    items = item_stats(lists, expires_at)
    loads = []
    result: Dict[str, Any] = {}
    table = ""
    for threads in THREADS:
        with local_dynamodb(args.work) as endpoint:
            table = endpoint.table
            print(f"serving bench: load at {threads} thread(s) into {endpoint.url} ...", flush=True)
            run = load_once(endpoint, lists, threads, expires_at)
            loads.append(run)
            print(
                f"  {run['seconds']:.1f} s, {run['lists_per_s']:,.0f} lists/s, "
                f"{run['requests_per_s']:,.0f} requests/s",
                flush=True,
            )
            if threads == THREADS[-1]:
                print(f"serving bench: {count:,} lookups x 2 ...", flush=True)
                result = lookups(endpoint, lists, count, args.seed, expires_at)
                for row in result["rows"]:
                    lat = row["latency"]
                    print(
                        f"  pointer_ttl_s={row['pointer_ttl_s']:g}: p50 {lat['p50_ms']:.2f} ms, "
                        f"p99 {lat['p99_ms']:.2f} ms, {row['get_items_per_lookup']:.2f} GetItem/lookup",
                        flush=True,
                    )
    units_per_list = loads[-1]["counts"]["write_units"] / loads[-1]["counts"]["lists"]
    recorder["endpoint"] = {
        "server": f"python -m {SERVER_MODULE} (moto's DynamoDB), loopback, private resources copy",
        "table": table,
        "version": VERSION,
    }
    recorder["data"] = {"users": users, "items_per_list": LIST_ITEMS, "catalogue": CATALOGUE, **items}
    recorder["loads"] = loads
    recorder["lookups"] = result
    recorder["capacity"] = capacity_plan(units_per_list)
    recorder.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
