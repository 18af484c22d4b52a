"""The schedule repository's contract: versioned compare-and-set updates and fires, dueness by
the store's clock."""

import asyncio
from datetime import timedelta, timezone

import msgspec
import pytest

from spark_core.errors import ConflictError, NotFoundError, StaleWriteError
from spark_core.models import (
    ScheduleId,
    ScheduleStatus,
    ScheduleType,
    TaskStatus,
    WorkflowId,
    new_id,
)
from spark_core.ports import NextDue, ScheduleFilter, SchedulePatch, Store, TaskFilter
from tests.contract.builders import (
    T0,
    a_workflow,
    assert_utc,
    at,
    fired,
    make_schedule,
    make_source,
    make_task,
    make_workflow,
    new_schedule,
    new_task,
)
from tests.fakes.clock import FakeClock


async def test_a_schedule_needs_an_existing_workflow(store: Store) -> None:
    """Adding a schedule for an unknown workflow is not found."""
    workflow = await a_workflow(store)
    ghost = msgspec.structs.replace(workflow, id=WorkflowId(new_id()))
    with pytest.raises(NotFoundError, match=f"Workflow {ghost.id} not found"):
        await make_schedule(store, ghost)


async def test_a_schedule_round_trips_with_its_enums_and_datetimes(store: Store) -> None:
    """Every field reads back as written, enums as their StrEnum types, at version 1."""
    schedule = await make_schedule(store, await a_workflow(store), status=ScheduleStatus.PAUSED,
                                   last_run_at=at(-5), timeout=12.5, timezone="Europe/Paris")
    read = await store.schedules.get(schedule.id)
    assert read == schedule
    assert_utc(read)
    assert read.version == 1
    assert read.status is ScheduleStatus.PAUSED
    assert read.schedule_type is ScheduleType.INTERVAL
    assert read.next_run_at == at(10)
    with pytest.raises(NotFoundError, match="Schedule nope not found"):
        await store.schedules.get(ScheduleId("nope"))


async def test_a_schedule_is_added_at_version_one_whatever_it_carries(store: Store) -> None:
    """The store owns the version: an insert starts it at 1."""
    added = await make_schedule(store, await a_workflow(store), version=7)
    assert added.version == 1
    assert (await store.schedules.get(added.id)).version == 1


async def test_schedules_list_in_creation_order_filtered_by_workflow_and_status(
        store: Store) -> None:
    """Creation order, filters and totals."""
    source = await make_source(store)
    one = await make_workflow(store, source, remote_id="1")
    two = await make_workflow(store, source, remote_id="2")
    late = await make_schedule(store, one, created=2)
    early = await make_schedule(store, one, created=1, status=ScheduleStatus.PAUSED)
    other = await make_schedule(store, two, created=0)
    everything = await store.schedules.list(ScheduleFilter(), limit=10, offset=0)
    assert everything.items == [other, early, late]
    by_workflow = await store.schedules.list(ScheduleFilter(workflow_id=one.id), limit=1,
                                             offset=0)
    assert (by_workflow.items, by_workflow.total, by_workflow.has_more) == ([early], 2, True)
    paused = await store.schedules.list(ScheduleFilter(status=ScheduleStatus.PAUSED), limit=10,
                                        offset=0)
    assert paused.items == [early]


async def test_a_schedule_key_is_unique_and_found_by_the_key_filter(store: Store) -> None:
    """Two schedules cannot share a key, by insert or by update; many have none; the key
    filter finds the one that holds it."""
    workflow = await a_workflow(store)
    keyed = await make_schedule(store, workflow, key="nightly")
    plain = await make_schedule(store, workflow, created=1)
    await make_schedule(store, workflow, created=2)
    with pytest.raises(ConflictError):
        await make_schedule(store, workflow, key="nightly")
    with pytest.raises(ConflictError):
        await store.schedules.update(plain.id, SchedulePatch(updated_at=at(3), key="nightly"),
                                     expected_version=1)
    found = await store.schedules.list(ScheduleFilter(key="nightly"), limit=10, offset=0)
    assert found.items == [keyed]
    renamed = await store.schedules.update(keyed.id, SchedulePatch(updated_at=at(3), key=None),
                                           expected_version=1)
    assert renamed.key is None
    assert (await store.schedules.list(ScheduleFilter(key="nightly"), limit=10,
                                       offset=0)).items == []


