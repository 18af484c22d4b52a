"""The scheduler over a settable clock: exact fire times, policies, and no double fires."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from spark_core.errors import InvalidScheduleError
from spark_core.models import (
    CatchupPolicy,
    OverlapPolicy,
    Schedule,
    ScheduleId,
    ScheduleStatus,
    ScheduleType,
    TaskStatus,
    Workflow,
)
from spark_core.ports import SchedulePatch, TaskFilter
from spark_core.scheduler import Scheduler
from spark_core.services.schedules import ScheduleChanges, ScheduleFields
from spark_core.signals import TaskSignals
from tests.unit.conftest import World, make_schedule

_schedule = make_schedule


async def _tasks(world: World, schedule: Schedule) -> list[datetime | None]:
    """Nominal fire times of the schedule's tasks, oldest first."""
    page = await world.store.tasks.list(TaskFilter(schedule_id=schedule.id), limit=100, offset=0)
    return sorted((t.scheduled_for for t in page.items), key=lambda at: at or datetime.min)


def _at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 1, 5, hour, minute, second, tzinfo=UTC)


async def test_a_cron_schedule_fires_at_its_time_and_moves_to_the_next(
    world: World, echo: Workflow
) -> None:
    """`*/15 * * * *` created just after 09:00 fires at 09:15 with that as its nominal time."""
    world.clock.set(_at(9, 0, 1))
    schedule = await _schedule(world, echo, "cron", "*/15 * * * *", input_value="tick")
    assert schedule.next_run_at == _at(9, 15)
    world.clock.set(_at(9, 14, 59))
    assert await world.spark.scheduler.tick() == 0
    world.clock.set(_at(9, 15))
    assert await world.spark.scheduler.tick() == 1
    stored = await world.spark.schedules.get(schedule.id)
    assert (stored.next_run_at, stored.last_run_at) == (_at(9, 30), _at(9, 15))
    [task] = (await world.store.tasks.list(
        TaskFilter(schedule_id=schedule.id), limit=5, offset=0)).items
    assert (task.input_data, task.scheduled_for, task.status) == ("tick", _at(9, 15), "pending")


async def test_an_interval_is_anchored_at_the_start_and_survives_a_restart(
    world: World, echo: Workflow
) -> None:
    """A new scheduler on the same store keeps the countdown instead of resetting it."""
    schedule = await _schedule(world, echo, "interval", "1h30m")
    assert schedule.next_run_at == _at(10, 30)
    world.clock.set(_at(10, 30, 1))
    await world.spark.scheduler.tick()
    restarted = Scheduler(store=world.store, schedules=world.spark.schedules, clock=world.clock,
                          signals=TaskSignals())
    world.clock.set(_at(11, 0))
    assert await restarted.tick() == 0
    assert (await world.spark.schedules.get(schedule.id)).next_run_at == _at(12, 0)


async def test_a_one_time_schedule_runs_exactly_once_then_completes(
    world: World, echo: Workflow
) -> None:
    """After its single fire the schedule is `completed` and never fires again."""
    schedule = await _schedule(world, echo, "one-time", "2026-01-05T09:30:00")
    world.clock.set(_at(9, 30))
    assert await world.spark.scheduler.tick() == 1
    world.clock.set(_at(23, 0))
    assert await world.spark.scheduler.tick() == 0
    stored = await world.spark.schedules.get(schedule.id)
    assert (stored.status, stored.next_run_at) == (ScheduleStatus.COMPLETED, None)
    assert await _tasks(world, schedule) == [_at(9, 30)]


async def test_one_time_now_fires_at_once(world: World, echo: Workflow) -> None:
    """`now` is due immediately."""
    schedule = await _schedule(world, echo, "one-time", "now")
    assert await world.spark.scheduler.tick() == 1
    assert await _tasks(world, schedule) == [_at(9)]


async def test_catchup_latest_runs_once_for_all_missed_times(world: World, echo: Workflow) -> None:
    """After downtime, `latest` fires one run for the newest missed time."""
    schedule = await _schedule(world, echo, "interval", "5m", overlap_policy="allow")
    world.clock.set(_at(9, 52))
    assert await world.spark.scheduler.tick() == 1
    assert await _tasks(world, schedule) == [_at(9, 50)]
    assert (await world.spark.schedules.get(schedule.id)).next_run_at == _at(9, 55)


