"""The fire ledger over a settable clock: one record, with a reason, for every nominal time."""

import contextlib
from datetime import UTC, datetime, timedelta

from spark_core.errors import StoreUnavailableError
from spark_core.fires import FireOutcome, FireRecord
from spark_core.models import Schedule, ScheduleStatus, SourceStatus, TaskStatus, Workflow
from spark_core.ports import SourcePatch, TaskFilter, TaskOutcome
from tests.unit.conftest import World, make_schedule


def _at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 1, 5, hour, minute, second, tzinfo=UTC)


async def _schedule(world: World, workflow: Workflow, expr: str, **options: object) -> Schedule:
    return await make_schedule(world, workflow, "interval", expr, **options)


async def _ledger(world: World, schedule: Schedule) -> list[FireRecord]:
    """The schedule's records, oldest first."""
    page = await world.spark.fires.list(schedule.id, limit=100)
    return list(reversed(page.items))


def _outcomes(records: list[FireRecord]) -> list[tuple[datetime, FireOutcome]]:
    return [(r.nominal_time, r.outcome) for r in records]


async def _finish_all(world: World, schedule: Schedule) -> None:
    """Mark the schedule's pending tasks completed, as a worker would."""
    page = await world.store.tasks.list(TaskFilter(schedule_id=schedule.id), limit=100,
                                        offset=0)
    now = world.clock.now()
    for task in page.items:
        if task.status == TaskStatus.PENDING:
            [claimed] = await world.store.queue.claim(owner="t", limit=1, lease_seconds=60,
                                                      task_ids=[task.id])
            await world.store.queue.release(
                claimed, TaskOutcome(status=TaskStatus.COMPLETED, finished_at=now,
                                     updated_at=now),
                owner="t")


async def _start_all(world: World, schedule: Schedule) -> None:
    """Claim the schedule's pending tasks so they are running."""
    pending = TaskFilter(schedule_id=schedule.id, status=TaskStatus.PENDING)
    page = await world.store.tasks.list(pending, limit=100, offset=0)
    await world.store.queue.claim(owner="t", limit=100, lease_seconds=3600,
                                  task_ids=[t.id for t in page.items])


async def test_an_on_time_fire_is_recorded_with_its_task_and_delay(
    world: World, echo: Workflow
) -> None:
    """A fire on time is `fired`, names its task, and measures decided_at - nominal_time."""
    schedule = await _schedule(world, echo, "5m")
    world.clock.set(_at(9, 5, 2))
    assert await world.spark.scheduler.tick() == 1
    [record] = await _ledger(world, schedule)
    [task] = (await world.store.tasks.list(TaskFilter(schedule_id=schedule.id), limit=5,
                                           offset=0)).items
    assert (record.outcome, record.nominal_time, record.task_id) == ("fired", _at(9, 5), task.id)
    assert (record.decided_at, record.delay_seconds) == (_at(9, 5, 2), 2.0)
    assert record.reason == "Fired on time"


async def test_overlap_skip_records_skipped_overlap_naming_the_running_task(
    world: World, echo: Workflow
) -> None:
    """Under `skip`, a time whose previous run still runs is `skipped_overlap`, and the reason
    names that task."""
    schedule = await _schedule(world, echo, "5m")
    world.clock.set(_at(9, 5))
    await world.spark.scheduler.tick()
    await _start_all(world, schedule)
    world.clock.set(_at(9, 10))
    assert await world.spark.scheduler.tick() == 0
    first, second = await _ledger(world, schedule)
    assert second.outcome == FireOutcome.SKIPPED_OVERLAP
    assert first.task_id is not None
    assert first.task_id in second.reason
    assert "still running" in second.reason
    assert second.task_id is None


async def test_buffer_one_buffers_one_run_then_drops_while_the_buffer_is_full(
    world: World, echo: Workflow
) -> None:
    """`buffer_one`: behind a running task one run is `buffered`; the next time, with that run
    still waiting, is `dropped_buffer_full`."""
    schedule = await _schedule(world, echo, "5m", overlap_policy="buffer_one")
    world.clock.set(_at(9, 5))
    await world.spark.scheduler.tick()
    await _start_all(world, schedule)
    world.clock.set(_at(9, 10))
    assert await world.spark.scheduler.tick() == 1
    world.clock.set(_at(9, 15))
    assert await world.spark.scheduler.tick() == 0
    assert _outcomes(await _ledger(world, schedule)) == [
        (_at(9, 5), "fired"), (_at(9, 10), "buffered"), (_at(9, 15), "dropped_buffer_full")]
    buffered, dropped = (await _ledger(world, schedule))[1:]
    assert buffered.task_id is not None
    assert buffered.task_id in dropped.reason


