"""Backfill over a settable clock: ranges, the cap, dry runs, skipped times, the ledger."""

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from spark_core.errors import InvalidScheduleError
from spark_core.fires import FireOutcome
from spark_core.models import Schedule, Workflow
from spark_core.ports import TaskFilter
from spark_core.services.backfill import MAX_BACKFILL, BackfillFields
from tests.unit.conftest import World, make_schedule

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


async def _schedule(world: World, workflow: Workflow, kind: str = "cron",
                    expr: str = "0 * * * *") -> Schedule:
    return await make_schedule(world, workflow, kind, expr)


def _range(start: datetime, end: datetime, **more: object) -> BackfillFields:
    return msgspec.convert({"start": start, "end": end, **more}, BackfillFields)


async def _run_times(world: World, schedule: Schedule) -> list[datetime]:
    page = await world.store.tasks.list(TaskFilter(schedule_id=schedule.id), limit=500,
                                        offset=0)
    return sorted(task.scheduled_for for task in page.items if task.scheduled_for)


async def test_a_backfill_makes_one_run_per_past_time_recorded_backfilled(
    world: World, echo: Workflow
) -> None:
    """An hourly cron created at 09:00 backfilled over 00:00-03:00 the day before its
    creation gets four runs with their nominal times, each `backfilled` in the ledger."""
    world.clock.set(T0)
    schedule = await _schedule(world, echo)
    world.clock.set(_at(0.5))
    done = await world.spark.schedules.backfill(schedule.id, _range(_at(-33), _at(-30)))
    times = [_at(-33), _at(-32), _at(-31), _at(-30)]
    assert [run.nominal_time for run in done.runs] == times
    assert all(run.task_id for run in done.runs)
    assert await _run_times(world, schedule) == times
    ledger = (await world.spark.fires.list(schedule.id, limit=10, offset=0)).items
    assert {(r.nominal_time, r.outcome) for r in ledger} == {
        (at, FireOutcome.BACKFILLED) for at in times}


async def test_a_dry_run_previews_without_creating_anything(
    world: World, echo: Workflow
) -> None:
    """dry_run answers the times and writes neither tasks nor records."""
    world.clock.set(T0)
    schedule = await _schedule(world, echo)
    preview = await world.spark.schedules.backfill(schedule.id, _range(_at(-3), _at(-1)),
                                                   dry_run=True)
    assert preview.dry_run
    assert [run.nominal_time for run in preview.runs] == [_at(-3), _at(-2), _at(-1)]
    assert all(run.task_id is None for run in preview.runs)
    assert await _run_times(world, schedule) == []
    assert (await world.spark.fires.list(schedule.id, limit=10, offset=0)).items == []


async def test_times_that_already_ran_are_skipped(world: World, echo: Workflow) -> None:
    """The scheduler's own run at 10:00 is left alone; a second backfill adds nothing."""
    world.clock.set(T0)
    schedule = await _schedule(world, echo)
    world.clock.set(_at(1))
    assert await world.spark.scheduler.tick() == 1
    world.clock.set(_at(3))
    done = await world.spark.schedules.backfill(schedule.id, _range(_at(0), _at(2)))
    assert [run.nominal_time for run in done.runs] == [_at(0), _at(2)]
    assert done.skipped == [_at(1)]
    again = await world.spark.schedules.backfill(schedule.id, _range(_at(0), _at(2)))
    assert (again.runs, again.skipped) == ([], [_at(0), _at(1), _at(2)])
    assert await _run_times(world, schedule) == [_at(0), _at(1), _at(2)]


async def test_skip_backfills_one_run_and_coalesces_the_rest(
    world: World, echo: Workflow
) -> None:
    """overlap_policy skip: one run for the newest time, the others coalesced into it."""
    world.clock.set(T0)
    schedule = await _schedule(world, echo)
    done = await world.spark.schedules.backfill(
        schedule.id, _range(_at(-3), _at(-1), overlap_policy="skip"))
    assert [run.nominal_time for run in done.runs] == [_at(-1)]
    assert done.coalesced == [_at(-3), _at(-2)]
    ledger = {r.nominal_time: r for r in
              (await world.spark.fires.list(schedule.id, limit=10, offset=0)).items}
    assert ledger[_at(-3)].outcome == FireOutcome.COALESCED
    assert ledger[_at(-3)].task_id == done.runs[0].task_id


async def test_an_interval_backfills_in_its_own_phase_before_its_start(
    world: World, echo: Workflow
) -> None:
    """A 90-minute interval anchored at 09:00 backfills 06:00 and 07:30, not round hours."""
    world.clock.set(T0)
    schedule = await _schedule(world, echo, "interval", "90m")
    done = await world.spark.schedules.backfill(schedule.id, _range(_at(-3.5), _at(-1)),
                                                dry_run=True)
    assert [run.nominal_time for run in done.runs] == [_at(-3), _at(-1.5)]


async def test_a_range_beyond_the_cap_in_the_future_or_reversed_is_refused(
    world: World, echo: Workflow
) -> None:
    """More than MAX_BACKFILL times, an end after now or before start: errors, nothing made."""
    world.clock.set(T0)
    schedule = await _schedule(world, echo, "cron", "* * * * *")
    start = T0 - timedelta(minutes=MAX_BACKFILL)
    fits = await world.spark.schedules.backfill(schedule.id, _range(start, T0 - timedelta(
        minutes=1)), dry_run=True)
    assert len(fits.runs) == MAX_BACKFILL
    for bad in (_range(start, T0), _range(T0, T0 + timedelta(minutes=1)),
                _range(T0 - timedelta(minutes=1), T0 - timedelta(minutes=2))):
        with pytest.raises(InvalidScheduleError):
            await world.spark.schedules.backfill(schedule.id, bad)
    assert await _run_times(world, schedule) == []
