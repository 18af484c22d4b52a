"""Task history through the CLI: search, time ranges, attempts and pruning."""

import json

from tests.cli.conftest import Spark


def _run(spark: Spark, workflow: str, text: str) -> str:
    result = spark("workflow", "run", workflow, "--input", text, "--json")
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["id"])


def test_task_list_finds_tasks_by_text_and_creation_time(spark: Spark, echo_workflow: str) -> None:
    """``--search`` matches input or answer in any case; ``--since``/``--until`` bound time."""
    paris = _run(spark, echo_workflow, "Weather in Paris")
    _run(spark, echo_workflow, "London")
    found = json.loads(spark("task", "list", "--search", "PARIS", "--json").stdout)
    assert [item["id"] for item in found["items"]] == [paris]
    recent = json.loads(spark("task", "list", "--since", "1h", "--json").stdout)
    assert recent["total"] == 2
    future = json.loads(spark("task", "list", "--since", "2999-01-01", "--json").stdout)
    assert future["total"] == 0
    old = json.loads(spark("task", "list", "--until", "1h", "--json").stdout)
    assert old["total"] == 0
    bad = spark("task", "list", "--since", "yesterday-ish")
    assert bad.exit_code == 2
    assert "--since" in bad.output


def test_task_show_lists_every_attempt(spark: Spark, echo_workflow: str) -> None:
    """A finished task's JSON carries its attempts with start, end and error."""
    task_id = _run(spark, echo_workflow, "hi")
    shown = json.loads(spark("task", "show", task_id, "--json").stdout)
    [attempt] = shown["attempts"]
    assert attempt["attempt"] == 1
    assert attempt["started_at"] == shown["started_at"]
    assert attempt["finished_at"]
    assert attempt["error"] is None


def test_task_prune_deletes_finished_tasks_before_a_time(spark: Spark, echo_workflow: str) -> None:
    """``--before`` takes a time or an age; recent tasks stay."""
    _run(spark, echo_workflow, "one")
    kept = spark("task", "prune", "--before", "1d")
    assert kept.exit_code == 0, kept.output
    assert "Deleted 0 finished tasks" in kept.stdout
    gone = spark("task", "prune", "--before", "2999-01-01T00:00:00")
    assert "Deleted 1 finished task" in gone.stdout
    assert json.loads(spark("task", "list", "--json").stdout)["total"] == 0
