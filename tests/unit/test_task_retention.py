"""Finished tasks are kept for the retention period, then pruned in the background."""

import asyncio
from datetime import timedelta

from spark_core.models import Task, TaskId, TaskStatus, Workflow, new_id
from spark_core.ports import TaskFilter
from tests.unit.conftest import World


async def _task(world: World, workflow: Workflow, *, status: TaskStatus,
                finished_days_ago: float | None) -> Task:
    now = world.clock.now()
    finished = None if finished_days_ago is None else now - timedelta(days=finished_days_ago)
    return await world.store.tasks.add(Task(
        id=TaskId(new_id()), workflow_id=workflow.id, status=status, finished_at=finished,
        created_at=now - timedelta(days=60), updated_at=now))


async def test_a_started_spark_prunes_finished_tasks_past_the_retention(
    world: World, echo: Workflow,
) -> None:
    """Old finished tasks go; recent ones and old pending ones stay."""
    old = await _task(world, echo, status=TaskStatus.COMPLETED, finished_days_ago=31)
    recent = await _task(world, echo, status=TaskStatus.FAILED, finished_days_ago=1)
    waiting = await _task(world, echo, status=TaskStatus.PENDING, finished_days_ago=None)
    assert world.spark.task_retention == timedelta(days=30)
    await world.spark.start(scheduler=False)
    try:
        for _ in range(100):
            left = await world.spark.tasks.list(TaskFilter(), limit=10)
            if old.id not in {task.id for task in left.items}:
                break
            await asyncio.sleep(0.01)
    finally:
        await world.spark.stop(grace=0)
    assert {task.id for task in left.items} == {recent.id, waiting.id}


async def test_a_retention_of_none_keeps_every_task(world: World, echo: Workflow) -> None:
    """Without a retention nothing is pruned."""
    old = await _task(world, echo, status=TaskStatus.COMPLETED, finished_days_ago=3650)
    world.spark.task_retention = None
    await world.spark.start(scheduler=False)
    await asyncio.sleep(0.05)
    await world.spark.stop(grace=0)
    assert (await world.spark.tasks.get(old.id)).id == old.id
