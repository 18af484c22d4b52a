"""The benchmark report: Markdown tables of the figures, the targets and whether they hold.

``figures`` holds the machine and one entry per measured store (``figures["stores"]``); with
SQLite and PostgreSQL in one invocation, a comparison table gives PostgreSQL's ratios.
"""

from typing import Any

from bench.load import Summary
from bench.scenarios import ClaimLatency, Lag

ORIGINAL = {
    "workflows": "18 req/s (0.4 req/s with 1,600 tasks)",
    "tasks": "66 req/s",
    "runs": "36-48 runs/s, 26 ms added per run",
    "lag": "1.3 s median for 50 schedules",
    "rss": "490 MB across its processes",
    "help": "2.6 s",
    "healthy": "4.7 s",
}

SQLITE_BASELINE = {
    "workflows_1k_16": 559, "workflows_100k_16": 182, "tasks_1k_16": 494,
    "tasks_100k_16": 462, "runs_16": 538, "added_ms": 2.1, "lag_p99_s": 1.49,
}
"""SQLite figures of the README's Performance table before PostgreSQL (2026-11-29)."""

NOISE = 0.10
"""How far below the SQLite baseline a figure may be and still count as "the same": the
machine is shared and repeated runs of one build differ by about this much."""

LISTS = {"workflows": "GET /api/v1/workflows", "workflows100": "GET /api/v1/workflows?limit=100",
         "tasks": "GET /api/v1/tasks?limit=100"}
HTTP = {"baseline": "bare Litestar: 100 task rows from memory", **LISTS,
        "health": "GET /health"}
"""Every figure of the list table, the bare Litestar baseline first."""


def label(store: dict[str, Any]) -> str:
    """``SQLite`` or ``PostgreSQL, 2 nodes``, with a pool size if one was set."""
    name = {"sqlite": "SQLite", "postgres": "PostgreSQL"}[store["store"]]
    nodes = store["nodes"]
    text = f"{name}, {nodes} node{'s' if nodes > 1 else ''}"
    if store.get("server", "auto") != "auto":
        text += f", {store['server']} server"
    if store.get("pool_size"):
        text += f", pool {store['pool_size']}"
    return text


def render(figures: dict[str, Any]) -> str:
    """The whole report as Markdown."""
    stores = figures["stores"]
    lines = [
        f"# Spark benchmarks, {figures['date']}",
        "",
        f"Machine: {figures['cores']} cores, Python {figures['python']}, "
        f"{figures['platform']}. Every figure is the median of {figures['repeats']} runs "
        f"({figures['seconds']:g} s of closed-loop load each, after 0.5 s of warm-up). "
        f"Measured: {'; '.join(label(s) for s in stores)}. The `spark serve` nodes (default "
        "settings unless stated), the fake LangFlow, PostgreSQL when used, and the load "
        "generator (Python, aiohttp) share these cores, so the load generator takes CPU the "
        "server would otherwise have; figures are a floor, and noisy on a shared machine. "
        "With several nodes, the load generator's connections go to the nodes round-robin "
        "(concurrency 1 uses the first node). Run `nox -s bench` to reproduce.",
        "",
        f"`spark --help` wall time: {figures['help_s']:.2f} s (original service "
        f"{ORIGINAL['help']}).",
        "",
    ]
    for store in stores:
        if store.get("http_only"):
            lines += [f"## {label(store)} (HTTP figures only)", "", *_lists(store), "",
                      *_runs(store), ""]
            continue
        lines += [f"## {label(store)}", "",
                  *_lists(store), "", *_runs(store), "", *_claims(store), "",
                  *_lag(store["lag"]), "", *_process(store), ""]
    sqlite = next((s for s in stores if s["store"] == "sqlite"), None)
    postgres = next((s for s in stores if s["store"] == "postgres"), None)
    if sqlite and postgres:
        lines += [*_comparison(sqlite, postgres), ""]
    lines += [*_issue12(stores, sqlite), ""]
    if not any(store.get("http_only") for store in stores):
        lines += [*_targets(figures, sqlite, postgres), ""]
    lines += [
              f"The whole bench took {figures['bench_minutes']:.1f} minutes.", ""]
    return "\n".join(lines)


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _summary_cells(summary: Summary) -> tuple[str, str, str]:
    return (f"{summary.per_second:,.0f}", f"{summary.p50_ms:.1f}", f"{summary.p99_ms:.1f}")


