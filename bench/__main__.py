"""``python -m bench``: run every benchmark and print (and save) the figures.

Spark runs as a real ``spark serve`` subprocess, the fake LangFlow as another, and this process
generates the load, so the three do not share an event loop; on a small machine they do share
the CPU cores, which the report states. Every figure is a median over repeated runs.
"""

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import report, scenarios, store
from bench.processes import FakeLangflowProcess, SparkProcess, help_seconds

RESULTS = Path(__file__).parent / "results"


def parse_arguments() -> argparse.Namespace:
    """Command-line options: how long and how often to measure."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="duration of one load run (default 3)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="repeats of each measurement; medians are reported (default 3)")
    parser.add_argument("--tasks", type=int, default=100_000,
                        help="tasks in the store for the large-store lists (default 100000)")
    parser.add_argument("--schedules", type=int, default=1000,
                        help="schedules due in the same second (default 1000)")
    parser.add_argument("--quick", action="store_true",
                        help="one short repeat of everything, to check the harness")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; do not write bench/results/<date>.md")
    return parser.parse_args()


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the report."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def start_up(repeats: int) -> dict[str, float]:
    """``spark --help`` wall time, time to the first healthy answer, and idle RSS of a fresh
    server (medians)."""
    helps = [help_seconds() for _ in range(max(repeats, 5))]
    healthy, rss = [], []
    for _ in range(max(repeats, 5)):
        spark = SparkProcess()
        try:
            healthy.append(spark.seconds_to_healthy)
            time.sleep(2.0)  # let start-up settle: the idle state, not the start-up peak
            rss.append(spark.rss())
        finally:
            spark.stop()
    return {"help_s": statistics.median(helps), "healthy_s": statistics.median(healthy),
            "rss_fresh_mb": statistics.median(rss) / 2**20}


async def under_load(args: argparse.Namespace, figures: dict[str, object]) -> None:
    """Everything measured on one long-running server with a catalogue of 100 workflows."""
    fake = FakeLangflowProcess(flows=100)
    spark = SparkProcess()
    try:
        log("syncing 100 workflows from the fake LangFlow")
        workflow_ids = await scenarios.set_up_catalogue(spark, fake, 100)
        store.seed_tasks(spark.database_path, workflow_ids, 1000)
        await asyncio.sleep(2.0)
        figures["rss_catalogue_mb"] = spark.rss() / 2**20
        lists: dict[str, object] = {}
        figures["lists"] = lists
        await measure_lists(args, spark, lists, "1k")

        log("run-now against the fake, and the fake called directly")
        runs: dict[str, object] = {}
        figures["runs"] = runs
        for connections in (1, 4, 16):
            runs[f"direct_{connections}"] = await scenarios.repeated(
                scenarios.direct_request(fake), connections=connections,
                seconds=args.seconds, repeats=args.repeats)
            runs[f"spark_{connections}"] = await scenarios.repeated(
                scenarios.run_request(spark, workflow_ids[0]), connections=connections,
                seconds=args.seconds, repeats=args.repeats)
            log(f"  c={connections}: spark {runs[f'spark_{connections}'].per_second:.0f} runs/s")

        log(f"schedule lag: {args.schedules} one-time schedules due in the same second")
        figures["lag"] = await scenarios.schedule_lag(
            spark, workflow_ids, schedules=args.schedules, rounds=args.repeats)

        log(f"seeding the store up to {args.tasks} tasks")
        began = time.perf_counter()
        added = store.seed_tasks(spark.database_path, workflow_ids, args.tasks)
        log(f"  added {added} tasks in {time.perf_counter() - began:.1f} s")
        figures["tasks_in_store"] = store.count_tasks(spark.database_path)
        await measure_lists(args, spark, lists, "100k")
        await asyncio.sleep(3.0)
        figures["rss_after_load_mb"] = spark.rss() / 2**20
    finally:
        spark.stop()
        fake.stop()


async def measure_lists(args: argparse.Namespace, spark: SparkProcess,
                        lists: dict[str, object], size: str) -> None:
    """The two list endpoints at 1 and 16 connections."""
    for name, path, items in (("workflows", "/api/v1/workflows", 50),
                              ("tasks", "/api/v1/tasks?limit=100", 100)):
        for connections in (1, 16):
            summary = await scenarios.repeated(
                scenarios.list_request(spark, path, items), connections=connections,
                seconds=args.seconds, repeats=args.repeats)
            lists[f"{name}_{size}_{connections}"] = summary
            log(f"  GET {path} ({size} tasks, c={connections}): "
                f"{summary.per_second:.0f} req/s, p50 {summary.p50_ms:.1f} ms")


def main() -> None:
    """Measure, print the report, and write it to ``bench/results/<date>.md``."""
    args = parse_arguments()
    if args.quick:
        args.seconds, args.repeats = 1.0, 1
        args.tasks, args.schedules = min(args.tasks, 10_000), min(args.schedules, 200)
    began = time.perf_counter()
    figures: dict[str, object] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "seconds": args.seconds,
        "repeats": args.repeats,
    }
    log("start-up: spark --help, time to healthy, idle memory")
    figures.update(start_up(args.repeats))
    asyncio.run(under_load(args, figures))
    figures["bench_minutes"] = (time.perf_counter() - began) / 60
    text = report.render(figures)
    print(text)
    if not args.no_write and not args.quick:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{figures['date']}.md"
        path.write_text(text)
        log(f"written to {path}")


if __name__ == "__main__":
    main()
