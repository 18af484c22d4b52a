"""The store's lifecycle, node registry and wake-up feed, on every store."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from spark_core.models import TaskStatus
from spark_core.ports import SchedulePatch, Store, WakeUp, WakeUpKind, WorkflowPatch
from tests.contract.builders import (
    LEASE,
    a_workflow,
    at,
    fired,
    make_schedule,
    make_task,
    new_task,
    outcome,
)

STARTING_HINTS = {WakeUpKind.WORK, WakeUpKind.SCHEDULES}


class Hints:
    """The hints one listener received, and a way to wait for the ones a test expects."""

    def __init__(self) -> None:
        self.received: list[WakeUp] = []
        self._arrived = asyncio.Event()

    def deliver(self, hint: WakeUp) -> None:
        """The ``listen`` callback."""
        self.received.append(hint)
        self._arrived.set()

    async def until(self, ready: Callable[[list[WakeUp]], bool]) -> None:
        """Wait (real time, at most five seconds) until the hints satisfy ``ready``."""
        async with asyncio.timeout(5):
            while not ready(self.received):
                self._arrived.clear()
                await self._arrived.wait()


@asynccontextmanager
async def listening(store: Store) -> AsyncIterator[Hints]:
    """Run ``listen`` in a task until the block ends; the first two hints (the
    after-connection ``WORK`` and ``SCHEDULES``) have arrived when the block starts."""
    hints = Hints()
    listener = asyncio.create_task(store.wakeups.listen(hints.deliver))
    try:
        await hints.until(lambda received: len(received) >= 2)
        yield hints
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)


async def test_an_open_store_answers_a_ping_and_migrates_idempotently(store: Store) -> None:
    """Migrating again changes nothing and reaches the same version; the description prints."""
    assert await store.ping()
    version = await store.migrate()
    assert version >= 1
    assert await store.migrate() == version
    assert isinstance(store.description, str)
    assert store.description


async def test_a_registered_live_node_is_not_dead(store: Store) -> None:
    """A process whose session still exists is alive, before and after it withdraws."""
    await store.nodes.register("node-a")
    await store.nodes.register("node-a")
    assert "node-a" not in await store.nodes.dead()
    await store.nodes.unregister("node-a")
    await store.nodes.unregister("never-registered")
    assert "node-a" not in await store.nodes.dead()


async def test_a_listener_first_hears_work_and_schedules(store: Store) -> None:
    """Hints may have been missed before connecting, so listening starts with both."""
    async with listening(store) as hints:
        assert {hint.kind for hint in hints.received[:2]} == STARTING_HINTS
    assert store.wakeups.poll_seconds > 0


async def test_adding_a_task_wakes_listeners_for_work(store: Store) -> None:
    """A new pending task is announced as work."""
    workflow = await a_workflow(store)
    async with listening(store) as hints:
        await make_task(store, workflow)
        await hints.until(lambda received: any(h.kind is WakeUpKind.WORK
                                                  for h in received[2:]))


async def test_a_task_added_claimed_but_left_pending_wakes_listeners_for_work(
        store: Store) -> None:
    """A run one process could not start at once (its workflow is at its limit) is announced
    as work, so another process may take it."""
    workflow = await store.workflows.update(
        (await a_workflow(store)).id, WorkflowPatch(updated_at=at(0), max_concurrency=1))
    await store.queue.add_claimed(new_task(workflow), owner="w1", lease_seconds=LEASE)
    async with listening(store) as hints:
        waiting = await store.queue.add_claimed(new_task(workflow, created=1), owner="w1",
                                                lease_seconds=LEASE)
        assert waiting.status is TaskStatus.PENDING
        await hints.until(lambda received: any(h.kind is WakeUpKind.WORK
                                                  for h in received[2:]))


async def test_schedule_writes_wake_listeners_for_schedules(store: Store) -> None:
    """Adding, updating, firing and deleting a schedule each announce a schedules change."""
    workflow = await a_workflow(store)

    def schedules_hints(received: list[WakeUp]) -> int:
        return sum(h.kind is WakeUpKind.SCHEDULES for h in received[2:])

    async with listening(store) as hints:
        schedule = await make_schedule(store, workflow)
        await hints.until(lambda received: schedules_hints(received) >= 1)
        await store.schedules.update(schedule.id, SchedulePatch(updated_at=at(1)),
                                     expected_version=1)
        await hints.until(lambda received: schedules_hints(received) >= 2)
        task = new_task(workflow, schedule_id=schedule.id, scheduled_for=at(10))
        assert await store.schedules.fire(schedule.id, fired(10, next_run=20),
                                          expected_version=2, tasks=[task])
        await hints.until(lambda received: schedules_hints(received) >= 3
                          and any(h.kind is WakeUpKind.WORK for h in received[2:]))
        await store.schedules.delete(schedule.id)
        await hints.until(lambda received: schedules_hints(received) >= 4)


async def test_cancelling_a_task_wakes_its_runner_and_its_waiters(store: Store) -> None:
    """A cancel is announced with the task's id, both as a cancel and as finished."""
    task = await make_task(store, await a_workflow(store))
    await store.queue.claim(owner="w1", limit=1, lease_seconds=LEASE)
    expected = {WakeUp(kind=WakeUpKind.CANCEL, id=task.id),
                WakeUp(kind=WakeUpKind.FINISHED, id=task.id)}
    async with listening(store) as hints:
        await store.tasks.cancel(task.id, now=at(1))
        await hints.until(lambda received: expected <= set(received))


async def test_a_final_release_wakes_the_tasks_waiters(store: Store) -> None:
    """A task whose end a waiter watches (``watch_end``), released with a final status, is
    announced as finished, with its id."""
    task = await make_task(store, await a_workflow(store))
    [claimed] = await store.queue.claim(owner="w1", limit=1, lease_seconds=LEASE)
    assert await store.tasks.watch_end(task.id)
    async with listening(store) as hints:
        assert await store.queue.release(claimed, outcome(TaskStatus.COMPLETED, 1),
                                         owner="w1")
        await hints.until(lambda received: WakeUp(kind=WakeUpKind.FINISHED, id=task.id)
                          in received)
