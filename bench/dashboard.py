"""``python -m bench.dashboard``: how long each dashboard page takes to render over a large
store (100,000 tasks by default), as medians of sequential requests.

A real ``spark serve`` on a fresh store (SQLite, or a fresh PostgreSQL schema with ``--store
postgres``), the fake LangFlow of ``bench.fake_langflow`` as its source with 20 synced
workflows and 10 schedules, then the tasks seeded straight into the database as the other
benches do (90 % completed, 10 % failed, over the past 30 days; ``--recent`` puts them all in
the last 24 hours instead, the overview's worst case). Each page is requested one at a time
over one keep-alive connection by a signed-in client, after a warm-up: the time is the whole
round trip on loopback, an upper bound of the server's render time.

Examples:
  python -m bench.dashboard
  python -m bench.dashboard --store postgres --tasks 100000 --requests 50
"""

import argparse
import asyncio
import contextlib
import random
import re
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx

import bench.store
from bench.__main__ import database
from bench.postgres import DEFAULT_SERVER, PostgresAccess
from bench.processes import FakeLangflowProcess, SparkProcess
from bench.scenarios import set_up_catalogue
from bench.store import SqliteAccess, StoreAccess
from spark_core.models import Task

BUDGET_MS = 50.0
"""What the issue asks of every page with 100,000 tasks stored."""
WORKFLOWS = 20
SCHEDULES = 10


def parse_arguments() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--database-url", default=DEFAULT_SERVER)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30,
                        help="requests per page after the warm-up (default 30)")
    parser.add_argument("--recent", action="store_true",
                        help="seed every task in the last 24 hours")
    return parser.parse_args()


def sign_in(client: httpx.Client, key: str) -> None:
    """Sign ``client`` in to the dashboard with ``key`` (the cookie jar keeps the session)."""
    form = client.get("/ui/login").text
    token = re.search(r'name="_csrf" value="([^"]*)"', form)
    assert token is not None
    answer = client.post("/ui/login", data={"_csrf": token.group(1), "api_key": key})
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in failed: {answer.status_code}")


def pages(client: httpx.Client, key: str) -> list[tuple[str, str]]:
    """(name, path) of every page and fragment measured, with real ids from the server."""
    api = {"X-API-Key": key}
    workflow = client.get("/api/v1/workflows", headers=api, params={"limit": 1}).json()
    workflow_id = workflow["items"][0]["id"]
    task_id = client.get("/api/v1/tasks", headers=api, params={"limit": 1}).json()["items"][0]["id"]
    schedule_id = client.get("/api/v1/schedules", headers=api,
                             params={"limit": 1}).json()["items"][0]["id"]
    return [
        ("overview", "/ui/"),
        ("overview counts (live fragment)", "/ui/fragments/overview-counts"),
        ("sources", "/ui/sources/"),
        ("workflows", "/ui/workflows/"),
        ("workflow", f"/ui/workflows/{workflow_id}"),
        ("remote flows (asks the source)", "/ui/workflows/remote"),
        ("schedules", "/ui/schedules/"),
        ("schedule with ledger", f"/ui/schedules/{schedule_id}"),
        ("schedule form", "/ui/schedules/new"),
        ("cron preview (JSON)", "/ui/schedules/preview?schedule_expr=*/5+*+*+*+*"),
        ("tasks", "/ui/tasks/"),
        ("tasks, page 100", "/ui/tasks/?offset=4950"),
        ("tasks by status", "/ui/tasks/?status=failed"),
        ("tasks by workflow", f"/ui/tasks/?workflow_id={workflow_id}"),
        ("tasks, text search", "/ui/tasks/?q=HTTP+500"),
        ("task", f"/ui/tasks/{task_id}"),
        ("task row (live fragment)", f"/ui/fragments/task-row/{task_id}"),
        ("bulk retry count", "/ui/tasks/bulk?action=retry&status=failed"),
    ]


