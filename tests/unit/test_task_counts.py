"""Counting tasks by status through the service (the dashboard's overview)."""

from datetime import timedelta

from spark_core.models import TaskStatus, Workflow
from tests.unit.conftest import World


async def test_every_status_is_counted_zero_included(world: World, echo: Workflow) -> None:
    """Statuses without tasks answer 0; a bound leaves older tasks out."""
    first = await world.spark.tasks.create(echo.id)
    world.clock.advance(3600)
    await world.spark.tasks.create(echo.id)
    await world.spark.tasks.cancel(first.id)
    counts = await world.spark.tasks.count_by_status()
    assert counts == {TaskStatus.PENDING: 1, TaskStatus.RUNNING: 0, TaskStatus.COMPLETED: 0,
                      TaskStatus.FAILED: 0, TaskStatus.CANCELLED: 1}
    recent = await world.spark.tasks.count_by_status(
        created_after=world.clock.now() - timedelta(minutes=5))
    assert recent[TaskStatus.PENDING] == 1
    assert recent[TaskStatus.CANCELLED] == 0