def _lists(store: dict[str, Any]) -> list[str]:
    lists: dict[str, Summary] = store["lists"]
    lines = ["### List endpoints and health", "",
             "The workflow list answers its default page (50 of the 100 workflows) or, with "
             "`limit=100`, all of them, each with its flow definition and run statistics; the "
             "task list answers 100 tasks. The baseline is a bare Litestar app served the "
             "same way (the same server and settings) answering a page of 100 task-shaped "
             "rows from memory (no store, "
             "middleware or key), measured in the same run at each store size; *x baseline* "
             "is the median, over the repeats, of the endpoint's req/s divided by the "
             "baseline's in the same round (each round loads the baseline, then the "
             "endpoint, at the same connections). The baseline's own row summarises all its "
             "rounds at that size.", "",
             _row("endpoint", "store", "connections", "req/s", "x baseline", "p50 ms",
                  "p99 ms", "errors"),
             _row(*["---"] * 8)]
    sizes = {"1k": "100 workflows, 1,000 tasks",
             "100k": f"100 workflows, {store.get('tasks_in_store', 0):,} tasks"}
    for name, path in HTTP.items():
        for size, size_label in sizes.items():
            for connections in (1, 16):
                summary = lists.get(f"{name}_{size}_{connections}")
                if summary is not None:
                    rate, p50, p99 = _summary_cells(summary)
                    lines.append(_row(path, size_label, connections, rate,
                                      baseline_ratio(lists, name, size, connections), p50,
                                      p99, summary.errors_cell))
    seeded = f"Seeding to {store.get('tasks_in_store', 0):,} tasks took " \
             f"{store.get('seed_s', 0):.1f} s"
    if "stats_agree" in store:
        seeded += (f" (COPY, then VACUUM ANALYZE; workflow_stats "
                   f"{'agree' if store['stats_agree'] else '**disagree**'} with a count)")
    if store.get("http_only"):
        seeded = "HTTP figures only: the store holds 1,000 tasks"
    lines += ["", f"{seeded}. Original service: workflows {ORIGINAL['workflows']}; "
                  f"tasks {ORIGINAL['tasks']}."]
    return lines


def baseline_ratio(lists: dict[str, Any], name: str, size: str, connections: int) -> str:
    """``name``'s req/s over the bare Litestar page's at the same size and connections: the
    median of the ratios of the paired rounds when measured so, else of the medians."""
    if name == "baseline":
        return "1.00"
    paired = lists.get(f"ratio_{name}_{size}_{connections}")
    if paired is not None:
        return f"{paired:.2f}"
    base = lists.get(f"baseline_{size}_{connections}")
    if base is None or not base.per_second:
        return "n/a"
    return f"{lists[f'{name}_{size}_{connections}'].per_second / base.per_second:.2f}"


def _runs(store: dict[str, Any]) -> list[str]:
    runs: dict[str, Summary] = store["runs"]
    recorded = "recorded_1" in runs
    lines = ["### Run now (`POST /api/v1/workflows/{id}/run?wait=true`, waiting for the "
             "finished task)", "",
             "*x baseline*: runs/s over the bare Litestar page's req/s at the same "
             "connections (1,000 tasks; not measured at 4). *Bare run*: the bare Litestar "
             "app's `POST /run/{flow_id}`, sending the run on to the fake through one aiohttp "
             "session and answering with the fake's answer (no store, task, worker or "
             "retry), served the same way: the least a run can cost with this framework, "
             "server and HTTP client; *x bare run* is Spark's runs/s over its runs/s." + (
                 " *Recorded run*: the bare run recorded in the same store (a row "
                 "inserted and committed before the fake is called, its outcome updated and "
                 "committed after, each one statement "
                 + ("through a psycopg pool" if store["store"] == "postgres" else
                    "on the event loop, in a SQLite file of its own in WAL mode with "
                    "synchronous = NORMAL, as Spark opens its own")
                 + "; no index but the primary key, no trigger, lease or worker): the least "
                 "a run recorded in this store can cost; *x recorded* is Spark's runs/s "
                 "over its runs/s." if recorded else ""), ""]
    header = ["concurrency", "Spark runs/s", "x baseline", "x bare run", "p50 ms", "p99 ms",
              "errors", "bare run runs/s", "bare run p50 ms"]
    if recorded:
        header += ["x recorded", "recorded runs/s", "recorded p50 ms"]
    header += ["fake direct req/s", "direct p50 ms"]
    lines += [_row(*header), _row(*["---"] * len(header))]
    for connections in (1, 4, 16):
        spark, direct = runs[f"spark_{connections}"], runs[f"direct_{connections}"]
        bare = runs.get(f"bare_{connections}")
        rate, p50, p99 = _summary_cells(spark)
        cells = [connections, rate, runs_ratio(store, connections),
                 bare_run_ratio(runs, connections), p50, p99, spark.errors_cell,
                 *_rate_and_p50(bare)]
        if recorded:
            cells += [bare_run_ratio(runs, connections, "recorded"),
                      *_rate_and_p50(runs.get(f"recorded_{connections}"))]
        lines.append(_row(*cells, f"{direct.per_second:,.0f}", f"{direct.p50_ms:.2f}"))
    lines += ["", f"Added latency per run at concurrency 1 (Spark p50 - direct p50): "
                  f"**{added_ms(runs):.1f} ms**{_bare_added(runs)}{_recorded_added(runs)}. "
                  f"Original service: {ORIGINAL['runs']}."]
    return lines


