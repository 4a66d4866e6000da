"""The serving layer on the local DynamoDB endpoint (moto on loopback, not DynamoDB): load throughput at
1, 4 and 16 threads (a fresh private endpoint each), lookup latency with and without the pointer cache,
and the capacity arithmetic for real DynamoDB.

    python -m benchmarks.bench_serving [--seed 42] [--quick] [--users N] [--lookups N]
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import socket
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import psutil

from benchmarks import common as c

sys.path.insert(0, str(c.ROOT / "localstack"))  # the local stack's own code: local_aws
from local_aws import dynamodb_server
from local_aws.http import get_json
from local_aws.service import StartError
from local_aws.settings import load_resources, load_settings

from serving.client import Recommender
from serving.load import BATCH_SIZE, MAX_THREADS, UserList, finish_load, load_lists
from serving.pointer import switch
from serving.table import RankedList, encode_list, item_size, user_key, write_units

VERSION = "2024-01-31_j-BENCH01"  # a registry version id (serving.table.VERSION_RE)
THREADS, UNKNOWN_SHARE, WARMUP, ITEMS, CATALOGUE = (1, 4, MAX_THREADS), 0.10, 100, 10, 5_000
# Real DynamoDB, with the figures docs/serving.md ("Capacity") gives with their AWS pages: table throughputs
# (write units/s; 40,000 = the default per-table quota), a new on-demand table's initial writes/s.
TARGET_USERS, TABLE_RATES, QUOTA, ON_DEMAND_START = 10_000_000, (1_000, 10_000, 40_000), 40_000, 4_000
Plan = List[Tuple[str, bool]]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of ascending values (``q`` in (0, 100]; 100 = the maximum)."""
    if not sorted_values or not 0 < q <= 100:
        raise ValueError(f"percentile {q} of {len(sorted_values)} values")
    return sorted_values[max(math.ceil(q / 100 * len(sorted_values)), 1) - 1]


def latency_summary(seconds: Sequence[float]) -> Dict[str, float]:
    """Latencies in seconds -> count, mean, p50, p90, p99 and max in milliseconds."""
    s = sorted(seconds)
    summary = {"count": len(s), "mean_ms": 1000 * sum(s) / len(s), "max_ms": 1000 * s[-1]}
    return {**summary, **{f"p{q}_ms": 1000 * percentile(s, q) for q in (50, 90, 99)}}


def lookup_plan(known_users: int, count: int, unknown_share: float, seed: int) -> Plan:
    """``count`` seeded (user id, known) pairs, shuffled: ``round(count * unknown_share)`` distinct unknown
    users (ids above ``known_users``), the rest drawn with repeats from ``1..known_users``."""
    rng, unknown = random.Random(seed), round(count * unknown_share)
    plan = [(str(known_users + 1 + i), False) for i in range(unknown)]
    plan += [(str(rng.randint(1, known_users)), True) for _ in range(count - unknown)]
    rng.shuffle(plan)
    return plan


def capacity_plan(units_per_list: float, users: int = TARGET_USERS, rates: Sequence[int] = TABLE_RATES,
                  on_demand_start: int = ON_DEMAND_START, quota: int = QUOTA) -> Dict[str, Any]:  # fmt: skip
    """``users`` lists into real DynamoDB: write units, BatchWriteItem requests, seconds at each table
    throughput, and nightly loads into a new on-demand table (up to twice the previous night's rate)."""
    units, nights, rate = math.ceil(users * units_per_list), [], on_demand_start
    while not nights or nights[-1]["units_per_s"] < quota:
        nights.append({"night": len(nights) + 1, "units_per_s": rate, "seconds": units / rate})
        rate = min(2 * rate, quota)
    at_rate = [{"units_per_s": r, "seconds": units / r} for r in rates]
    return {"users": users, "units_per_list": units_per_list, "write_units": units, "at_rate": at_rate,
            "requests": math.ceil(users / BATCH_SIZE), "on_demand_nights": nights}  # fmt: skip


def synthetic_lists(users: int, seed: int, items: int = ITEMS, catalogue: int = CATALOGUE) -> List[UserList]:
    """Users ``"1".."users"``, each ``items`` distinct ids of ``1..catalogue`` with descending scores."""
    rng, out = random.Random(seed), []
    for user in range(1, users + 1):
        ids = rng.sample(range(1, catalogue + 1), items)
        scores = sorted((rng.random() for _ in range(items)), reverse=True)
        out.append(UserList(str(user), RankedList.of(ids, scores, "model")))
    return out