async def test_a_schedule_bounds_and_run_count_round_trip_and_fire(store: Store) -> None:
    """``end_at``, ``max_runs`` and ``run_count`` read back as written and a fire sets the
    run count and completion in its compare-and-set."""
    schedule = await make_schedule(store, await a_workflow(store), end_at=at(30), max_runs=2,
                                   run_count=1)
    read = await store.schedules.get(schedule.id)
    assert (read.end_at, read.max_runs, read.run_count) == (at(30), 2, 1)
    assert_utc(read)
    done = SchedulePatch(updated_at=at(10), run_count=2, next_run_at=None,
                         status=ScheduleStatus.COMPLETED)
    assert await store.schedules.fire(schedule.id, done, expected_version=1, tasks=[])
    fired_read = await store.schedules.get(schedule.id)
    assert (fired_read.run_count, fired_read.status) == (2, ScheduleStatus.COMPLETED)


async def test_a_schedule_jitter_round_trips_and_clears(store: Store) -> None:
    """``jitter`` reads back as written and a patch setting ``None`` clears it."""
    schedule = await make_schedule(store, await a_workflow(store), jitter="30s")
    assert (await store.schedules.get(schedule.id)).jitter == "30s"
    cleared = await store.schedules.update(
        schedule.id, SchedulePatch(updated_at=at(5), jitter=None), expected_version=1)
    assert cleared.jitter is None


async def test_a_schedule_failure_pause_fields_round_trip(store: Store) -> None:
    """``pause_after_failures``, ``consecutive_failures`` and ``note`` read back as written,
    and a compare-and-set sets them together with the status."""
    schedule = await make_schedule(store, await a_workflow(store), pause_after_failures=2)
    read = await store.schedules.get(schedule.id)
    assert (read.pause_after_failures, read.consecutive_failures, read.note) == (2, 0, None)
    paused = await store.schedules.update(
        schedule.id, SchedulePatch(updated_at=at(5), consecutive_failures=2, note="why",
                                   status=ScheduleStatus.PAUSED), expected_version=1)
    assert (paused.consecutive_failures, paused.note, paused.status) == (
        2, "why", ScheduleStatus.PAUSED)


async def test_updating_a_schedule_sets_only_the_patch_and_bumps_the_version(
        store: Store) -> None:
    """Unset fields stay as stored; ``None`` clears a nullable field; the version goes up."""
    schedule = await make_schedule(store, await a_workflow(store), last_run_at=at(-5),
                                   timeout=12.5)
    changed = await store.schedules.update(
        schedule.id, SchedulePatch(updated_at=at(1), next_run_at=None, schedule_expr="1h"),
        expected_version=1)
    assert changed == msgspec.structs.replace(schedule, next_run_at=None, schedule_expr="1h",
                                              updated_at=at(1), version=2)
    assert await store.schedules.get(schedule.id) == changed
    again = await store.schedules.update(
        schedule.id, SchedulePatch(updated_at=at(2), status=ScheduleStatus.PAUSED,
                                   timeout=None),
        expected_version=2)
    assert (again.version, again.status, again.timeout) == (3, ScheduleStatus.PAUSED, None)
    assert (again.schedule_expr, again.last_run_at) == ("1h", at(-5))


async def test_an_update_from_an_old_version_is_a_stale_write(store: Store) -> None:
    """A writer that read before another's update loses and changes nothing."""
    schedule = await make_schedule(store, await a_workflow(store))
    first = await store.schedules.update(
        schedule.id, SchedulePatch(updated_at=at(1), input_value="first"), expected_version=1)
    with pytest.raises(StaleWriteError):
        await store.schedules.update(
            schedule.id, SchedulePatch(updated_at=at(2), input_value="second",
                                       schedule_expr="1h"),
            expected_version=1)
    assert await store.schedules.get(schedule.id) == first


async def test_concurrent_updates_from_one_version_have_one_winner(store: Store) -> None:
    """Writers racing from the same read: one succeeds, every other is a stale write."""
    schedule = await make_schedule(store, await a_workflow(store))
    results = await asyncio.gather(*(
        store.schedules.update(schedule.id, SchedulePatch(updated_at=at(1),
                                                          input_value=f"writer {index}"),
                               expected_version=1)
        for index in range(8)
    ), return_exceptions=True)
    [winner] = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(losers) == 7
    assert all(isinstance(loser, StaleWriteError) for loser in losers)
    assert await store.schedules.get(schedule.id) == winner
    assert winner.version == 2


