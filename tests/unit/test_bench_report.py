"""The bench's report: a comparison of two stores lists only the figures both measured."""

from types import SimpleNamespace
from typing import Any

import pytest

from bench import report
from bench.load import LoadResult, summarise


def measured_http_only() -> dict[str, Any]:
    """What ``python -m bench --http-only`` measures of one store: lists, runs and claims,
    but no schedule lag, start-up time or memory."""
    return {
        "lists": {"tasks_1k_16": SimpleNamespace(per_second=10_000.0)},
        "runs": {f"{who}_{connections}": SimpleNamespace(per_second=900.0, p50_ms=p50)
                 for connections in (1, 4, 16)
                 for who, p50 in (("spark", 1.0), ("direct", 0.2))},
        "claims": {f"spark_{connections}": SimpleNamespace(p99_ms=1.0)
                   for connections in (1, 16)},
    }


def test_an_http_only_comparison_lists_what_both_stores_measured() -> None:
    """``--compare --http-only`` used to fail writing its report (no schedule lag)."""
    names = [name for _, name, _, _ in report.comparable(measured_http_only(),
                                                         measured_http_only())]
    assert "GET /api/v1/tasks?limit=100, 1k tasks, c=16" in names
    assert "run now, c=16" in names
    assert not any(name.startswith(("schedule lag", "start to healthy", "idle RSS"))
                   for name in names)


def load_run(errors: dict[str, int]) -> LoadResult:
    """One load run with ``errors`` of each kind among 100 answers."""
    return LoadResult(connections=16, seconds=3.0, answers=100, errors=sum(errors.values()),
                      latencies=[0.001] * 100, why=errors)


def test_the_report_says_what_the_errors_were() -> None:
    """Errors are counted over the repeats with their kinds (an HTTP status, a body that
    was not the page, or an exception), so a report shows why, not only how many."""
    none = summarise([load_run({}), load_run({})])
    assert (none.errors, none.errors_cell) == (0, "0")
    timeouts = summarise([load_run({"TimeoutError": 4}), load_run({}),
                          load_run({"TimeoutError": 3})])
    assert timeouts.errors_cell == "7 (TimeoutError)"
    mixed = summarise([load_run({"503": 2, "TimeoutError": 1}), load_run({"503": 1})])
    assert mixed.errors_cell == "4 (503: 3, TimeoutError: 1)"


def measured_lists(raw: tuple[float, float], paired: tuple[float, float]) -> dict[str, Any]:
    """A store whose task list answered ``raw`` req/s at 1k and 100k tasks, ``paired`` times
    the bare page measured in the same rounds."""
    store = {"store": "sqlite", **measured_http_only()}
    store["lists"] = {"tasks_1k_16": SimpleNamespace(per_second=raw[0]),
                      "tasks_100k_16": SimpleNamespace(per_second=raw[1]),
                      "ratio_tasks_1k_16": paired[0], "ratio_tasks_100k_16": paired[1]}
    return store


def flatness(store: dict[str, Any]) -> tuple[str, bool | None]:
    [(measured, holds)] = [(measured, holds)
                           for target, measured, holds in report.issue12_targets(store, None)
                           if "flat" in target]
    return measured, holds


def test_flatness_compares_each_size_to_its_own_bare_page_rounds() -> None:
    """A machine that slowed down between the 1k and the 100k measurement (the bare page
    slower too) does not make a list look slower on a larger store, and a list that really
    is slower there, against the same bare page, is reported so."""
    slowed_machine = measured_lists(raw=(4_000.0, 3_000.0), paired=(0.80, 0.79))
    assert flatness(slowed_machine) == ("0.79 / 0.80 = 0.99", True)
    slower_list = measured_lists(raw=(4_000.0, 4_000.0), paired=(0.80, 0.60))
    assert flatness(slower_list) == ("0.60 / 0.80 = 0.75", False)


def run_targets(store: dict[str, Any]) -> dict[str, str]:
    return {target: measured for target, measured, _ in report.issue12_targets(store, None)
            if target.startswith("run now")}


