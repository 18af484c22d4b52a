"""Schedule bounds over a settable clock: ``start_at``, ``end_at`` and ``max_runs``."""

from datetime import UTC, datetime, timedelta

import pytest

from spark_core.errors import InvalidScheduleError
from spark_core.fires import FireOutcome
from spark_core.models import Schedule, ScheduleStatus, Workflow
from spark_core.ports import TaskFilter
from spark_core.services.schedules import ScheduleChanges
from tests.unit.conftest import World, make_schedule

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


_schedule = make_schedule


async def _run_times(world: World, schedule: Schedule) -> list[datetime | None]:
    page = await world.store.tasks.list(TaskFilter(schedule_id=schedule.id), limit=100, offset=0)
    return sorted((task.scheduled_for for task in page.items), key=lambda at: at or T0)


async def test_a_cron_schedule_does_not_fire_before_its_start_at(
    world: World, echo: Workflow
) -> None:
    """`*/15` with start_at 10:20 first fires at 10:30; an interval counts from start_at."""
    world.clock.set(T0)
    cron = await _schedule(world, echo, "cron", "*/15 * * * *", start_at=_at(80))
    assert cron.next_run_at == _at(90)
    interval = await _schedule(world, echo, "interval", "1h", start_at=_at(80).isoformat())
    assert interval.next_run_at == _at(140)
    assert await world.spark.schedules.next_runs(cron.id, 2) == [_at(90), _at(105)]


async def test_a_schedule_completes_after_the_last_time_before_its_end_at(
    world: World, echo: Workflow
) -> None:
    """An hourly schedule ending at 11:30 fires at 10:00 and 11:00, then is completed."""
    world.clock.set(T0)
    schedule = await _schedule(world, echo, "interval", "1h", end_at=_at(150),
                               overlap_policy="allow")
    assert await world.spark.schedules.next_runs(schedule.id, 5) == [_at(60), _at(120)]
    for minute in (60, 120):
        world.clock.set(_at(minute))
        assert await world.spark.scheduler.tick() == 1
    stored = await world.spark.schedules.get(schedule.id)
    assert (stored.status, stored.next_run_at) == (ScheduleStatus.COMPLETED, None)
    assert await _run_times(world, schedule) == [_at(60), _at(120)]


async def test_max_runs_completes_the_schedule_and_caps_a_catch_up(
    world: World, echo: Workflow
) -> None:
    """With max_runs 3 and catch-up 'all', an outage replays only the runs left; the times
    beyond are missed with the reason, and the schedule completes."""
    world.clock.set(T0)
    schedule = await _schedule(world, echo, "interval", "10m", max_runs=3,
                               catchup_policy="all", overlap_policy="allow")
    assert len(await world.spark.schedules.next_runs(schedule.id, 10)) == 3
    world.clock.set(_at(10))
    assert await world.spark.scheduler.tick() == 1
    world.clock.set(_at(45))
    assert await world.spark.scheduler.tick() == 2
    stored = await world.spark.schedules.get(schedule.id)
    assert (stored.status, stored.run_count, stored.next_run_at) == (
        ScheduleStatus.COMPLETED, 3, None)
    assert await _run_times(world, schedule) == [_at(10), _at(20), _at(30)]
    missed = await world.spark.fires.list(schedule.id, outcome=FireOutcome.MISSED)
    assert [record.nominal_time for record in missed.items] == [_at(40)]
    assert "max_runs" in missed.items[0].reason


async def test_raising_max_runs_or_end_at_changes_what_is_left(
    world: World, echo: Workflow
) -> None:
    """A lower max_runs than the runs made completes the schedule at once."""
    world.clock.set(T0)
    schedule = await _schedule(world, echo, "interval", "10m", max_runs=5)
    world.clock.set(_at(10))
    await world.spark.scheduler.tick()
    changed = await world.spark.schedules.update(schedule.id, ScheduleChanges(max_runs=1))
    assert (changed.status, changed.next_run_at) == (ScheduleStatus.COMPLETED, None)


@pytest.mark.parametrize("options", [
    {"end_at": T0 - timedelta(hours=1)},
    {"start_at": T0 + timedelta(hours=2), "end_at": T0 + timedelta(hours=1)},
    {"max_runs": 0},
])
async def test_bounds_that_leave_nothing_to_fire_are_refused(
    world: World, echo: Workflow, options: dict[str, object]
) -> None:
    """An end before the start, or no run allowed, is a validation error at creation."""
    world.clock.set(T0)
    with pytest.raises(InvalidScheduleError):
        await _schedule(world, echo, "interval", "1h", **options)


async def test_an_end_at_before_the_first_cron_time_is_refused(
    world: World, echo: Workflow
) -> None:
    """A daily 09:00 cron ending at 08:00 tomorrow never fires after now (09:00:01)."""
    world.clock.set(T0 + timedelta(seconds=1))
    with pytest.raises(InvalidScheduleError, match="end_at"):
        await _schedule(world, echo, "cron", "0 9 * * *", end_at=T0 + timedelta(hours=23))
