"""The task repository's contract: records, lists and cancels."""

import msgspec
import pytest

from spark_core.errors import ConflictError, InvalidStateError, NotFoundError
from spark_core.models import TaskId, TaskStatus, WorkflowId, new_id
from spark_core.ports import Store, TaskFilter
from tests.contract.builders import (
    LEASE,
    a_workflow,
    assert_utc,
    at,
    make_schedule,
    make_source,
    make_task,
    make_workflow,
    outcome,
)
from tests.fakes.clock import FakeClock


async def test_a_task_needs_an_existing_workflow_and_a_fresh_id(store: Store) -> None:
    """Unknown workflow is not found; a reused id is a conflict."""
    workflow = await a_workflow(store)
    ghost = msgspec.structs.replace(workflow, id=WorkflowId(new_id()))
    with pytest.raises(NotFoundError, match=f"Workflow {ghost.id} not found"):
        await make_task(store, ghost)
    task = await make_task(store, workflow)
    with pytest.raises(ConflictError):
        await store.tasks.add(task)


async def test_a_second_task_for_one_schedule_occasion_is_a_conflict(store: Store) -> None:
    """(schedule_id, scheduled_for) is unique when both are set; unscheduled tasks repeat."""
    workflow = await a_workflow(store)
    schedule = await make_schedule(store, workflow)
    await make_task(store, workflow, schedule_id=schedule.id, scheduled_for=at(10))
    with pytest.raises(ConflictError):
        await make_task(store, workflow, schedule_id=schedule.id, scheduled_for=at(10))
    await make_task(store, workflow, schedule_id=schedule.id, scheduled_for=at(20))
    await make_task(store, workflow, schedule_id=schedule.id)
    await make_task(store, workflow, schedule_id=schedule.id)
    await make_task(store, workflow, scheduled_for=at(10))
    await make_task(store, workflow, scheduled_for=at(10))
    assert (await store.tasks.list(TaskFilter(), limit=10, offset=0)).total == 6


async def test_a_task_round_trips_with_its_raw_output_and_tweaks(store: Store) -> None:
    """JSON fields, optional datetimes and numbers read back as written."""
    task = await make_task(
        store, await a_workflow(store), status=TaskStatus.FAILED, output_data="answer",
        output_raw={"outputs": [{"text": "é"}], "n": 1.5}, tweaks={"A": {"b": 1}},
        error="boom", tries=2, next_retry_at=at(3), scheduled_for=at(1), timeout=30.0,
        session_id="s", started_at=at(1), finished_at=at(2))
    read = await store.tasks.get(task.id)
    assert read == task
    assert_utc(read)
    assert read.output_raw == {"outputs": [{"text": "é"}], "n": 1.5}
    assert read.finished_at == at(2)
    assert read.status is TaskStatus.FAILED


async def test_tasks_list_newest_first_without_their_raw_output(store: Store) -> None:
    """The list leaves out ``output_raw``; a single read has it."""
    workflow = await a_workflow(store)
    old = await make_task(store, workflow, created=1, output_raw={"big": "x" * 1000})
    new = await make_task(store, workflow, created=2, output_raw=["raw"])
    items = (await store.tasks.list(TaskFilter(), limit=10, offset=0)).items
    assert [t.id for t in items] == [new.id, old.id]
    assert [t.output_raw for t in items] == [None, None]
    assert items[1] == msgspec.structs.replace(old, output_raw=None)
    assert (await store.tasks.get(old.id)).output_raw == {"big": "x" * 1000}


