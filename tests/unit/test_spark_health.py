"""The facade while the database comes and goes: health follows it, and the scheduler and
worker outlive the outage and carry on once it is over."""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest

from spark_core.facade import Spark
from spark_core.models import ScheduleType, TaskStatus, Workflow
from spark_core.ports import TaskFilter
from spark_core.services.schedules import ScheduleFields
from tests.unit.conftest import World


async def _until(predicate: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Wait (in real time, bounded) until the awaited ``predicate()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def _database_is(world: World, state: str) -> Callable[[], Awaitable[bool]]:
    """A predicate for ``_until``: the facade reports the database as ``state``."""
    async def check() -> bool:
        return world.spark.health()["database"] == state
    return check


@pytest.fixture
async def started(world: World) -> AsyncIterator[Spark]:
    """The whole facade started: worker, scheduler, wake-up relay and health watch."""
    await world.spark.start()
    yield world.spark
    await world.spark.stop(grace=1)


async def test_health_reports_the_database_down_within_two_seconds_and_back_after_repair(
    world: World, started: Spark
) -> None:
    """The background ping turns ``database`` to ``error`` soon after the store breaks and to
    ``ok`` once it answers again; the scheduler and worker keep running throughout."""
    assert started.health() == {"database": "ok", "scheduler": "running", "worker": "running"}
    world.store.broken = True
    await _until(_database_is(world, "error"), timeout=2.0)
    world.store.broken = False
    await _until(_database_is(world, "ok"), timeout=2.0)
    assert started.health() == {"database": "ok", "scheduler": "running", "worker": "running"}


async def test_a_schedule_due_during_an_outage_fires_once_after_repair_and_runs(
    world: World, echo: Workflow, caplog: pytest.LogCaptureFixture
) -> None:
    """Passes of the scheduler and the worker that fail on a broken store crash neither;
    after the repair the schedule that came due meanwhile fires once and its run completes."""
    world.store.wakeups.poll_seconds = 0.1  # the worker polls (and fails) often meanwhile
    started = world.spark
    await started.start()
    try:
        schedule = await started.schedules.create(ScheduleFields(
            workflow_id=echo.id, schedule_type=ScheduleType.INTERVAL, schedule_expr="1m",
            input_value="after the outage"))
        due = datetime(2026, 1, 5, 9, 1, tzinfo=UTC)
        assert schedule.next_run_at == due
        world.store.broken = True
        await _until(_database_is(world, "error"), timeout=2.0)
        with caplog.at_level(logging.WARNING):
            world.clock.set(due)
            await asyncio.sleep(0.3)
        assert "Scheduler pass failed" in caplog.text
        assert "Claiming tasks failed" in caplog.text
        assert (started.scheduler.running, started.worker.running) == (True, True)
        world.store.broken = False
        await _until(_database_is(world, "ok"), timeout=2.0)
        world.clock.advance(1)  # the scheduler's pause after a failed pass runs on the clock

        async def fired() -> bool:
            page = await world.store.tasks.list(
                TaskFilter(schedule_id=schedule.id), limit=10, offset=0)
            return page.total > 0

        await _until(fired)
        [task] = (await world.store.tasks.list(
            TaskFilter(schedule_id=schedule.id), limit=10, offset=0)).items
        assert task.scheduled_for == due
        done = await started.tasks.wait(task.id, timeout=5)
        assert (done.status, done.output_data) == (TaskStatus.COMPLETED, "after the outage")
        await asyncio.sleep(0.1)
        page = await world.store.tasks.list(TaskFilter(schedule_id=schedule.id), limit=10, offset=0)
        assert page.total == 1
        assert (await started.schedules.get(schedule.id)).next_run_at == datetime(
            2026, 1, 5, 9, 2, tzinfo=UTC)
    finally:
        await started.stop(grace=1)