def _rate_and_p50(summary: Summary | None) -> tuple[str, str]:
    if summary is None:
        return "n/a", "n/a"
    return f"{summary.per_second:,.0f}", f"{summary.p50_ms:.2f}"


def _bare_added(runs: dict[str, Summary]) -> str:
    """How much of the added latency the bare run adds too (the framework's share)."""
    bare = bare_added_ms(runs)
    if bare is None:
        return ""
    return (f"; the bare run adds {bare:.2f} ms (its p50 - direct p50), so Spark's own work "
            f"adds {added_ms(runs) - bare:.2f} ms")


def _recorded_added(runs: dict[str, Summary]) -> str:
    """How much of the added latency a durable record costs anyway (the database's share)."""
    recorded = bare_added_ms(runs, "recorded")
    if recorded is None:
        return ""
    return (f"; the recorded run adds {recorded:.2f} ms, so Spark adds "
            f"{added_ms(runs) - recorded:.2f} ms over a run recorded in this store")


def runs_ratio(store: dict[str, Any], connections: int) -> str:
    """Run-now runs/s over the bare Litestar page's req/s at ``connections`` (1,000 tasks)."""
    base = store["lists"].get(f"baseline_1k_{connections}")
    if base is None or not base.per_second:
        return "n/a"
    return f"{store['runs'][f'spark_{connections}'].per_second / base.per_second:.2f}"


def bare_run_ratio(runs: dict[str, Summary], connections: int, bare: str = "bare") -> str:
    """Run-now runs/s over the bare Litestar run's (or, with ``bare="recorded"``, the
    recorded run's) at ``connections``."""
    summary = runs.get(f"{bare}_{connections}")
    if summary is None or not summary.per_second:
        return "n/a"
    return f"{runs[f'spark_{connections}'].per_second / summary.per_second:.2f}"


def bare_added_ms(runs: dict[str, Summary], bare: str = "bare") -> float | None:
    """The bare Litestar run's (or the recorded run's) p50 minus the fake's own p50 at
    concurrency 1 (None when not measured)."""
    summary = runs.get(f"{bare}_1")
    return None if summary is None else summary.p50_ms - runs["direct_1"].p50_ms


