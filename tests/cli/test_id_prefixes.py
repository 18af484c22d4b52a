"""Ids as git takes hashes: a unique prefix names a source, workflow, schedule or task;
and ``schedule enable``/``disable`` beside ``resume``/``pause``, the REST API's words."""

import asyncio
import json
from pathlib import Path

from spark_adapters.sqlite.store import SqliteStore
from spark_core.models import Task, TaskId, WorkflowId
from tests.cli.conftest import Spark

AB1 = "ab100000-0000-4000-8000-000000000000"
AB2 = "ab200000-0000-4000-8000-000000000000"


def _add_tasks(workdir: Path, workflow_id: str, *task_ids: str) -> None:
    """Queue tasks with chosen ids straight into the CLI's store."""

    async def add() -> None:
        from datetime import UTC, datetime

        store = SqliteStore(workdir / "data" / "spark.db")
        await store.open()
        try:
            now = datetime.now(UTC)
            for task_id in task_ids:
                await store.tasks.add(Task(id=TaskId(task_id), workflow_id=WorkflowId(workflow_id),
                                           input_data="hi", created_at=now, updated_at=now))
        finally:
            await store.close()

    asyncio.run(add())


def _schedule(spark: Spark, workflow: str) -> str:
    result = spark("schedule", "add", workflow, "--type", "interval", "--expr", "5m")
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_a_unique_prefix_names_a_source_workflow_schedule_and_task(
    spark: Spark, langflow_source: str, echo_workflow: str
) -> None:
    """The first 8 characters of each id work wherever the whole id does, options too."""
    schedule_id = _schedule(spark, echo_workflow)
    run = spark("workflow", "run", echo_workflow[:8], "--input", "hi", "--json")
    assert run.exit_code == 0, run.output
    task_id = json.loads(run.stdout)["id"]
    for noun, full in (("source", langflow_source), ("workflow", echo_workflow),
                       ("schedule", schedule_id), ("task", task_id)):
        shown = spark(noun, "show", full[:8], "--json")
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout)["id"] == full
    listed = json.loads(spark("task", "list", "--workflow", echo_workflow[:6], "--json").stdout)
    assert [item["id"] for item in listed["items"]] == [task_id]
    assert spark("task", "show", task_id, "--json").exit_code == 0


def test_an_ambiguous_prefix_is_an_error_listing_the_candidates(
    spark: Spark, workdir: Path, echo_workflow: str
) -> None:
    """``ab`` starts two task ids: exit 1 naming both; ``ab1`` names one; ``ffff`` none."""
    _add_tasks(workdir, echo_workflow, AB1, AB2)
    ambiguous = spark("task", "show", "ab")
    assert ambiguous.exit_code == 1
    assert "ambiguous" in ambiguous.stderr
    assert AB1 in ambiguous.stderr
    assert AB2 in ambiguous.stderr
    unique = spark("task", "cancel", "ab1", "--json")
    assert unique.exit_code == 0, unique.output
    assert json.loads(unique.stdout)["id"] == AB1
    unknown = spark("task", "show", "ffff")
    assert unknown.exit_code == 1
    assert "Task ffff not found" in unknown.stderr


def test_schedule_disable_and_enable_pause_and_resume(spark: Spark, echo_workflow: str) -> None:
    """``disable`` pauses a schedule and ``enable`` resumes it, as the API's words say."""
    schedule_id = _schedule(spark, echo_workflow)
    disabled = spark("schedule", "disable", schedule_id[:8], "--json")
    assert disabled.exit_code == 0, disabled.output
    assert json.loads(disabled.stdout)["status"] == "paused"
    enabled = spark("schedule", "enable", schedule_id[:8], "--json")
    assert enabled.exit_code == 0, enabled.output
    assert json.loads(enabled.stdout)["status"] == "active"