async def test_catchup_none_skips_missed_times(world: World, echo: Workflow) -> None:
    """After downtime, `none` fires nothing and waits for the next future time."""
    schedule = await _schedule(world, echo, "interval", "5m", catchup_policy="none")
    world.clock.set(_at(9, 52))
    assert await world.spark.scheduler.tick() == 0
    assert (await world.spark.schedules.get(schedule.id)).next_run_at == _at(9, 55)


async def test_catchup_none_still_fires_a_run_that_is_only_a_little_late(
    world: World, echo: Workflow
) -> None:
    """`none` is about downtime: a fire a few seconds late is still made."""
    schedule = await _schedule(world, echo, "interval", "5m", catchup_policy="none")
    world.clock.set(_at(9, 5, 3))
    assert await world.spark.scheduler.tick() == 1
    assert await _tasks(world, schedule) == [_at(9, 5)]


async def test_catchup_all_runs_once_per_missed_time(world: World, echo: Workflow) -> None:
    """After downtime, `all` fires every missed time (with overlap allowed)."""
    schedule = await _schedule(world, echo, "interval", "5m", catchup_policy="all",
                         overlap_policy="allow")
    world.clock.set(_at(9, 21))
    assert await world.spark.scheduler.tick() == 4
    assert await _tasks(world, schedule) == [_at(9, 5), _at(9, 10), _at(9, 15), _at(9, 20)]


async def test_catchup_all_is_capped_at_one_hundred_runs(world: World, echo: Workflow) -> None:
    """A long outage does not flood the queue."""
    await _schedule(world, echo, "interval", "1m", catchup_policy="all", overlap_policy="allow")
    world.clock.set(_at(20))
    assert await world.spark.scheduler.tick() == 100


async def test_catchup_latest_after_a_long_outage_fires_the_true_latest_time(
    world: World, echo: Workflow
) -> None:
    """An hour down with a `30s` interval (120 missed times) still fires the newest one."""
    schedule = await _schedule(world, echo, "interval", "30s")
    world.clock.set(_at(10, 0, 5))
    assert await world.spark.scheduler.tick() == 1
    assert await _tasks(world, schedule) == [_at(10)]
    assert (await world.spark.schedules.get(schedule.id)).next_run_at == _at(10, 0, 30)


async def test_catchup_none_after_a_long_outage_still_fires_a_barely_late_time(
    world: World, echo: Workflow
) -> None:
    """`none` judges lateness by the newest missed time, however long the outage."""
    schedule = await _schedule(world, echo, "interval", "30s", catchup_policy="none")
    world.clock.set(_at(10, 0, 5))
    assert await world.spark.scheduler.tick() == 1
    assert await _tasks(world, schedule) == [_at(10)]


async def test_catchup_all_after_a_long_outage_fires_the_newest_hundred(
    world: World, echo: Workflow
) -> None:
    """`all` caps the replay at 100 runs, the most recent ones."""
    schedule = await _schedule(world, echo, "cron", "* * * * * *", catchup_policy="all",
                         overlap_policy="allow")
    world.clock.set(_at(12))
    assert await world.spark.scheduler.tick() == 100
    fired = await _tasks(world, schedule)
    assert (fired[0], fired[-1]) == (_at(11, 58, 21), _at(12))


async def test_a_one_time_fire_is_not_dropped_by_an_unfinished_manual_run(
    world: World, echo: Workflow
) -> None:
    """Under `skip`, a pending "run now" task does not eat the one-time schedule's only run."""
    schedule = await _schedule(world, echo, "one-time", "2026-01-05T09:30:00")
    await world.spark.schedules.fire_now(schedule.id)
    world.clock.set(_at(9, 30))
    assert await world.spark.scheduler.tick() == 1
    assert (await world.spark.schedules.get(schedule.id)).status == ScheduleStatus.COMPLETED