def issue12_targets(store: dict[str, Any],
                    sqlite: dict[str, Any] | None) -> list[tuple[str, str, bool | None]]:
    """(target, measured, holds or None if not measured) for issue #12: the lists near the
    bare Litestar page, flat in the store's size, PostgreSQL near SQLite; /health; run-now."""
    lists, runs = store["lists"], store["runs"]
    found: list[tuple[str, str, bool | None]] = []
    # The issue asks 0.7 x of SQLite and, of PostgreSQL, "within 20 % of that": 0.56 x here,
    # and within 20 % of SQLite's own ratio below when both were measured.
    floor, whose = (0.7, "") if store["store"] == "sqlite" else (
        0.7 * 0.8, ", within 20 % of SQLite's 0.7 x")
    for name in ("tasks", "workflows100"):
        for size in ("1k", "100k"):
            key = f"{name}_{size}_16"
            if key not in lists:
                continue
            ratio = float(baseline_ratio(lists, name, size, 16))
            found.append((f"{LISTS[name]} ≥ {floor:g} x bare page ({size} tasks, c=16"
                          f"{whose})", f"{lists[key].per_second:,.0f} req/s, {ratio:.2f} x",
                          ratio >= floor))
        if f"{name}_1k_16" in lists and f"{name}_100k_16" in lists:
            # x baseline at each size, each paired with its own baseline rounds: a machine
            # slower at one size than at the other (minutes apart) does not move it
            small = float(baseline_ratio(lists, name, "1k", 16))
            large = float(baseline_ratio(lists, name, "100k", 16))
            flat = large / small
            found.append((f"{LISTS[name]} flat in the store's size (x baseline, 100k / 1k "
                          "≥ 0.9, c=16)", f"{large:.2f} / {small:.2f} = {flat:.2f}",
                          flat >= 1 - NOISE))
        if store["store"] == "postgres" and sqlite is not None:
            for size in ("1k", "100k"):
                key = f"{name}_{size}_16"
                if key in lists and key in sqlite["lists"]:
                    # each store's x baseline was paired with its own baseline rounds, so
                    # their quotient is not moved by the machine's load minutes apart
                    ours = float(baseline_ratio(lists, name, size, 16))
                    theirs = float(baseline_ratio(sqlite["lists"], name, size, 16))
                    ratio = ours / theirs
                    found.append((f"{LISTS[name]} within 20 % of SQLite ({size} tasks, c=16; "
                                  "x baseline over SQLite's x baseline)",
                                  f"{ours:.2f} / {theirs:.2f} = {ratio:.2f}", ratio >= 0.8))
    health = lists.get("health_1k_16")
    if health is not None:
        found.append(("GET /health ≥ 5,000 req/s (c=16)", f"{health.per_second:,.0f} req/s",
                      health.per_second >= 5000))
    found += [
        ("run now: ≤ 1 ms added at concurrency 1",
         f"{added_ms(runs):.1f} ms" + "".join(
             f" (the {name} run: {added:.2f} ms)"
             for name, added in (("bare", bare_added_ms(runs)),
                                 ("recorded", bare_added_ms(runs, "recorded")))
             if added is not None),
         added_ms(runs) <= 1),
        ("run now: ≥ 1,000 runs/s at concurrency 16",
         f"{runs['spark_16'].per_second:,.0f} runs/s" + "".join(
             f" ({bare_run_ratio(runs, 16, name)} x the {name} run's "
             f"{runs[f'{name}_16'].per_second:,.0f})"
             for name in ("bare", "recorded") if f"{name}_16" in runs),
         runs["spark_16"].per_second >= 1000),
    ]
    return found


def _claims(store: dict[str, Any]) -> list[str]:
    claims: dict[str, ClaimLatency] = store["claims"]
    lines = ["### Claim to start (started_at - created_at of the run-now tasks above)", "",
             "Read back from the database after each load run; median over runs of each "
             "run's p50 and p99.", "",
             _row("concurrency", "p50 ms", "p99 ms", "max ms", "tasks", "never started",
                  "unfinished at read-back"),
             _row(*["---"] * 7)]
    for key, claim in claims.items():
        lines.append(_row(key.removeprefix("spark_"), f"{claim.p50_ms:.2f}",
                          f"{claim.p99_ms:.2f}", f"{claim.max_ms:.1f}", f"{claim.runs:,}",
                          claim.never_started, claim.unfinished))
    return lines


def added_ms(runs: dict[str, Summary]) -> float:
    """Spark's p50 minus the fake's own p50 at concurrency 1."""
    return runs["spark_1"].p50_ms - runs["direct_1"].p50_ms


def _lag(lag: Lag) -> list[str]:
    return [
        f"### Schedule lag ({lag.schedules:,} one-time schedules due in the same second)", "",
        "started_at - scheduled_for of each task, median over rounds:", "",
        _row("p50 s", "p99 s", "max s", "task created p99 s", "never started"),
        _row(*["---"] * 5),
        _row(f"{lag.p50_s:.3f}", f"{lag.p99_s:.3f}", f"{lag.max_s:.3f}",
             f"{lag.created_p99_s:.3f}", lag.missing),
        "", f"Original service: {ORIGINAL['lag']}.",
    ]


