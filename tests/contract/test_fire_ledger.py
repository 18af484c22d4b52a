"""The fire ledger's contract: records written with the fire's compare-and-set, kept decisions,
newest-first pages with an outcome filter, counters in one query, pruning by age, cascade."""

from spark_core.fires import FireCounters, FireOutcome, FireRecord, fire_record
from spark_core.models import Schedule, ScheduleId, TaskId, Workflow
from spark_core.ports import Store, TaskFilter
from tests.contract.builders import a_workflow, assert_utc, at, fired, make_schedule, new_task


def _record(schedule: Schedule, minutes: float, outcome: FireOutcome, *,
            decided: float | None = None, task_id: TaskId | None = None) -> FireRecord:
    return fire_record(schedule.id, at(minutes), outcome, f"{outcome} at {minutes}",
                       decided_at=at(minutes if decided is None else decided), task_id=task_id)


async def _scheduled(store: Store) -> tuple[Workflow, Schedule]:
    workflow = await a_workflow(store)
    return workflow, await make_schedule(store, workflow)


async def test_a_fire_writes_its_records_with_its_tasks(store: Store) -> None:
    """The records given to a winning fire are stored as given, in UTC, with the task id."""
    workflow, schedule = await _scheduled(store)
    task = new_task(workflow, schedule_id=schedule.id, scheduled_for=at(10))
    records = [_record(schedule, 0, FireOutcome.COALESCED, decided=10.5, task_id=task.id),
               _record(schedule, 10, FireOutcome.FIRED, decided=10.5, task_id=task.id)]
    assert await store.schedules.fire(schedule.id, fired(10, next_run=20), expected_version=1,
                                      tasks=[task], fires=records)
    page = await store.fires.list(schedule.id, limit=10, offset=0)
    assert page.items == list(reversed(records))
    for item in page.items:
        assert_utc(item)
    assert page.items[0].delay_seconds == 30.0


async def test_a_lost_compare_and_set_writes_no_record(store: Store) -> None:
    """A fire at a stale version changes nothing: no task, no record."""
    workflow, schedule = await _scheduled(store)
    task = new_task(workflow, schedule_id=schedule.id, scheduled_for=at(10))
    assert not await store.schedules.fire(
        schedule.id, fired(10, next_run=20), expected_version=7, tasks=[task],
        fires=[_record(schedule, 10, FireOutcome.FIRED, task_id=task.id)])
    assert (await store.fires.list(schedule.id, limit=10, offset=0)).total == 0
    assert (await store.tasks.list(TaskFilter(schedule_id=schedule.id), limit=5,
                                   offset=0)).total == 0


async def test_record_keeps_a_decision_and_a_fire_replaces_an_error(store: Store) -> None:
    """`record` never overwrites a stored record; a fire's record replaces an `error`."""
    _, schedule = await _scheduled(store)
    error = _record(schedule, 10, FireOutcome.ERROR)
    assert await store.fires.record([error]) == 1
    assert await store.fires.record([_record(schedule, 10, FireOutcome.MISSED)]) == 0
    [kept] = (await store.fires.list(schedule.id, limit=5, offset=0)).items
    assert kept.outcome == FireOutcome.ERROR
    assert await store.schedules.fire(
        schedule.id, fired(10, next_run=20), expected_version=1, tasks=[],
        fires=[_record(schedule, 10, FireOutcome.SKIPPED_OVERLAP, decided=11)])
    [replaced] = (await store.fires.list(schedule.id, limit=5, offset=0)).items
    assert (replaced.outcome, replaced.delay_seconds) == (FireOutcome.SKIPPED_OVERLAP, 60.0)


async def test_record_skips_a_schedule_that_no_longer_exists(store: Store) -> None:
    """Records of an unknown schedule are not written (and raise nothing)."""
    _, schedule = await _scheduled(store)
    ghost = fire_record(ScheduleId("no-such-schedule"), at(1), FireOutcome.MISSED, "gone",
                        decided_at=at(2))
    assert await store.fires.record([ghost, _record(schedule, 1, FireOutcome.MISSED)]) == 1