async def test_downtime_with_catchup_latest_records_coalesced_then_caught_up(
    world: World, echo: Workflow
) -> None:
    """After downtime, `latest` runs the newest time as `caught_up` (even when it is still
    within the misfire grace: missed times were folded into it) and the others `coalesced`,
    naming that run's task."""
    schedule = await _schedule(world, echo, "5m")
    world.clock.set(_at(9, 30, 30))
    assert await world.spark.scheduler.tick() == 1
    records = await _ledger(world, schedule)
    assert _outcomes(records) == [
        *((_at(9, m), "coalesced") for m in (5, 10, 15, 20, 25)), (_at(9, 30), "caught_up")]
    world.clock.set(_at(10, 0))
    await _finish_all(world, schedule)
    world.clock.set(_at(11, 2))
    await world.spark.scheduler.tick()
    later = (await _ledger(world, schedule))[6:]
    assert [r.outcome for r in later] == ["coalesced"] * 17 + ["caught_up"]
    caught_up = later[-1]
    assert caught_up.nominal_time == _at(11)
    assert caught_up.delay_seconds == 120
    assert all(r.task_id == caught_up.task_id for r in later)
    assert "did not fire from 2026-01-05 09:35:00 UTC until 2026-01-05 11:02:00 UTC" in (
        caught_up.reason)


async def test_downtime_with_catchup_none_records_every_time_missed(
    world: World, echo: Workflow
) -> None:
    """`none` runs nothing late: every time of the outage is `missed`, with the reason."""
    schedule = await _schedule(world, echo, "5m", catchup_policy="none")
    world.clock.set(_at(9, 17))
    assert await world.spark.scheduler.tick() == 0
    records = await _ledger(world, schedule)
    assert _outcomes(records) == [(_at(9, m), "missed") for m in (5, 10, 15)]
    assert "catch-up policy 'none'" in records[0].reason
    counters = (await world.spark.fires.counters([schedule.id]))[schedule.id]
    assert (counters.missed_count, counters.last_outcome) == (3, "missed")


async def test_downtime_with_catchup_all_records_each_time_caught_up(
    world: World, echo: Workflow
) -> None:
    """`all` (with overlap `allow`) runs every missed time: one `caught_up` record and task
    each."""
    schedule = await _schedule(world, echo, "5m", catchup_policy="all", overlap_policy="allow")
    world.clock.set(_at(9, 15, 30))
    assert await world.spark.scheduler.tick() == 3
    records = await _ledger(world, schedule)
    assert _outcomes(records) == [(_at(9, 5), "caught_up"), (_at(9, 10), "caught_up"),
                                  (_at(9, 15), "fired")]
    assert len({r.task_id for r in records}) == 3


async def test_catchup_all_beyond_its_cap_records_the_oldest_times_missed(
    world: World, echo: Workflow
) -> None:
    """`all` replays at most 100 times; the older ones of a longer outage are `missed`."""
    schedule = await _schedule(world, echo, "1m", catchup_policy="all", overlap_policy="allow")
    world.clock.set(_at(11, 0, 30))
    assert await world.spark.scheduler.tick() == 100
    counters = (await world.spark.fires.counters([schedule.id]))[schedule.id]
    assert (counters.fired_count, counters.missed_count) == (100, 20)
    [oldest] = (await world.spark.fires.list(schedule.id, outcome=FireOutcome.MISSED,
                                             limit=1, offset=19)).items
    assert oldest.nominal_time == _at(9, 1)
    assert "newest 100" in oldest.reason


async def test_pause_and_resume_record_the_paused_times_missed(
    world: World, echo: Workflow
) -> None:
    """Times skipped while paused are written as `missed` when the schedule resumes, and the
    first fire after resuming is on time."""
    schedule = await _schedule(world, echo, "5m")
    world.clock.set(_at(9, 5))
    await world.spark.scheduler.tick()
    world.clock.set(_at(9, 6))
    await world.spark.schedules.disable(schedule.id)
    world.clock.set(_at(9, 22))
    assert await world.spark.scheduler.tick() == 0
    resumed = await world.spark.schedules.enable(schedule.id)
    assert resumed.next_run_at == _at(9, 25)
    records = await _ledger(world, schedule)
    assert _outcomes(records) == [(_at(9, 5), "fired"), (_at(9, 10), "missed"),
                                  (_at(9, 15), "missed"), (_at(9, 20), "missed")]
    assert "paused" in records[-1].reason
    await _finish_all(world, schedule)
    world.clock.set(_at(9, 25))
    await world.spark.scheduler.tick()
    assert (await _ledger(world, schedule))[-1].outcome == "fired"