def measure(client: httpx.Client, path: str, requests: int,
            write: Callable[[], None] | None = None) -> list[float]:
    """Milliseconds of ``requests`` sequential GETs of ``path`` (after 3 unmeasured); with
    ``write``, each GET follows a write to the store, so no answer kept by the store's read
    memo can be reused: the cold cost."""
    times = []
    for number in range(requests + 3):
        if write is not None:
            write()
        started = time.perf_counter()
        answer = client.get(path, headers={"Accept": "text/html"})
        elapsed = (time.perf_counter() - started) * 1000
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path} answered {answer.status_code}")
        if number >= 3:
            times.append(elapsed)
    return times


def store_write(client: httpx.Client, key: str, workflow_id: str) -> Callable[[], None]:
    """A small write through the API (a workflow's concurrency limit set, then cleared), which
    changes the store under every read memo."""
    flip = iter(range(10**9))

    def write() -> None:
        limit = None if next(flip) % 2 else 1000
        answer = client.patch(f"/api/v1/workflows/{workflow_id}", headers={"X-API-Key": key},
                              json={"max_concurrency": limit})
        if answer.status_code != 200:
            raise RuntimeError(f"PATCH workflow answered {answer.status_code}")

    return write


@contextlib.contextmanager
def recent_seeding() -> Iterator[None]:
    """Make ``bench.store.seeded_task`` put every task in the last 24 hours."""
    original = bench.store.seeded_task
    clock = datetime.now(UTC)

    def recent(workflow_id: str, when: datetime, *, failed: bool,
               rng: random.Random) -> Task:
        moved = clock - timedelta(seconds=(clock - when).total_seconds() % 86_000)
        return original(workflow_id, moved, failed=failed, rng=rng)

    bench.store.seeded_task = recent
    try:
        yield
    finally:
        bench.store.seeded_task = original


Figures = dict[str, tuple[list[float], list[float]]]
"""Per page: the cold times (after a write) and the warm ones (the store unchanged)."""


def run(args: argparse.Namespace) -> Figures:
    """Set up the server and store, seed, measure every page."""
    fake = FakeLangflowProcess(WORKFLOWS)
    try:
        with database(args.store, args.database_url) as url:
            spark = SparkProcess(database_url=url)
            try:
                ids = asyncio.run(set_up_catalogue(spark, fake, WORKFLOWS))
                access: StoreAccess = (SqliteAccess(spark.database_path) if url is None
                                       else PostgresAccess(url))
                with httpx.Client(base_url=spark.url, timeout=60) as client:
                    for number in range(SCHEDULES):
                        client.post("/api/v1/schedules", headers={"X-API-Key": spark.api_key},
                                    json={"workflow_id": ids[number % len(ids)],
                                          "schedule_type": "cron",
                                          "schedule_expr": f"{number} 3 * * *"})
                    started = time.perf_counter()
                    with recent_seeding() if args.recent else contextlib.nullcontext():
                        added = access.seed_tasks(ids, args.tasks)
                    print(f"seeded {added} tasks in {time.perf_counter() - started:.1f} s "
                          f"({access.name})")
                    sign_in(client, spark.api_key)
                    write = store_write(client, spark.api_key, ids[-1])
                    return {name: (measure(client, path, args.requests, write),
                                   measure(client, path, args.requests))
                            for name, path in pages(client, spark.api_key)}
            finally:
                spark.stop()
    finally:
        fake.stop()


def report(results: Figures, args: argparse.Namespace) -> str:
    """A Markdown table of the medians and 95th percentiles, cold and warm."""
    lines = [f"Dashboard pages over {args.tasks:,} tasks ({args.store}"
             f"{', all in the last 24 h' if args.recent else ''}), {args.requests} sequential "
             "requests each, round trip on loopback; cold: each after a write to the store "
             "(no kept answer reused), warm: the store unchanged:", "",
             "| page | cold median ms | cold p95 ms | warm median ms | cold within 50 ms |",
             "|---|---:|---:|---:|:---:|"]
    for name, (cold, warm) in results.items():
        median = statistics.median(cold)
        p95 = sorted(cold)[max(0, int(len(cold) * 0.95) - 1)]
        lines.append(f"| {name} | {median:.1f} | {p95:.1f} | {statistics.median(warm):.1f} "
                     f"| {'yes' if median <= BUDGET_MS else 'NO'} |")
    return "\n".join(lines)


def main() -> None:
    """Run and print the table."""
    args = parse_arguments()
    print(report(run(args), args))


if __name__ == "__main__":
    main()

