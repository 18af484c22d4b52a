"""``python -m bench``: run every benchmark and print (and save) the figures.

Spark runs as real ``spark serve`` subprocesses (one node, or N on one PostgreSQL), the fake
LangFlow as another, and this process generates the load, so they do not share an event loop;
on a small machine they do share the CPU cores, which the report states. Every figure is a
median over repeated runs.

Examples:
  python -m bench                                   # SQLite, one node
  python -m bench --store postgres --nodes 2        # a fresh schema on the local server
  python -m bench --compare --nodes 2               # SQLite, then PostgreSQL; with ratios
  python -m bench --quick --compare                 # check the harness in a minute
  python -m bench --http-only --server asyncio      # lists, health, run-now on plain uvicorn
  python -m bench --http-only --server granian      # the same on granian
"""

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report, scenarios
from bench.baseline import PAGE_PATH, SQLITE_URL
from bench.load import LoadResult, run_load
from bench.postgres import DEFAULT_SERVER, BenchSchema, PostgresAccess
from bench.processes import (
    SERVERS,
    BaselineProcess,
    Cluster,
    FakeLangflowProcess,
    SparkProcess,
    help_seconds,
)
from bench.store import SqliteAccess, StoreAccess

RESULTS = Path(__file__).parent / "results"


def parse_arguments() -> argparse.Namespace:
    """Command-line options: which store, how many nodes, how long and how often to measure."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite",
                        help="the store the nodes share (default sqlite)")
    parser.add_argument("--nodes", type=int, default=1,
                        help="spark serve processes on the store; load is spread over them "
                             "round-robin (default 1)")
    parser.add_argument("--database-url", default=DEFAULT_SERVER,
                        help="PostgreSQL server to create a fresh schema in, dropped "
                             f"afterwards (default {DEFAULT_SERVER})")
    parser.add_argument("--pool-size", type=int, default=None,
                        help="SPARK_DATABASE_POOL_SIZE of each node (default: Spark's)")
    parser.add_argument("--compare", action="store_true",
                        help="measure SQLite (one node), then PostgreSQL (--nodes), and "
                             "report both with their ratios")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="duration of one load run (default 3)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="repeats of each measurement; medians are reported (default 3)")
    parser.add_argument("--tasks", type=int, default=100_000,
                        help="tasks in the store for the large-store lists (default 100000)")
    parser.add_argument("--schedules", type=int, default=1000,
                        help="schedules due in the same second (default 1000)")
    parser.add_argument("--server", choices=SERVERS, default="auto",
                        help="auto: what spark serve picks (uvloop and httptools when "
                             "installed); asyncio: plain uvicorn (asyncio and h11); granian: "
                             "granian's defaults; for both Spark and the bare Litestar baseline")
    parser.add_argument("--http-only", action="store_true",
                        help="only the HTTP figures on 1,000 tasks: the baseline, the lists, "
                             "/health and run-now (no start-up, lag or large store)")
    parser.add_argument("--quick", action="store_true",
                        help="one short repeat of everything, to check the harness")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; do not write bench/results/<date>.md")
    return parser.parse_args()


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the report."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def database(store: str, server_url: str) -> Iterator[str | None]:
    """The ``SPARK_DATABASE_URL`` for a fresh store: ``None`` (each node's own SQLite file) or
    a new PostgreSQL schema, dropped on the way out."""
    if store == "sqlite":
        yield None
        return
    schema = BenchSchema(server_url)
    try:
        yield schema.url
    finally:
        schema.drop()


def start_up(store: str, args: argparse.Namespace) -> dict[str, float]:
    """Time to the first healthy answer and idle RSS of a fresh server on a fresh store
    (medians)."""
    healthy, rss = [], []
    for _ in range(max(args.repeats, 5)):
        with database(store, args.database_url) as url:
            spark = SparkProcess(database_url=url, pool_size=args.pool_size)
            try:
                healthy.append(spark.seconds_to_healthy)
                time.sleep(2.0)  # let start-up settle: the idle state, not the start-up peak
                rss.append(spark.rss())
            finally:
                spark.stop()
    return {"healthy_s": statistics.median(healthy),
            "rss_fresh_mb": statistics.median(rss) / 2**20}


async def under_load(args: argparse.Namespace, store: str, nodes: int,
                     figures: dict[str, Any]) -> None:
    """Everything measured on long-running nodes with a catalogue of 100 workflows."""
    with database(store, args.database_url) as url:
        fake = FakeLangflowProcess(flows=100)
        try:
            cluster = Cluster.start(nodes, database_url=url, pool_size=args.pool_size,
                                    server=args.server)
            # The bare run is recorded in the same store: the PostgreSQL, or a SQLite file of
            # its own beside the node's (removed with it).
            record_in = url or f"{SQLITE_URL}{cluster.first.data_dir / 'bare-runs.db'}"
            baseline = BaselineProcess(server=args.server, forward_to=fake, record_in=record_in)
            try:
                access: StoreAccess = (PostgresAccess(url) if url is not None
                                       else SqliteAccess(cluster.first.database_path))
                await _measure(args, cluster, fake, baseline=baseline, access=access,
                               figures=figures)
            finally:
                baseline.stop()
                cluster.stop()
        finally:
            fake.stop()


async def _measure(args: argparse.Namespace, cluster: Cluster, fake: FakeLangflowProcess, *,
                   baseline: BaselineProcess, access: StoreAccess,
                   figures: dict[str, Any]) -> None:
    log("syncing 100 workflows from the fake LangFlow")
    workflow_ids = await scenarios.set_up_catalogue(cluster.first, fake, 100)
    access.seed_tasks(workflow_ids, 1000)
    await asyncio.sleep(2.0)
    figures["rss_catalogue_mb"] = cluster.rss() / 2**20
    lists: dict[str, object] = {}
    figures["lists"] = lists
    await measure_lists(args, cluster, baseline, lists, "1k")

    log("run-now against the fake, the fake called directly, and the bare Litestar run")
    runs: dict[str, object] = {}
    claims: dict[str, object] = {}
    figures["runs"], figures["claims"] = runs, claims
    for connections in (1, 4, 16):
        runs[f"direct_{connections}"] = await scenarios.repeated(
            scenarios.direct_request(fake), connections=connections,
            seconds=args.seconds, repeats=args.repeats)
        runs[f"bare_{connections}"] = bare = await scenarios.repeated(
            scenarios.bare_run_request(baseline.url), connections=connections,
            seconds=args.seconds, repeats=args.repeats)
        if baseline.records:
            runs[f"recorded_{connections}"] = await scenarios.repeated(
                scenarios.recorded_run_request(baseline.url), connections=connections,
                seconds=args.seconds, repeats=args.repeats)
        # One node at concurrency 1, as before; from 4 on, round-robin over the nodes.
        nodes = cluster.nodes if connections > 1 else cluster.nodes[:1]
        results = await scenarios.load_runs(
            scenarios.run_request(Cluster(nodes), workflow_ids[0]),
            connections=connections, seconds=args.seconds, repeats=args.repeats)
        runs[f"spark_{connections}"] = summary = scenarios.summarise(results)
        claims[f"spark_{connections}"] = claim = scenarios.claim_latency(access, results)
        log(f"  c={connections}: spark {summary.per_second:.0f} runs/s (bare run "
            f"{bare.per_second:.0f}), claim-to-start "
            f"p50 {claim.p50_ms:.1f} ms p99 {claim.p99_ms:.1f} ms")
    if args.http_only:
        return

    log(f"schedule lag: {args.schedules} one-time schedules due in the same second")
    figures["lag"] = lag = await scenarios.schedule_lag(
        cluster, access, workflow_ids, schedules=args.schedules, rounds=args.repeats)
    log(f"  p50 {lag.p50_s:.2f} s, p99 {lag.p99_s:.2f} s")

    log(f"seeding the store up to {args.tasks} tasks")
    began = time.perf_counter()
    added = access.seed_tasks(workflow_ids, args.tasks)
    figures["seed_s"] = time.perf_counter() - began
    log(f"  added {added} tasks in {figures['seed_s']:.1f} s")
    figures["tasks_in_store"] = access.count_tasks()
    if isinstance(access, PostgresAccess):
        figures["stats_agree"] = access.stats_agree()
    await measure_lists(args, cluster, baseline, lists, "100k")
    await asyncio.sleep(3.0)
    figures["rss_after_load_mb"] = cluster.rss() / 2**20


async def measure_lists(args: argparse.Namespace, cluster: Cluster, baseline: BaselineProcess,
                        lists: dict[str, object], size: str) -> None:
    """The list endpoints and ``/health`` at 1 connection (first node) and 16 (all nodes),
    each paired with the bare Litestar baseline: every repeat loads the baseline, then the
    endpoint, so a ratio divides two figures taken seconds apart, under the same background
    load; ``ratio_<name>_<size>_<connections>`` is the median of the per-repeat ratios, and
    ``baseline_<size>_<connections>`` summarises every baseline run of the size."""
    baselines: dict[int, list[LoadResult]] = {1: [], 16: []}
    for name, path, items in (("workflows", "/api/v1/workflows", 50),
                              ("workflows100", "/api/v1/workflows?limit=100", 100),
                              ("tasks", "/api/v1/tasks?limit=100", 100),
                              ("health", "/health", None)):
        for connections in (1, 16):
            nodes = cluster if connections > 1 else Cluster(cluster.nodes[:1])
            requests = (scenarios.health_request(nodes) if items is None
                        else scenarios.list_request(nodes, path, items))
            paired: list[tuple[LoadResult, LoadResult]] = []
            for _ in range(args.repeats):
                base = await run_load(scenarios.baseline_request(baseline.url),
                                      connections=connections, seconds=args.seconds)
                answer = await run_load(requests, connections=connections, seconds=args.seconds)
                paired.append((base, answer))
            baselines[connections] += [base for base, _ in paired]
            key = f"{name}_{size}_{connections}"
            lists[key] = summary = scenarios.summarise([answer for _, answer in paired])
            lists[f"ratio_{key}"] = ratio = statistics.median(
                answer.per_second / base.per_second for base, answer in paired)
            log(f"  GET {path} ({size} tasks, c={connections}): "
                f"{summary.per_second:.0f} req/s, p50 {summary.p50_ms:.1f} ms, "
                f"{ratio:.2f} x the bare page in the same rounds")
    for connections, results in baselines.items():
        lists[f"baseline_{size}_{connections}"] = summary = scenarios.summarise(results)
        log(f"  GET {PAGE_PATH} ({size} tasks, c={connections}): "
            f"{summary.per_second:.0f} req/s over {len(results)} runs")


def measure_store(args: argparse.Namespace, store: str, nodes: int) -> dict[str, Any]:
    """Every figure of one store with ``nodes`` nodes."""
    figures: dict[str, Any] = {"store": store, "nodes": nodes, "pool_size": args.pool_size,
                               "server": args.server, "http_only": args.http_only}
    if not args.http_only:
        log(f"{store}, {nodes} node(s): start-up time to healthy, idle memory")
        figures.update(start_up(store, args))
    asyncio.run(under_load(args, store, nodes, figures))
    return figures


def results_name(date: str, stores: list[dict[str, Any]]) -> str:
    """``<date>.md`` for the default (SQLite, one node), else named after the stores."""
    labels = [f"{s['store']}" + (f"-{s['nodes']}-nodes" if s["nodes"] > 1 else "")
              for s in stores]
    name = date if labels == ["sqlite"] else f"{date}-{'-vs-'.join(labels)}"
    if stores[0].get("http_only"):
        name += f"-http-{stores[0]['server']}"
    return f"{name}.md"


def main() -> None:
    """Measure, print the report, and write it to ``bench/results/``."""
    args = parse_arguments()
    if args.quick:
        args.seconds, args.repeats = 1.0, 1
        args.tasks, args.schedules = min(args.tasks, 10_000), min(args.schedules, 200)
    began = time.perf_counter()
    figures: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "seconds": args.seconds,
        "repeats": args.repeats,
    }
    log("spark --help wall time")
    figures["help_s"] = statistics.median(help_seconds() for _ in range(max(args.repeats, 5)))
    plan = [("sqlite", 1), ("postgres", args.nodes)] if args.compare else [
        (args.store, args.nodes)]
    figures["stores"] = [measure_store(args, store, nodes) for store, nodes in plan]
    figures["bench_minutes"] = (time.perf_counter() - began) / 60
    text = report.render(figures)
    print(text)
    if not args.no_write and not args.quick:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / results_name(figures["date"], figures["stores"])
        path.write_text(text)
        log(f"written to {path}")


if __name__ == "__main__":
    main()