async def test_tasks_list_filters_by_workflow_schedule_and_status_with_totals(
        store: Store) -> None:
    """Each filter narrows the list and its total."""
    source = await make_source(store)
    one = await make_workflow(store, source, remote_id="1")
    two = await make_workflow(store, source, remote_id="2")
    schedule = await make_schedule(store, one)
    scheduled = await make_task(store, one, created=1, schedule_id=schedule.id)
    failed = await make_task(store, one, created=2, status=TaskStatus.FAILED)
    await make_task(store, two, created=3)
    by_workflow = await store.tasks.list(TaskFilter(workflow_id=one.id), limit=1, offset=0)
    assert ([t.id for t in by_workflow.items], by_workflow.total) == ([failed.id], 2)
    assert by_workflow.has_more
    by_schedule = await store.tasks.list(TaskFilter(schedule_id=schedule.id), limit=10,
                                         offset=0)
    assert [t.id for t in by_schedule.items] == [scheduled.id]
    by_status = await store.tasks.list(TaskFilter(status=TaskStatus.FAILED), limit=10,
                                       offset=0)
    assert [t.id for t in by_status.items] == [failed.id]
    second_page = await store.tasks.list(TaskFilter(), limit=2, offset=2)
    assert (len(second_page.items), second_page.total, second_page.has_more) == (1, 3, False)


async def test_deleting_a_task_needs_it_to_exist(store: Store) -> None:
    """A deleted task is gone; unknown ids are not found."""
    task = await make_task(store, await a_workflow(store))
    await store.tasks.delete(task.id)
    with pytest.raises(NotFoundError, match=f"Task {task.id} not found"):
        await store.tasks.get(task.id)
    with pytest.raises(NotFoundError):
        await store.tasks.delete(task.id)


async def test_cancelling_a_pending_or_running_task_finishes_it_as_cancelled(
        store: Store, clock: FakeClock) -> None:
    """Cancel stamps ``finished_at`` and ``updated_at`` and clears the lease."""
    workflow = await a_workflow(store)
    pending = await make_task(store, workflow, created=2)
    running = await make_task(store, workflow, created=1)
    await store.queue.claim(owner="w1", limit=1, lease_seconds=60)
    for task in (pending, running):
        cancelled = await store.tasks.cancel(task.id, now=at(3))
        assert cancelled.status is TaskStatus.CANCELLED
        assert cancelled.finished_at == cancelled.updated_at == at(3)
        assert await store.tasks.get(task.id) == cancelled
    assert await store.queue.held(owner="w1", task_ids=[running.id]) == []
    assert await store.queue.renew(owner="w1", lease_seconds=LEASE,
                                   task_ids=[pending.id, running.id]) == []
    clock.set(at(9))
    assert await store.queue.expired(limit=10) == []


async def test_watching_a_tasks_end_changes_nothing_a_reader_sees(store: Store) -> None:
    """A waiter asks before it reads: on a pending, running or finished task, or one that
    does not exist, the ask is no error, it answers ``False`` (read it) only for one that
    ended, and the task reads the same afterwards, runs and ends as any other."""
    workflow = await a_workflow(store)
    oldest = await make_task(store, workflow, created=1)
    pending = await make_task(store, workflow, created=2)
    finished = await make_task(store, workflow, status=TaskStatus.COMPLETED)
    [claimed] = await store.queue.claim(owner="w1", limit=1, lease_seconds=LEASE)
    assert claimed.id == oldest.id
    for task in (claimed, pending, finished):
        before = await store.tasks.get(task.id)
        for _ in range(2):
            if not await store.tasks.watch_end(task.id):
                assert task is finished  # ended: no hint will come
        assert await store.tasks.get(task.id) == before
    await store.tasks.watch_end(TaskId("nope"))
    ended = await store.queue.release(claimed, outcome(TaskStatus.COMPLETED, 2), owner="w1")
    assert ended is not None
    assert await store.tasks.get(claimed.id) == ended
    assert (await store.tasks.cancel(pending.id, now=at(3))).status is TaskStatus.CANCELLED


async def test_cancelling_a_finished_task_is_an_invalid_state(store: Store) -> None:
    """Completed, failed and cancelled tasks stay as they are."""
    workflow = await a_workflow(store)
    for status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED):
        task = await make_task(store, workflow, status=status)
        with pytest.raises(InvalidStateError):
            await store.tasks.cancel(task.id, now=at(1))
        assert await store.tasks.get(task.id) == task
    with pytest.raises(NotFoundError):
        await store.tasks.cancel(TaskId("nope"), now=at(1))