def popularity_of(lists: Sequence[UserList], items: int = ITEMS) -> RankedList:
    """The ``items`` item ids in most lists (ties by id), scored by that count."""
    counts = Counter(item for entry in lists for item in entry.ranked.item_ids)
    top = sorted(counts.items(), key=lambda kv: (-kv[1], int(kv[0])))[:items]
    return RankedList.of([item for item, _ in top], [n for _, n in top], "popularity")


@contextlib.contextmanager
def local_dynamodb(work: Path) -> Iterator[Dict[str, Any]]:
    """The stack's own local DynamoDB endpoint (``local_aws.dynamodb_server``: ``python -m
    local_dynamodb.server``, moto, a fresh in-memory table) on a free loopback port with a private state
    folder, stopped by its PID; the folder (PID file, log) is kept if anything failed."""
    state = Path(tempfile.mkdtemp(prefix="dynamodb-", dir=c.mkdir(work)))
    for attempt in range(3):  # another process may take the port between probe and bind
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))  # an ephemeral port: never the shared stack's
            settings = load_settings({"LOCAL_DYNAMODB_PORT": str(sock.getsockname()[1]),
                                      "LOCAL_AWS_STATE_DIR": str(state)})  # fmt: skip
        server, started = dynamodb_server.service(settings), time.perf_counter()
        try:
            server.start()
        except StartError:
            if attempt < 2:
                continue
            raise
        try:
            table = get_json(f"{settings.dynamodb_url}/_local_dynamodb/health")["tables"][0]
            yield {"url": settings.dynamodb_url, "pid": server.pid(), "resources": load_resources(),
                   "table": table, "started_in_s": time.perf_counter() - started}  # fmt: skip
        finally:
            server.stop()
        shutil.rmtree(state, ignore_errors=True)
        return


def client(endpoint: Dict[str, Any], **config: Any) -> Any:
    import boto3
    from botocore.config import Config

    keys = {k: endpoint["resources"][k] for k in ("aws_access_key_id", "aws_secret_access_key")}
    return boto3.client("dynamodb", region_name=endpoint["resources"]["region"], endpoint_url=endpoint["url"],
                        config=Config(**config) if config else None, **keys)  # fmt: skip


def load_once(endpoint: Dict[str, Any], lists: Sequence[UserList], threads: int, expires: int) -> Dict:
    """One timed load of ``lists`` into ``VERSION`` with ``threads`` requests in flight."""
    retries = {"mode": "standard", "max_attempts": 5}  # as spark_jobs/load_serving.py configures it
    writer = client(endpoint, retries=retries, max_pool_connections=threads + 2)
    run = {"threads": threads, "load_before": c.load_avg(), "server_start_s": endpoint["started_in_s"]}
    server, cpu, started = c.cpu_seconds(endpoint["pid"], False), time.process_time(), time.perf_counter()
    n = load_lists(writer, endpoint["table"], VERSION, lists, expires_at=expires, threads=threads)
    run.update(seconds=time.perf_counter() - started, client_cpu_s=time.process_time() - cpu)
    run.update(server_cpu_s=c.cpu_seconds(endpoint["pid"], False) - server, counts=n.as_dict())
    run.update(lists_per_s=n.lists / run["seconds"], requests_per_s=n.requests / run["seconds"])
    run["client_cpu_ms_per_1000_lists"] = 1e6 * run["client_cpu_s"] / n.lists
    run["server_cpu_ms_per_1000_lists"] = 1e6 * run["server_cpu_s"] / n.lists
    run["cores_used"] = (run["client_cpu_s"] + run["server_cpu_s"]) / run["seconds"]
    run["server_rss_mib_after"] = psutil.Process(endpoint["pid"]).memory_info().rss / c.MIB
    print(f"  {threads} thread(s): {run['seconds']:.1f} s, {run['lists_per_s']:,.0f} lists/s", flush=True)
    return {**run, "load_after": c.load_avg()}