def _process(store: dict[str, Any]) -> list[str]:
    return [
        "### Process (the largest node)", "",
        _row("measure", "value", "original service"), _row("---", "---", "---"),
        _row("start to first healthy answer (fresh store)", f"{store['healthy_s']:.2f} s",
             ORIGINAL["healthy"]),
        _row("idle RSS, fresh server", f"{store['rss_fresh_mb']:.0f} MB", ORIGINAL["rss"]),
        _row("idle RSS, 100 workflows synced", f"{store['rss_catalogue_mb']:.0f} MB", ""),
        _row("idle RSS, after all the load above", f"{store['rss_after_load_mb']:.0f} MB", ""),
    ]


def _comparison(sqlite: dict[str, Any], postgres: dict[str, Any]) -> list[str]:
    lines = [f"## {label(postgres)} against {label(sqlite)}", "",
             "Ratio = PostgreSQL / SQLite (above 1 is better for throughput, worse for "
             "latency).", "",
             _row("measure", "SQLite", "PostgreSQL", "ratio"), _row(*["---"] * 4)]
    for key, name, unit, fmt in comparable(sqlite, postgres):
        old, new = key(sqlite), key(postgres)
        lines.append(_row(name, f"{old:{fmt}} {unit}", f"{new:{fmt}} {unit}",
                          f"{new / old:.2f}" if old else "n/a"))
    return lines


def comparable(sqlite: dict[str, Any], postgres: dict[str, Any]) -> list[tuple[Any, str, str,
                                                                                str]]:
    """(figure getter, name, unit, format) of each figure both stores have."""
    rows: list[tuple[Any, str, str, str]] = []
    for name, path in LISTS.items():
        for size in ("1k", "100k"):
            for connections in (1, 16):
                key = f"{name}_{size}_{connections}"
                if key in sqlite["lists"] and key in postgres["lists"]:
                    rows.append((lambda s, k=key: s["lists"][k].per_second,
                                 f"{path}, {size} tasks, c={connections}", "req/s", ",.0f"))
    for connections in (1, 4, 16):
        rows.append((lambda s, c=connections: s["runs"][f"spark_{c}"].per_second,
                     f"run now, c={connections}", "runs/s", ",.0f"))
    for connections in (1, 16):
        rows.append((lambda s, c=connections: s["claims"][f"spark_{c}"].p99_ms,
                     f"claim to start p99, c={connections}", "ms", ".2f"))
    rows += [(lambda s: added_ms(s["runs"]), "added latency per run, c=1", "ms", ".1f"),
             (lambda s: s["lag"].p50_s, "schedule lag p50", "s", ".2f"),
             (lambda s: s["lag"].p99_s, "schedule lag p99", "s", ".2f"),
             (lambda s: s["healthy_s"], "start to healthy", "s", ".2f"),
             (lambda s: s["rss_catalogue_mb"], "idle RSS (per node)", "MB", ".0f")]
    return [row for row in rows if _measured(row[0], sqlite) and _measured(row[0], postgres)]


def _measured(figure: Any, store: dict[str, Any]) -> bool:
    """True when ``store`` has the figure (``--http-only`` measures no lag, start or RSS)."""
    try:
        figure(store)
    except KeyError:
        return False
    return True