async def test_overlap_skip_creates_nothing_while_the_last_run_is_unfinished(
    world: World, echo: Workflow
) -> None:
    """`skip` holds back a fire while the previous run is pending, and still moves on."""
    schedule = await _schedule(world, echo, "interval", "1m")
    world.clock.set(_at(9, 1))
    assert await world.spark.scheduler.tick() == 1
    world.clock.set(_at(9, 2))
    assert await world.spark.scheduler.tick() == 0
    assert (await world.spark.schedules.get(schedule.id)).next_run_at == _at(9, 3)


async def test_overlap_buffer_one_queues_one_run_behind_a_running_one(
    world: World, echo: Workflow
) -> None:
    """`buffer_one` queues a single pending run while one is running, never two."""
    schedule = await _schedule(world, echo, "interval", "1m", overlap_policy="buffer_one")
    world.clock.set(_at(9, 1))
    await world.spark.scheduler.tick()
    await world.store.queue.claim(owner="w", limit=10, lease_seconds=3600)
    world.clock.set(_at(9, 2))
    assert await world.spark.scheduler.tick() == 1
    world.clock.set(_at(9, 3))
    assert await world.spark.scheduler.tick() == 0
    assert await world.store.schedules.count_active_tasks(schedule.id) == (1, 1)


async def test_overlap_allow_creates_every_run(world: World, echo: Workflow) -> None:
    """`allow` fires whatever is still running."""
    schedule = await _schedule(world, echo, "interval", "1m", overlap_policy="allow")
    for minute in (1, 2, 3):
        world.clock.set(_at(9, minute))
        await world.spark.scheduler.tick()
    assert await world.store.schedules.count_active_tasks(schedule.id) == (3, 0)


async def test_resuming_after_a_pause_does_not_replay_missed_runs(
    world: World, echo: Workflow
) -> None:
    """Enable recomputes the next time from now: no storm of runs missed while paused."""
    schedule = await _schedule(world, echo, "interval", "1m", catchup_policy="all",
                         overlap_policy="allow")
    await world.spark.schedules.disable(schedule.id)
    world.clock.set(_at(12, 0, 30))
    assert await world.spark.scheduler.tick() == 0
    resumed = await world.spark.schedules.enable(schedule.id)
    assert resumed.next_run_at == _at(12, 1)
    assert await world.spark.scheduler.tick() == 0
    assert await _tasks(world, schedule) == []


async def test_two_schedulers_on_one_store_never_fire_the_same_time_twice(
    world: World, echo: Workflow
) -> None:
    """Both see the schedule due; the compare-and-set lets only one of them fire it."""
    schedule = await _schedule(world, echo, "interval", "1m", overlap_policy="allow")
    other = Scheduler(store=world.store, schedules=world.spark.schedules, clock=world.clock,
                      signals=TaskSignals())
    world.clock.set(_at(9, 1))
    due = await world.store.schedules.due(limit=10)
    fired = [await world.spark.scheduler.fire(s, due.now) for s in due.schedules]
    fired += [await other.fire(s, due.now) for s in due.schedules]
    assert sum(fired) == 1
    assert await _tasks(world, schedule) == [_at(9, 1)]


async def test_the_loop_wakes_at_the_due_time_without_polling_each_schedule(
    world: World, echo: Workflow
) -> None:
    """Started in the background, the scheduler fires when the clock reaches the due time."""
    schedule = await _schedule(world, echo, "cron", "30 9 * * *")
    await world.spark.scheduler.start()
    try:
        await asyncio.sleep(0.05)
        assert await _tasks(world, schedule) == []
        world.clock.set(_at(9, 30))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if await _tasks(world, schedule):
                break
        assert await _tasks(world, schedule) == [_at(9, 30)]
    finally:
        await world.spark.scheduler.stop()


async def test_an_invalid_expression_is_refused_with_the_reason(
    world: World, echo: Workflow
) -> None:
    """Whatever the API accepts the scheduler can execute; the rest is refused up front."""
    with pytest.raises(InvalidScheduleError, match="minute"):
        await _schedule(world, echo, "cron", "61 * * * *")
    with pytest.raises(InvalidScheduleError, match="timezone"):
        await _schedule(world, echo, "cron", "0 * * * *", timezone="Mars/Base")
    assert (await world.spark.schedules.list()).total == 0