async def test_updating_an_unknown_schedule_or_to_an_unknown_workflow_is_not_found(
        store: Store) -> None:
    """Unknown ids are not found rather than stale."""
    schedule = await make_schedule(store, await a_workflow(store))
    with pytest.raises(NotFoundError, match="Schedule nope not found"):
        await store.schedules.update(ScheduleId("nope"), SchedulePatch(updated_at=at(1)),
                                     expected_version=1)
    ghost = WorkflowId(new_id())
    with pytest.raises(NotFoundError):
        await store.schedules.update(schedule.id, SchedulePatch(updated_at=at(1),
                                                                workflow_id=ghost),
                                     expected_version=1)
    assert await store.schedules.get(schedule.id) == schedule


async def test_deleting_a_schedule_keeps_its_tasks(store: Store) -> None:
    """A deleted schedule's tasks keep their ``schedule_id`` for history."""
    workflow = await a_workflow(store)
    schedule = await make_schedule(store, workflow)
    task = await make_task(store, workflow, schedule_id=schedule.id)
    await store.schedules.delete(schedule.id)
    assert (await store.tasks.get(task.id)).schedule_id == schedule.id
    with pytest.raises(NotFoundError):
        await store.schedules.get(schedule.id)
    with pytest.raises(NotFoundError):
        await store.schedules.delete(schedule.id)
    with pytest.raises(NotFoundError):
        await store.schedules.update(schedule.id, SchedulePatch(updated_at=at(1)),
                                     expected_version=1)


async def test_due_schedules_are_active_ones_due_by_the_store_clock_earliest_first(
        store: Store, clock: FakeClock) -> None:
    """Paused, future and unscheduled schedules are not due; ``limit`` caps the answer."""
    workflow = await a_workflow(store)
    later = await make_schedule(store, workflow, next_run=5)
    earlier = await make_schedule(store, workflow, next_run=1)
    await make_schedule(store, workflow, next_run=2, status=ScheduleStatus.PAUSED)
    await make_schedule(store, workflow, next_run=30)
    await make_schedule(store, workflow, next_run=None)
    assert (await store.schedules.due(limit=10)).schedules == []
    clock.set(at(5))
    due = await store.schedules.due(limit=10)
    assert (due.now, due.schedules) == (at(5), [earlier, later])
    assert_utc(due)
    assert (await store.schedules.due(limit=1)).schedules == [earlier]


async def test_next_due_is_the_earliest_next_run_of_an_active_schedule(
        store: Store, clock: FakeClock) -> None:
    """Paused schedules do not count; no active schedule means ``None``; ``now`` is the
    store's."""
    assert await store.schedules.next_due() == NextDue(now=T0, at=None)
    workflow = await a_workflow(store)
    await make_schedule(store, workflow, next_run=1, status=ScheduleStatus.PAUSED)
    await make_schedule(store, workflow, next_run=7)
    await make_schedule(store, workflow, next_run=3)
    clock.set(at(2))
    next_due = await store.schedules.next_due()
    assert (next_due.now, next_due.at) == (at(2), at(3))
    assert_utc(next_due)


async def test_firing_a_schedule_wins_once_per_expected_version(store: Store) -> None:
    """The compare-and-set writes the schedule and its tasks for exactly one caller."""
    workflow = await a_workflow(store)
    schedule = await make_schedule(store, workflow, next_run=10)
    task = new_task(workflow, schedule_id=schedule.id, scheduled_for=at(10))
    assert await store.schedules.fire(schedule.id, fired(10, next_run=20), expected_version=1,
                                      tasks=[task])
    rival = new_task(workflow, schedule_id=schedule.id, scheduled_for=at(11))
    assert not await store.schedules.fire(schedule.id, fired(10, next_run=30),
                                          expected_version=1, tasks=[rival])
    read = await store.schedules.get(schedule.id)
    assert read == msgspec.structs.replace(schedule, next_run_at=at(20), last_run_at=at(10),
                                           updated_at=at(10), version=2)
    tasks = (await store.tasks.list(TaskFilter(), limit=10, offset=0)).items
    assert [t.id for t in tasks] == [task.id]
    assert (await store.tasks.get(task.id)).scheduled_for == at(10)


async def test_concurrent_fires_of_one_version_have_one_winner(store: Store) -> None:
    """N schedulers racing on the same due schedule fire it once."""
    workflow = await a_workflow(store)
    schedule = await make_schedule(store, workflow, next_run=10)
    results = await asyncio.gather(*(
        store.schedules.fire(schedule.id, fired(10, next_run=20), expected_version=1,
                             tasks=[new_task(workflow, schedule_id=schedule.id,
                                             scheduled_for=at(10 + index))])
        for index in range(8)
    ))
    assert sorted(results) == [False] * 7 + [True]
    assert (await store.tasks.list(TaskFilter(), limit=10, offset=0)).total == 1
    assert (await store.schedules.get(schedule.id)).version == 2