def sqlite_targets(store: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(target, measured, holds) for each target of issue #7, and "same or better than the
    2026-11-29 table" (within ``NOISE``)."""
    lists, runs, lag = store["lists"], store["runs"], store["lag"]
    # Over the two lists issue #7 named, as in earlier reports (not the limit=100 page).
    list_16 = min((s for key, s in lists.items()
                   if key.endswith("_16") and key.startswith(("workflows_", "tasks_"))),
                  key=lambda s: s.per_second)
    best_runs = max(runs[f"spark_{c}"].per_second for c in (1, 4, 16))
    found = [
        (f"list endpoints ≥ 1,000 req/s (16 connections, slowest case, up to "
         f"{store.get('tasks_in_store', 0):,} tasks)", f"{list_16.per_second:,.0f} req/s",
         list_16.per_second >= 1000),
        ("added latency per run ≤ 2 ms at concurrency 1", f"{added_ms(runs):.1f} ms",
         added_ms(runs) <= 2),
        ("≥ 500 runs/s against the fake", f"{best_runs:,.0f} runs/s", best_runs >= 500),
        (f"schedule lag p99 ≤ 1 s ({lag.schedules:,} schedules)", f"{lag.p99_s:.2f} s",
         lag.p99_s <= 1),
        ("idle RSS ≤ 80 MB", f"{store['rss_catalogue_mb']:.0f} MB",
         store["rss_catalogue_mb"] <= 80),
        ("healthy ≤ 1 s after start", f"{store['healthy_s']:.2f} s", store["healthy_s"] <= 1),
    ]
    now = {key: lists[key].per_second for key in SQLITE_BASELINE if key in lists}
    now["runs_16"] = runs["spark_16"].per_second
    for key, value in now.items():
        before = SQLITE_BASELINE[key]
        found.append((f"same or better than 2026-11-29: {key} ({before:,} /s)",
                      f"{value:,.0f} /s ({value / before:.2f} x)",
                      value >= before * (1 - NOISE)))
    for key, value, unit in (("added_ms", added_ms(runs), "ms"),
                             ("lag_p99_s", lag.p99_s, "s")):
        before = SQLITE_BASELINE[key]
        found.append((f"same or better than 2026-11-29: {key} ({before} {unit})",
                      f"{value:.2f} {unit}", value <= before * (1 + NOISE)))
    return found


def postgres_targets(store: dict[str, Any],
                     sqlite: dict[str, Any] | None) -> list[tuple[str, str, bool | None]]:
    """(target, measured, holds or None if not measured) for the PostgreSQL targets."""
    runs_16 = store["runs"]["spark_16"].per_second
    claim = store["claims"]["spark_16"]
    lag = store["lag"]
    found: list[tuple[str, str, bool | None]] = [
        ("≥ 500 runs/s at concurrency 16", f"{runs_16:,.0f} runs/s", runs_16 >= 500),
        ("claim to start p99 ≤ 10 ms (concurrency 16)", f"{claim.p99_ms:.1f} ms",
         claim.p99_ms <= 10),
        (f"schedule lag p99 ≤ 1 s ({lag.schedules:,} due at once)", f"{lag.p99_s:.2f} s",
         lag.p99_s <= 1),
    ]
    for name, path in LISTS.items():
        for size in ("1k", "100k"):
            key = f"{name}_{size}_16"
            target = f"{path} ({size} tasks, c=16) within 20 % of SQLite"
            if sqlite is None or key not in sqlite["lists"]:
                found.append((target, "SQLite not measured (use --compare)", None))
                continue
            ratio = store["lists"][key].per_second / sqlite["lists"][key].per_second
            found.append((target, f"{store['lists'][key].per_second:,.0f} req/s, "
                                  f"{ratio:.2f} x SQLite", ratio >= 0.8))
    return found


def _targets(figures: dict[str, Any], sqlite: dict[str, Any] | None,
             postgres: dict[str, Any] | None) -> list[str]:
    lines = ["## Targets", "", _row("store", "target", "measured", "holds"),
             _row(*["---"] * 4)]
    if sqlite is not None:
        lines += [_row(label(sqlite), target, measured, "yes" if holds else "**no**")
                  for target, measured, holds in sqlite_targets(sqlite)]
    if postgres is not None:
        lines += [_row(label(postgres), target, measured,
                       "n/a" if holds is None else "yes" if holds else "**no**")
                  for target, measured, holds in postgres_targets(postgres, sqlite)]
    lines.append(_row("all", "`spark --help` ≤ 0.3 s", f"{figures['help_s']:.2f} s",
                      "yes" if figures["help_s"] <= 0.3 else "**no**"))
    return lines


def _issue12(stores: list[dict[str, Any]], sqlite: dict[str, Any] | None) -> list[str]:
    lines = ["## Issue 12 targets (close to the framework's limit)", "",
             _row("store", "target", "measured", "holds"), _row(*["---"] * 4)]
    for store in stores:
        lines += [_row(label(store), target, measured,
                       "n/a" if holds is None else "yes" if holds else "**no**")
                  for target, measured, holds in issue12_targets(store, sqlite)]
    return lines