async def test_list_pages_newest_first_and_filters_by_outcome_and_time(store: Store) -> None:
    """Pages are newest nominal time first with the total; `outcome` and `until` narrow."""
    _, schedule = await _scheduled(store)
    outcomes = [FireOutcome.FIRED, FireOutcome.MISSED, FireOutcome.FIRED, FireOutcome.MISSED,
                FireOutcome.MISSED]
    await store.fires.record([_record(schedule, m, o) for m, o in enumerate(outcomes)])
    page = await store.fires.list(schedule.id, outcome=FireOutcome.MISSED, limit=2, offset=0)
    assert ([r.nominal_time for r in page.items], page.total) == ([at(4), at(3)], 3)
    rest = await store.fires.list(schedule.id, outcome=FireOutcome.MISSED, limit=2, offset=2)
    assert [r.nominal_time for r in rest.items] == [at(1)]
    until = await store.fires.list(schedule.id, until=at(2.5), limit=10, offset=0)
    assert [r.nominal_time for r in until.items] == [at(2), at(1), at(0)]
    empty = await store.fires.list(schedule.id, outcome=FireOutcome.ERROR, limit=5, offset=0)
    assert (empty.items, empty.total) == ([], 0)


async def test_counters_count_each_schedule_and_name_the_newest_outcome(store: Store) -> None:
    """Fired counts fired, caught_up and buffered; skipped counts both overlap outcomes; the
    last outcome is that of the newest nominal time; schedules without records are absent."""
    workflow, first = await _scheduled(store)
    second = await make_schedule(store, workflow)
    quiet = await make_schedule(store, workflow)
    await store.fires.record([
        _record(first, 1, FireOutcome.FIRED), _record(first, 2, FireOutcome.CAUGHT_UP),
        _record(first, 3, FireOutcome.BUFFERED), _record(first, 4, FireOutcome.MISSED),
        _record(first, 5, FireOutcome.SKIPPED_OVERLAP),
        _record(first, 6, FireOutcome.DROPPED_BUFFER_FULL),
        _record(first, 7, FireOutcome.COALESCED, decided=0),
        _record(second, 1, FireOutcome.MISSED),
    ])
    counters = await store.fires.counters([first.id, second.id, quiet.id])
    assert counters == {
        first.id: FireCounters(fired_count=3, missed_count=1, skipped_overlap_count=2,
                               last_outcome=FireOutcome.COALESCED),
        second.id: FireCounters(missed_count=1, last_outcome=FireOutcome.MISSED),
    }


async def test_prune_deletes_only_records_decided_before_the_cutoff(store: Store) -> None:
    """`prune` removes old records up to its limit and reports how many went."""
    _, schedule = await _scheduled(store)
    await store.fires.record([_record(schedule, m, FireOutcome.FIRED) for m in range(5)])
    assert await store.fires.prune(before=at(3), limit=2) == 2
    assert await store.fires.prune(before=at(3), limit=2) == 1
    left = await store.fires.list(schedule.id, limit=10, offset=0)
    assert [r.nominal_time for r in left.items] == [at(4), at(3)]


async def test_records_go_with_their_schedule(store: Store) -> None:
    """Deleting a schedule (or its workflow) deletes its records."""
    workflow, schedule = await _scheduled(store)
    other = await make_schedule(store, workflow)
    await store.fires.record([_record(schedule, 1, FireOutcome.MISSED),
                              _record(other, 1, FireOutcome.MISSED)])
    await store.schedules.delete(schedule.id)
    assert (await store.fires.list(schedule.id, limit=5, offset=0)).total == 0
    await store.workflows.delete(workflow.id)
    assert await store.fires.counters([other.id]) == {}


async def test_a_backfill_replaces_a_missed_record_and_filters_as_backfilled(
        store: Store) -> None:
    """A fire carrying a `backfilled` record for a time recorded `missed` replaces it with
    its task; the outcome filter finds it."""
    workflow, schedule = await _scheduled(store)
    assert await store.fires.record([_record(schedule, 10, FireOutcome.MISSED)]) == 1
    task = new_task(workflow, schedule_id=schedule.id, scheduled_for=at(10))
    backfilled = _record(schedule, 10, FireOutcome.BACKFILLED, decided=90, task_id=task.id)
    assert await store.schedules.fire(schedule.id, fired(90, next_run=100), expected_version=1,
                                      tasks=[task], fires=[backfilled])
    page = await store.fires.list(schedule.id, outcome=FireOutcome.BACKFILLED, limit=5,
                                  offset=0)
    assert page.items == [backfilled]
