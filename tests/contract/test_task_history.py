"""The task history contract: every attempt recorded, text and time-range search, retention."""

from datetime import timedelta

from spark_core.models import TaskAttempt, TaskStatus
from spark_core.ports import Store, TaskFilter
from tests.contract.builders import LEASE, a_workflow, assert_utc, at, make_task, outcome
from tests.fakes.clock import FakeClock


async def test_every_attempt_is_recorded_with_its_start_end_and_error(
        store: Store, clock: FakeClock) -> None:
    """A retried task shows each attempt; ``started_at`` stays the first attempt's start."""
    task = await make_task(store, await a_workflow(store))
    clock.set(at(1))
    [first] = await store.queue.claim(owner="w1", limit=1, lease_seconds=LEASE)
    assert first.attempts == [TaskAttempt(attempt=1, started_at=at(1))]
    retry = outcome(TaskStatus.PENDING, 2, error="connection refused", next_retry_at=at(3))
    waiting = await store.queue.release(first, retry, owner="w1")
    assert waiting == await store.tasks.get(task.id)
    clock.set(at(3))
    [second] = await store.queue.claim(owner="w1", limit=1, lease_seconds=LEASE)
    finished = await store.queue.release(second, outcome(TaskStatus.COMPLETED, 4), owner="w1")
    assert finished == await store.tasks.get(task.id)
    done = await store.tasks.get(task.id)
    assert done.started_at == at(1)
    assert done.attempts == [
        TaskAttempt(attempt=1, started_at=at(1), finished_at=at(2), error="connection refused"),
        TaskAttempt(attempt=2, started_at=at(3), finished_at=at(4), error=None),
    ]
    for attempt in done.attempts:
        assert_utc(attempt)
    [listed] = (await store.tasks.list(TaskFilter(), limit=5, offset=0)).items
    assert listed.attempts == []


async def test_an_abandoned_or_cancelled_attempt_is_recorded_as_ended(
        store: Store, clock: FakeClock) -> None:
    """Recovery writes the attempt's error; a cancel ends the running attempt as cancelled."""
    workflow = await a_workflow(store)
    lost = await make_task(store, workflow, created=0)
    stopped = await make_task(store, workflow, created=1)
    clock.set(at(1))
    await store.queue.claim(owner="w1", limit=2, lease_seconds=LEASE)
    await store.tasks.cancel(stopped.id, now=at(2))
    clock.set(at(30))
    interrupted = outcome(TaskStatus.FAILED, 30, error="interrupted")
    assert await store.queue.recover(lost.id, interrupted, attempt=1)
    assert (await store.tasks.get(lost.id)).attempts == [
        TaskAttempt(attempt=1, started_at=at(1), finished_at=at(30), error="interrupted")]
    assert (await store.tasks.get(stopped.id)).attempts == [
        TaskAttempt(attempt=1, started_at=at(1), finished_at=at(2), error="cancelled")]


async def test_tasks_are_found_by_text_in_their_input_answer_or_error(store: Store) -> None:
    """``q`` matches any of the three, ignoring case, wildcards taken literally."""
    workflow = await a_workflow(store)
    by_input = await make_task(store, workflow, input_data="Weather in PARIS?", created=1)
    by_output = await make_task(store, workflow, output_data="paris is sunny", created=2)
    by_error = await make_task(store, workflow, error="Paris_api 500", created=3)
    await make_task(store, workflow, input_data="London", created=4)
    found = await store.tasks.list(TaskFilter(q="paris"), limit=10, offset=0)
    assert [t.id for t in found.items] == [by_error.id, by_output.id, by_input.id]
    assert found.total == 3
    literal = await store.tasks.list(TaskFilter(q="s_a"), limit=10, offset=0)
    assert [t.id for t in literal.items] == [by_error.id]


async def test_tasks_are_listed_within_a_creation_time_range(store: Store) -> None:
    """``created_after`` is inclusive and ``created_before`` exclusive."""
    workflow = await a_workflow(store)
    tasks = [await make_task(store, workflow, created=minute) for minute in range(5)]
    window = TaskFilter(created_after=at(1), created_before=at(3))
    found = await store.tasks.list(window, limit=10, offset=0)
    assert [t.id for t in found.items] == [tasks[2].id, tasks[1].id]
    assert found.total == 2


async def test_tasks_changed_since_a_time_are_listed(store: Store) -> None:
    """``updated_after`` (inclusive) keeps tasks changed at or after it, however old."""
    workflow = await a_workflow(store)
    tasks = [await make_task(store, workflow, created=minute) for minute in range(3)]
    await make_task(store, workflow, created=-60, updated_at=at(5))
    changed = await store.tasks.list(TaskFilter(updated_after=at(2)), limit=10, offset=0)
    assert [t.updated_at for t in changed.items] == [at(2), at(5)]
    assert changed.items[0].id == tasks[2].id
    assert changed.total == 2


async def test_pruning_deletes_only_finished_tasks_older_than_the_cutoff(
        store: Store, clock: FakeClock) -> None:
    """Pending and running tasks stay however old; ``older_than`` is judged by the store."""
    workflow = await a_workflow(store)
    old_done = await make_task(store, workflow, status=TaskStatus.COMPLETED, finished_at=at(1))
    old_failed = await make_task(store, workflow, status=TaskStatus.FAILED, finished_at=at(2))
    recent = await make_task(store, workflow, status=TaskStatus.CANCELLED, finished_at=at(50))
    waiting = await make_task(store, workflow)
    assert await store.tasks.prune(before=at(2), limit=100) == 1
    clock.set(at(60))
    assert await store.tasks.prune(older_than=timedelta(minutes=30), limit=100) == 1
    left = await store.tasks.list(TaskFilter(), limit=10, offset=0)
    assert {t.id for t in left.items} == {recent.id, waiting.id}
    assert old_done.id != old_failed.id
    assert await store.tasks.prune(before=at(1000), limit=0) == 0
    assert await store.tasks.prune(before=at(1000), limit=100) == 1
