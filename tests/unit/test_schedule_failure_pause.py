"""Pause on failure over a settable clock: ``pause_after_failures`` and pause/resume notes."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from spark_core.errors import InvalidScheduleError, RemoteRunError
from spark_core.models import Schedule, ScheduleStatus, Task, TaskStatus, Workflow
from spark_core.ports import SchedulePatch, TaskFilter
from spark_core.services.schedules import count_final_run
from tests.unit.conftest import World, make_schedule

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


async def _schedule(world: World, workflow: Workflow, **options: object) -> Schedule:
    return await make_schedule(world, workflow, "interval", "1h",
                               **{"overlap_policy": "allow", **options})


async def _fire_and_run(world: World, schedule: Schedule, hour: int) -> Task:
    """Fire the schedule at T0 + ``hour`` h and run its task to the end, retries included."""
    world.clock.set(T0 + timedelta(hours=hour))
    assert await world.spark.scheduler.tick() == 1
    page = await world.store.tasks.list(TaskFilter(schedule_id=schedule.id,
                                                   status=TaskStatus.PENDING), limit=1, offset=0)
    return await world.spark.worker.run_task(page.items[0].id)


async def test_n_failed_runs_in_a_row_pause_the_schedule_with_a_note(
    world: World, echo: Workflow
) -> None:
    """Two final failures in a row pause a schedule with pause_after_failures 2, saying why;
    it fires no more until resumed, and a resume restarts the count and clears the note."""
    world.clock.set(T0)
    schedule = await _schedule(world, echo, pause_after_failures=2, max_retries=0)
    world.remote.outcomes = [RemoteRunError("flow exploded", status=400)] * 2
    first = await _fire_and_run(world, schedule, 1)
    assert first.status == TaskStatus.FAILED
    counted = await world.spark.schedules.get(schedule.id)
    assert (counted.status, counted.consecutive_failures) == (ScheduleStatus.ACTIVE, 1)
    second = await _fire_and_run(world, schedule, 2)
    paused = await world.spark.schedules.get(schedule.id)
    assert paused.status == ScheduleStatus.PAUSED
    assert paused.note is not None
    assert "2 failed runs in a row" in paused.note
    assert second.id in paused.note
    world.clock.set(T0 + timedelta(hours=3))
    assert await world.spark.scheduler.tick() == 0
    resumed = await world.spark.schedules.enable(schedule.id, note="fixed the flow")
    assert (resumed.status, resumed.note, resumed.consecutive_failures) == (
        ScheduleStatus.ACTIVE, "fixed the flow", 0)


async def test_a_success_starts_the_count_again(world: World, echo: Workflow) -> None:
    """failed, completed, failed never reaches pause_after_failures 2."""
    world.clock.set(T0)
    schedule = await _schedule(world, echo, pause_after_failures=2, max_retries=0)
    world.remote.outcomes = [RemoteRunError("flow exploded", status=400)]
    await _fire_and_run(world, schedule, 1)
    assert (await _fire_and_run(world, schedule, 2)).status == TaskStatus.COMPLETED
    assert (await world.spark.schedules.get(schedule.id)).consecutive_failures == 0
    world.remote.outcomes = [RemoteRunError("flow exploded", status=400)]
    await _fire_and_run(world, schedule, 3)
    stored = await world.spark.schedules.get(schedule.id)
    assert (stored.status, stored.consecutive_failures) == (ScheduleStatus.ACTIVE, 1)


async def test_a_failure_counted_while_another_node_changed_the_schedule_is_not_lost(
    world: World, echo: Workflow
) -> None:
    """Counting is a compare-and-set: a version bumped meanwhile (another node's fire) makes
    it count again on the fresh record, so concurrent failures each count once."""
    world.clock.set(T0)
    schedule = await _schedule(world, echo, pause_after_failures=3)
    rng = random.Random(15)
    original_get = world.store.schedules.get

    async def racing_get(schedule_id: str) -> Schedule:
        read = await original_get(schedule_id)  # type: ignore[arg-type]
        if rng.random() < 0.5:  # another node writes between our read and our write
            await world.store.schedules.update(read.id, SchedulePatch(updated_at=T0),
                                               expected_version=read.version)
        return read

    world.store.schedules.get = racing_get  # type: ignore[method-assign]
    task = Task(id="t1", workflow_id=echo.id, schedule_id=schedule.id, error="boom",  # type: ignore[arg-type]
                created_at=T0, updated_at=T0)
    notes = [await count_final_run(world.store.schedules, task, failed=True, now=T0)
             for _ in range(3)]
    world.store.schedules.get = original_get  # type: ignore[method-assign]
    stored = await world.spark.schedules.get(schedule.id)
    assert (stored.consecutive_failures, stored.status) == (3, ScheduleStatus.PAUSED)
    assert notes[:2] == [None, None]
    assert notes[2] is not None


async def test_a_manual_pause_and_resume_carry_a_note(world: World, echo: Workflow) -> None:
    """disable(note=…) shows the note; enable without one clears it."""
    world.clock.set(T0)
    schedule = await _schedule(world, echo)
    paused = await world.spark.schedules.disable(schedule.id, note="source migrating")
    assert (paused.status, paused.note) == (ScheduleStatus.PAUSED, "source migrating")
    resumed = await world.spark.schedules.enable(schedule.id)
    assert (resumed.status, resumed.note) == (ScheduleStatus.ACTIVE, None)


async def test_pause_after_failures_below_one_is_refused(world: World, echo: Workflow) -> None:
    """0 failures cannot pause anything: an error naming the field."""
    with pytest.raises(InvalidScheduleError) as raised:
        await _schedule(world, echo, pause_after_failures=0)
    assert raised.value.errors[0][0] == "pause_after_failures"