def test_run_now_is_set_beside_the_bare_run_when_it_was_measured() -> None:
    """The run-now targets say how much of the added latency, and what share of the runs/s,
    the framework itself allows (the bare Litestar run); figures saved before the bare run
    existed still report."""
    store = {"store": "sqlite", **measured_http_only(), "lists": {}}
    assert run_targets(store) == {
        "run now: ≤ 1 ms added at concurrency 1": "0.8 ms",
        "run now: ≥ 1,000 runs/s at concurrency 16": "900 runs/s"}
    store["runs"] |= {"bare_1": SimpleNamespace(per_second=2_000.0, p50_ms=0.5),
                      "bare_16": SimpleNamespace(per_second=3_600.0, p50_ms=4.0)}
    assert run_targets(store) == {
        "run now: ≤ 1 ms added at concurrency 1": "0.8 ms (the bare run: 0.30 ms)",
        "run now: ≥ 1,000 runs/s at concurrency 16":
            "900 runs/s (0.25 x the bare run's 3,600)"}


@pytest.mark.parametrize(("store_name", "recorder"), [
    ("postgres", "through a psycopg pool"),
    ("sqlite", "on the event loop, in a SQLite file of its own in WAL mode"),
])
def test_run_now_is_also_set_beside_the_run_recorded_in_the_same_store(
        store_name: str, recorder: str) -> None:
    """A run recorded in the store costs its two commits whatever the framework; the report
    says how much of Spark's figure that floor is, in the targets and in the run table, and
    how the store was written."""
    store = {"store": store_name, "nodes": 1, **measured_http_only(), "lists": {}}
    store["runs"] |= {"bare_1": SimpleNamespace(per_second=2_000.0, p50_ms=0.5),
                      "bare_16": SimpleNamespace(per_second=3_600.0, p50_ms=4.0),
                      "recorded_1": SimpleNamespace(per_second=1_000.0, p50_ms=0.9),
                      "recorded_16": SimpleNamespace(per_second=1_200.0, p50_ms=9.0)}
    assert run_targets(store) == {
        "run now: ≤ 1 ms added at concurrency 1":
            "0.8 ms (the bare run: 0.30 ms) (the recorded run: 0.70 ms)",
        "run now: ≥ 1,000 runs/s at concurrency 16":
            "900 runs/s (0.25 x the bare run's 3,600) (0.75 x the recorded run's 1,200)"}
    for connections in (1, 4, 16):
        vars(store["runs"][f"spark_{connections}"]).update(p99_ms=2.0, errors_cell="0")
    table = "\n".join(report._runs(store))
    assert "| x recorded | recorded runs/s | recorded p50 ms |" in table
    assert "| 16 | 900 | n/a | 0.25 | 1.0 | 2.0 | 0 | 3,600 | 4.00 | 0.75 | 1,200 | 9.00 |" in table
    assert ("the recorded run adds 0.70 ms, so Spark adds 0.10 ms over a run recorded in this "
            "store") in table
    assert f"each one statement {recorder}" in table


def test_a_postgresql_list_is_held_to_within_20_percent_of_sqlites_bar() -> None:
    """The issue asks 0.7 x the bare page of SQLite's lists and, of PostgreSQL's, within
    20 % of that: 0.6 x misses on SQLite and holds on PostgreSQL."""
    def page_bar(store: dict[str, Any]) -> dict[str, bool | None]:
        return {target: holds for target, _, holds in report.issue12_targets(store, None)
                if "1k tasks" in target and "bare page" in target and "flat" not in target}

    sqlite = measured_lists(raw=(6_000.0, 6_000.0), paired=(0.6, 0.6))
    postgres = {**measured_lists(raw=(6_000.0, 6_000.0), paired=(0.6, 0.6)),
                "store": "postgres"}
    assert page_bar(sqlite) == {
        "GET /api/v1/tasks?limit=100 ≥ 0.7 x bare page (1k tasks, c=16)": False}
    assert page_bar(postgres) == {
        "GET /api/v1/tasks?limit=100 ≥ 0.56 x bare page (1k tasks, c=16, within 20 % of "
        "SQLite's 0.7 x)": True}