async def test_a_store_error_during_the_fire_is_recorded_then_replaced_by_the_fire(
    world: World, echo: Workflow
) -> None:
    """A fire the store refuses leaves an `error` record (and the schedule due); the retried
    fire replaces it with what happened."""
    schedule = await _schedule(world, echo, "5m")
    world.clock.set(_at(9, 5))
    real_fire = world.store.schedules.fire

    async def refuse(*args: object, **kwargs: object) -> bool:
        raise StoreUnavailableError("The database does not answer")

    world.store.schedules.fire = refuse  # type: ignore[method-assign]
    with contextlib.suppress(StoreUnavailableError):
        await world.spark.scheduler.tick()
    [error] = await _ledger(world, schedule)
    assert error.outcome == FireOutcome.ERROR
    assert "does not answer" in error.reason
    world.store.schedules.fire = real_fire  # type: ignore[method-assign]
    world.clock.set(_at(9, 5, 10))
    assert await world.spark.scheduler.tick() == 1
    [fired] = await _ledger(world, schedule)
    assert (fired.outcome, fired.delay_seconds) == (FireOutcome.FIRED, 10.0)


async def test_a_lost_compare_and_set_writes_no_record(world: World, echo: Workflow) -> None:
    """A scheduler holding a stale copy of the schedule loses the race and records nothing."""
    schedule = await _schedule(world, echo, "5m")
    world.clock.set(_at(9, 5))
    stale = await world.spark.schedules.get(schedule.id)
    await world.spark.scheduler.tick()
    assert await world.spark.scheduler.fire(stale, _at(9, 5)) == 0
    assert len(await _ledger(world, schedule)) == 1


async def test_the_outcome_filter_and_pagination_are_newest_first(
    world: World, echo: Workflow
) -> None:
    """`list` keeps one outcome and pages newest first with the total."""
    schedule = await _schedule(world, echo, "5m", catchup_policy="none")
    world.clock.set(_at(9, 17))
    await world.spark.scheduler.tick()
    page = await world.spark.fires.list(schedule.id, outcome=FireOutcome.MISSED, limit=2)
    assert [r.nominal_time for r in page.items] == [_at(9, 15), _at(9, 10)]
    assert (page.total, page.has_more) == (3, True)
    assert (await world.spark.fires.list(schedule.id, outcome=FireOutcome.FIRED)).total == 0


async def test_records_older_than_the_retention_are_pruned(
    world: World, echo: Workflow
) -> None:
    """`prune` deletes records decided more than the retention ago, and only those."""
    schedule = await _schedule(world, echo, "5m", catchup_policy="none")
    world.clock.set(_at(9, 17))
    await world.spark.scheduler.tick()
    world.clock.set(_at(9, 17) + timedelta(days=29))
    assert await world.spark.fires.prune() == 0
    world.clock.set(_at(9, 17) + timedelta(days=30, seconds=1))
    assert await world.spark.fires.prune() == 3
    assert (await world.spark.fires.list(schedule.id)).total == 0


async def test_explain_a_past_time_gives_the_outcome_and_reason(
    world: World, echo: Workflow
) -> None:
    """Asked about 09:12, explain answers with the nominal time at or before it (09:10)."""
    schedule = await _schedule(world, echo, "5m", catchup_policy="none")
    world.clock.set(_at(9, 17))
    await world.spark.scheduler.tick()
    answer = await world.spark.fires.explain(schedule.id, _at(9, 12))
    assert answer.record is not None
    assert answer.record.nominal_time == _at(9, 10)
    assert "missed" in answer.summary
    assert "catch-up policy 'none'" in answer.summary
    before = await world.spark.fires.explain(schedule.id, _at(8, 0))
    assert "did not exist yet" in before.summary


async def test_explain_now_names_what_could_stop_the_next_fire(
    world: World, echo: Workflow
) -> None:
    """For now: the next fire time, a run still under way, an inactive source, a pause."""
    schedule = await _schedule(world, echo, "5m")
    answer = await world.spark.fires.explain(schedule.id)
    assert answer.next_run_at == _at(9, 5)
    assert "Nothing stops it now" in answer.summary
    world.clock.set(_at(9, 5))
    await world.spark.scheduler.tick()
    await _start_all(world, schedule)
    source = (await world.spark.sources.list()).items[0]
    await world.store.sources.update(source.id, SourcePatch(
        status=SourceStatus.INACTIVE, updated_at=world.clock.now()))
    await world.spark.schedules.disable(schedule.id)
    answer = await world.spark.fires.explain(schedule.id)
    stored = await world.spark.schedules.get(schedule.id)
    assert stored.status == ScheduleStatus.PAUSED
    assert any("still running" in b for b in answer.blockers)
    assert any("inactive" in b for b in answer.blockers)
    assert "paused" in answer.summary
