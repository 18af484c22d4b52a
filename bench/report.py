"""The benchmark report: Markdown tables of the figures, the targets and whether they hold."""

from typing import Any

from bench.load import Summary
from bench.scenarios import Lag

ORIGINAL = {
    "workflows": "18 req/s (0.4 req/s with 1,600 tasks)",
    "tasks": "66 req/s",
    "runs": "36-48 runs/s, 26 ms added per run",
    "lag": "1.3 s median for 50 schedules",
    "rss": "490 MB across its processes",
    "help": "2.6 s",
    "healthy": "4.7 s",
}


def render(figures: dict[str, Any]) -> str:
    """The whole report as Markdown."""
    lines = [
        f"# Spark benchmarks, {figures['date']}",
        "",
        f"Machine: {figures['cores']} cores, Python {figures['python']}, "
        f"{figures['platform']}. Every figure is the median of {figures['repeats']} runs "
        f"({figures['seconds']:g} s of closed-loop load each, after 0.5 s of warm-up). "
        "`spark serve` (embedded SQLite, default settings), the fake LangFlow and the load "
        "generator (Python, aiohttp) are three processes sharing these cores, so the load "
        "generator takes CPU the server would otherwise have; figures are a floor, and noisy "
        "on a shared machine. Run `nox -s bench` to reproduce.",
        "",
        *_lists(figures["lists"], figures.get("tasks_in_store", 0)),
        "",
        *_runs(figures["runs"]),
        "",
        *_lag(figures["lag"]),
        "",
        *_process(figures),
        "",
        *_targets(figures),
        "",
        f"The whole bench took {figures['bench_minutes']:.1f} minutes.",
        "",
    ]
    return "\n".join(lines)


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _summary_cells(summary: Summary) -> tuple[str, str, str]:
    return (f"{summary.per_second:,.0f}", f"{summary.p50_ms:.1f}", f"{summary.p99_ms:.1f}")


def _lists(lists: dict[str, Summary], tasks: int) -> list[str]:
    lines = ["## List endpoints", "",
             "The workflow list answers its default page (50 of the 100 workflows, each with "
             "its flow definition and run statistics); the task list answers 100 tasks.", "",
             _row("endpoint", "store", "connections", "req/s", "p50 ms", "p99 ms", "errors"),
             _row(*["---"] * 7)]
    stores = {"1k": "100 workflows, 1,000 tasks", "100k": f"100 workflows, {tasks:,} tasks"}
    paths = {"workflows": "GET /api/v1/workflows",
             "tasks": "GET /api/v1/tasks?limit=100"}
    for name, path in paths.items():
        for size, label in stores.items():
            for connections in (1, 16):
                summary = lists.get(f"{name}_{size}_{connections}")
                if summary is not None:
                    lines.append(_row(path, label, connections, *_summary_cells(summary),
                                      summary.errors))
    lines += ["", f"Original service: workflows {ORIGINAL['workflows']}; "
                  f"tasks {ORIGINAL['tasks']}."]
    return lines


def _runs(runs: dict[str, Summary]) -> list[str]:
    lines = ["## Run now (`POST /api/v1/workflows/{id}/run`, waiting for the finished task)", "",
             _row("concurrency", "Spark runs/s", "p50 ms", "p99 ms", "errors",
                  "fake direct req/s", "direct p50 ms"),
             _row(*["---"] * 7)]
    for connections in (1, 4, 16):
        spark, direct = runs[f"spark_{connections}"], runs[f"direct_{connections}"]
        lines.append(_row(connections, *_summary_cells(spark), spark.errors,
                          f"{direct.per_second:,.0f}", f"{direct.p50_ms:.2f}"))
    lines += ["", f"Added latency per run at concurrency 1 (Spark p50 - direct p50): "
                  f"**{added_ms(runs):.1f} ms**. Original service: {ORIGINAL['runs']}."]
    return lines


def added_ms(runs: dict[str, Summary]) -> float:
    """Spark's p50 minus the fake's own p50 at concurrency 1."""
    return runs["spark_1"].p50_ms - runs["direct_1"].p50_ms


def _lag(lag: Lag) -> list[str]:
    return [
        f"## Schedule lag ({lag.schedules:,} one-time schedules due in the same second)", "",
        "started_at - scheduled_for of each task, median over rounds:", "",
        _row("p50 s", "p99 s", "max s", "task created p99 s", "never started"),
        _row(*["---"] * 5),
        _row(f"{lag.p50_s:.3f}", f"{lag.p99_s:.3f}", f"{lag.max_s:.3f}",
             f"{lag.created_p99_s:.3f}", lag.missing),
        "", f"Original service: {ORIGINAL['lag']}.",
    ]


def _process(figures: dict[str, Any]) -> list[str]:
    return [
        "## Process", "",
        _row("measure", "value", "original service"), _row("---", "---", "---"),
        _row("`spark --help` wall time", f"{figures['help_s']:.2f} s", ORIGINAL["help"]),
        _row("start to first healthy answer", f"{figures['healthy_s']:.2f} s",
             ORIGINAL["healthy"]),
        _row("idle RSS, fresh server", f"{figures['rss_fresh_mb']:.0f} MB", ORIGINAL["rss"]),
        _row("idle RSS, 100 workflows synced", f"{figures['rss_catalogue_mb']:.0f} MB", ""),
        _row("idle RSS, after all the load above", f"{figures['rss_after_load_mb']:.0f} MB", ""),
    ]


def targets(figures: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(target, measured, holds) for each target of issue #7."""
    lists, runs, lag = figures["lists"], figures["runs"], figures["lag"]
    slowest_list = min(lists.values(), key=lambda s: s.per_second)
    list_16 = min((s for key, s in lists.items() if key.endswith("_16")),
                  key=lambda s: s.per_second)
    best_runs = max(runs[f"spark_{c}"].per_second for c in (1, 4, 16))
    return [
        (f"list endpoints ≥ 1,000 req/s (16 connections, slowest case, up to "
         f"{figures.get('tasks_in_store', 0):,} tasks)",
         f"{list_16.per_second:,.0f} req/s (slowest at 1 connection: "
         f"{slowest_list.per_second:,.0f})", list_16.per_second >= 1000),
        ("added latency per run ≤ 2 ms at concurrency 1", f"{added_ms(runs):.1f} ms",
         added_ms(runs) <= 2),
        ("≥ 500 runs/s against the fake", f"{best_runs:,.0f} runs/s", best_runs >= 500),
        (f"schedule lag p99 ≤ 1 s ({lag.schedules:,} schedules)", f"{lag.p99_s:.2f} s",
         lag.p99_s <= 1),
        ("idle RSS ≤ 80 MB", f"{figures['rss_catalogue_mb']:.0f} MB",
         figures["rss_catalogue_mb"] <= 80),
        ("`spark --help` ≤ 0.3 s", f"{figures['help_s']:.2f} s", figures["help_s"] <= 0.3),
        ("healthy ≤ 1 s after start", f"{figures['healthy_s']:.2f} s",
         figures["healthy_s"] <= 1),
    ]


def _targets(figures: dict[str, Any]) -> list[str]:
    lines = ["## Targets", "", _row("target", "measured", "holds"), _row("---", "---", "---")]
    lines += [_row(target, measured, "yes" if holds else "**no**")
              for target, measured, holds in targets(figures)]
    return lines