async def test_a_fire_does_not_insert_an_occasion_that_already_has_a_task(store: Store) -> None:
    """(schedule_id, scheduled_for) is unique: a task for a taken occasion is skipped, the rest
    go in."""
    workflow = await a_workflow(store)
    schedule = await make_schedule(store, workflow, next_run=10)
    first = new_task(workflow, schedule_id=schedule.id, scheduled_for=at(10))
    assert await store.schedules.fire(schedule.id, fired(10, next_run=20), expected_version=1,
                                      tasks=[first])
    again = new_task(workflow, schedule_id=schedule.id, scheduled_for=at(10), created=1)
    fresh = new_task(workflow, schedule_id=schedule.id, scheduled_for=at(20), created=1)
    assert await store.schedules.fire(schedule.id, fired(20, next_run=30), expected_version=2,
                                      tasks=[again, fresh])
    tasks = (await store.tasks.list(TaskFilter(schedule_id=schedule.id), limit=10,
                                    offset=0)).items
    assert sorted(t.id for t in tasks) == sorted([first.id, fresh.id])
    assert (await store.schedules.get(schedule.id)).version == 3


async def test_a_catch_up_fire_inserts_every_occasion_of_a_large_batch(store: Store) -> None:
    """A fire carrying many occasions at once (a catch-up or a backfill, more than a round of
    due schedules) stores each of them, still skipping one already taken."""
    workflow = await a_workflow(store)
    schedule = await make_schedule(store, workflow, next_run=10)
    taken = new_task(workflow, schedule_id=schedule.id, scheduled_for=at(10))
    assert await store.schedules.fire(schedule.id, fired(10, next_run=20), expected_version=1,
                                      tasks=[taken])
    batch = [new_task(workflow, schedule_id=schedule.id, scheduled_for=at(10 * minute),
                      created=1) for minute in range(1, 26)]
    assert await store.schedules.fire(schedule.id, fired(250, next_run=260),
                                      expected_version=2, tasks=batch)
    stored = (await store.tasks.list(TaskFilter(schedule_id=schedule.id), limit=100,
                                     offset=0)).items
    assert sorted(task.id for task in stored) == sorted([taken.id] + [t.id for t in batch[1:]])


async def test_firing_an_unknown_schedule_changes_nothing(store: Store) -> None:
    """A schedule deleted meanwhile loses the compare-and-set."""
    workflow = await a_workflow(store)
    schedule = new_schedule(workflow)
    assert not await store.schedules.fire(schedule.id, fired(10, next_run=20),
                                          expected_version=1, tasks=[new_task(workflow)])
    assert (await store.tasks.list(TaskFilter(), limit=10, offset=0)).total == 0


async def test_active_task_counts_cover_pending_and_running_tasks_of_one_schedule(
        store: Store) -> None:
    """Finished tasks and other schedules' tasks are not counted."""
    workflow = await a_workflow(store)
    schedule = await make_schedule(store, workflow)
    for status in (TaskStatus.PENDING, TaskStatus.PENDING, TaskStatus.RUNNING,
                   TaskStatus.COMPLETED, TaskStatus.FAILED):
        await make_task(store, workflow, schedule_id=schedule.id, status=status)
    await make_task(store, workflow, status=TaskStatus.PENDING)
    assert await store.schedules.count_active_tasks(schedule.id) == (2, 1)
    assert await store.schedules.count_active_tasks(ScheduleId("other")) == (0, 0)


async def test_dueness_compares_instants_whatever_the_offset_written(
        store: Store, clock: FakeClock) -> None:
    """A ``next_run_at`` written at +02:00 or without offset (UTC) is due at that instant."""
    workflow = await a_workflow(store)
    plus_two = timezone(timedelta(hours=2))
    offset = await make_schedule(store, workflow, next_run=None,
                                 next_run_at=at(5).astimezone(plus_two))
    naive = await make_schedule(store, workflow, next_run=None,
                                next_run_at=at(6).replace(tzinfo=None))
    assert (offset.next_run_at, naive.next_run_at) == (at(5), at(6))
    assert_utc(offset)
    assert_utc(naive)
    assert (await store.schedules.next_due()).at == at(5)
    clock.set(at(4.99))
    assert (await store.schedules.due(limit=10)).schedules == []
    clock.set(at(5))
    assert [s.id for s in (await store.schedules.due(limit=10)).schedules] == [offset.id]
    clock.set(at(6))
    assert [s.id for s in (await store.schedules.due(limit=10)).schedules] == [offset.id,
                                                                              naive.id]