def time_lookups(recommender: Recommender, reader: Any, plan: Plan, warmup: Plan) -> Dict[str, Any]:
    """``recommend(user, n=10)`` over ``plan`` one at a time after an untimed ``warmup``: latency
    percentiles (all, per source), GetItem calls per lookup (a botocore hook) and wrong answers."""
    calls = Counter()

    def count(**_: Any) -> None:
        calls["GetItem"] += 1

    reader.meta.events.register("before-call.dynamodb.GetItem", count)
    try:
        for user, _known in warmup:
            recommender.recommend(user, n=ITEMS)
        calls.clear()
        run, latencies, wrong = {"load_before": c.load_avg()}, {"model": [], "popularity": []}, 0
        started = time.perf_counter()
        for user, known in plan:
            t0 = time.perf_counter()
            answer = recommender.recommend(user, n=ITEMS)
            latencies[answer.source].append(time.perf_counter() - t0)
            wrong += answer.source != ("model" if known else "popularity") or len(answer.items) != ITEMS
        seconds = time.perf_counter() - started
    finally:
        reader.meta.events.unregister("before-call.dynamodb.GetItem", count)
    run.update(pointer_ttl_s=recommender.pointer_ttl_s, lookups=len(plan), seconds=seconds)
    every = latencies["model"] + latencies["popularity"]
    run.update(lookups_per_s=len(plan) / seconds, latency=latency_summary(every))
    run["by_source"] = {source: latency_summary(values) for source, values in latencies.items() if values}
    run.update(get_item_calls=calls["GetItem"], get_items_per_lookup=calls["GetItem"] / len(plan))
    print(f"  pointer_ttl_s={run['pointer_ttl_s']:g}: p50 {run['latency']['p50_ms']:.2f} ms", flush=True)
    return {**run, "wrong_answers": wrong, "load_after": c.load_avg()}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = c.parser(__doc__, "serving")
    p.add_argument("--users", type=int, default=None, help="users loaded (100,000; quick 5,000)")
    p.add_argument("--lookups", type=int, default=None, help="lookups per pointer setting (10,000; 2,000)")
    args, doc = c.begin("serving", p, argv)
    users = args.users or (5_000 if args.quick else 100_000)
    count = args.lookups or (2_000 if args.quick else 10_000)  # 10,000 x 2 take ~2 min: too long for quick
    no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1"]))
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = no_proxy
    lists, expires = synthetic_lists(users, args.seed), int(time.time()) + 14 * 86_400
    encoded = [encode_list(user_key(VERSION, entry.user_id), entry.ranked, expires) for entry in lists]
    sizes, units = [item_size(item) for item in encoded], Counter(write_units(item) for item in encoded)
    doc["data"] = {"users": users, "items_per_list": ITEMS, "catalogue": CATALOGUE, "bytes_min": min(sizes),
                   "bytes_mean": sum(sizes) / len(sizes), "bytes_max": max(sizes),
                   "write_units": {str(k): v for k, v in sorted(units.items())}}  # fmt: skip
    doc["loads"] = []
    for threads in THREADS:
        with local_dynamodb(args.work) as endpoint:
            doc["loads"].append(load_once(endpoint, lists, threads, expires))
            if threads != THREADS[-1]:
                continue
            admin = client(endpoint)  # the version marked loaded and made live, then the lookups
            marker = finish_load(admin, endpoint["table"], VERSION, popularity=popularity_of(lists),
                                 lists_written=users, lists_expected=users, expires_at=expires)  # fmt: skip
            moved = switch(admin, endpoint["table"], VERSION, now_epoch=int(time.time()), by="bench_serving")
            if not moved.moved:
                raise RuntimeError(f"the pointer did not move to {VERSION}: {moved.reason}")
            plan = lookup_plan(users, count, UNKNOWN_SHARE, args.seed)  # the same users, same order, for both
            warmup, rows = lookup_plan(users, WARMUP, UNKNOWN_SHARE, args.seed + 1), []
            for ttl in ({}, {"pointer_ttl_s": 0.0}):  # {}: Recommender's default pointer_ttl_s
                reader = client(endpoint)
                recommender = Recommender(endpoint["table"], client=reader, **ttl)
                rows.append(time_lookups(recommender, reader, plan, warmup))
            doc["lookups"] = {"marker": {"lists": marker.lists, "popularity_items": marker.popularity_items},
                              "unknown_share": UNKNOWN_SHARE, "warmup": WARMUP, "rows": rows}  # fmt: skip
    doc["endpoint"] = {"server": "python -m local_dynamodb.server (moto's DynamoDB), loopback, own state",
                       "table": endpoint["table"], "version": VERSION}  # fmt: skip
    last = doc["loads"][-1]["counts"]
    doc["capacity"] = capacity_plan(last["write_units"] / last["lists"])
    return c.save(doc, args)


if __name__ == "__main__":
    sys.exit(main())