async def test_changing_the_expression_restarts_the_schedule_from_now(
    world: World, echo: Workflow
) -> None:
    """A PATCH of the expression recomputes the next fire time; other fields keep it."""
    schedule = await _schedule(world, echo, "interval", "1h")
    world.clock.set(_at(9, 20))
    renamed = await world.spark.schedules.update(schedule.id, ScheduleChanges(input_value="new"))
    assert renamed.next_run_at == _at(10)
    retimed = await world.spark.schedules.update(schedule.id, ScheduleChanges(schedule_expr="10m"))
    assert retimed.next_run_at == _at(9, 30)


async def test_a_full_replace_works_and_restarts_the_clock(world: World, echo: Workflow) -> None:
    """PUT replaces every field (the original service's PUT always failed)."""
    schedule = await _schedule(world, echo, "interval", "1h", input_value="old")
    world.clock.set(_at(9, 20))
    fields = ScheduleFields(workflow_id=echo.id, schedule_type=ScheduleType.CRON,
                            schedule_expr="0 12 * * *", input_value="new",
                            overlap_policy=OverlapPolicy.ALLOW,
                            catchup_policy=CatchupPolicy.NONE, max_retries=1)
    replaced = await world.spark.schedules.replace(schedule.id, fields)
    assert (replaced.schedule_type, replaced.input_value, replaced.next_run_at) == (
        "cron", "new", _at(12))
    assert (replaced.overlap_policy, replaced.catchup_policy, replaced.max_retries) == (
        "allow", "none", 1)


async def test_next_previews_the_coming_fire_times(world: World, echo: Workflow) -> None:
    """`next` lists the next N times starting with the stored next fire time."""
    schedule = await _schedule(world, echo, "cron", "0 */6 * * *")
    assert await world.spark.schedules.next_runs(schedule.id, 3) == [_at(12), _at(18),
                                                               _at(0) + timedelta(days=1)]


async def test_fire_now_queues_a_run_with_the_schedules_input(
    world: World, echo: Workflow, running_worker: object
) -> None:
    """Running a schedule by hand creates a task with its input and leaves its timing alone."""
    schedule = await _schedule(world, echo, "cron", "0 12 * * *", input_value="manual")
    task = await world.spark.schedules.fire_now(schedule.id)
    done = await world.spark.tasks.wait(task.id, timeout=5)
    assert (done.status, done.output_data, done.schedule_id) == (
        TaskStatus.COMPLETED, "manual", schedule.id)
    assert (await world.spark.schedules.get(schedule.id)).next_run_at == _at(12)


async def test_an_update_racing_a_fire_retries_and_never_makes_the_fired_time_due_again(
    world: World, echo: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler fires the schedule between the update's read and its write: the write is
    refused as stale, the update is worked out again from the fired record, and the old
    ``next_run_at`` is not written back (the fired 10:00 never fires a second time)."""
    schedule = await _schedule(world, echo, "interval", "1h", overlap_policy="allow")
    world.clock.set(_at(10, 0, 1))
    repository = world.store.schedules
    update = repository.update
    writes: list[int] = []

    async def update_after_a_fire(
        schedule_id: ScheduleId, patch: SchedulePatch, *, expected_version: int
    ) -> Schedule:
        if not writes:  # the scheduler wins the race, once
            current = await repository.get(schedule_id)
            assert await world.spark.scheduler.fire(current, world.clock.now()) == 1
        writes.append(expected_version)
        return await update(schedule_id, patch, expected_version=expected_version)

    monkeypatch.setattr(repository, "update", update_after_a_fire)
    changed = await world.spark.schedules.update(
        schedule.id, ScheduleChanges(input_value="new", max_retries=1))
    assert writes == [1, 2]
    assert (changed.input_value, changed.max_retries, changed.version) == ("new", 1, 3)
    assert (changed.next_run_at, changed.last_run_at) == (_at(11), _at(10))
    assert await world.spark.scheduler.tick() == 0
    assert await _tasks(world, schedule) == [_at(10)]
