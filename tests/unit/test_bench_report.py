"""The bench's report: a comparison of two stores lists only the figures both measured."""

from types import SimpleNamespace
from typing import Any

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
