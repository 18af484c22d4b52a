"""The task queue's contract: claims, leases fenced by owner and attempt, and recovery, all
judged by the store's clock."""

import asyncio
from datetime import timedelta, timezone

import msgspec
import pytest

from spark_core.errors import ConflictError, NotFoundError, StaleTargetError
from spark_core.models import Task, TaskId, TaskStatus, WorkflowId
from spark_core.ports import SourcePatch, Store, TaskFilter, WorkflowPatch
from tests.contract.builders import (
    LEASE,
    a_workflow,
    assert_utc,
    at,
    make_task,
    make_workflow,
    new_task,
    outcome,
)
from tests.fakes.clock import FakeClock


async def test_claiming_takes_runnable_pending_tasks_oldest_first(
        store: Store, clock: FakeClock) -> None:
    """Tasks waiting for a future retry, or not pending, are left alone."""
    workflow = await a_workflow(store)
    newer = await make_task(store, workflow, created=2)
    older = await make_task(store, workflow, created=1)
    retry_due = await make_task(store, workflow, created=3, next_retry_at=at(5))
    later = await make_task(store, workflow, created=0, next_retry_at=at(6))
    await make_task(store, workflow, created=0, status=TaskStatus.COMPLETED)
    clock.set(at(5))
    first = await store.queue.claim(owner="w1", limit=2, lease_seconds=LEASE)
    assert [t.id for t in first] == [older.id, newer.id]
    rest = await store.queue.claim(owner="w1", limit=10, lease_seconds=LEASE)
    assert [t.id for t in rest] == [retry_due.id]
    clock.set(at(6))
    assert [t.id for t in await store.queue.claim(owner="w1", limit=10,
                                                  lease_seconds=LEASE)] == [later.id]


async def test_a_claimed_task_is_running_with_a_start_time_and_one_more_try(
        store: Store, clock: FakeClock) -> None:
    """Claiming sets status, ``started_at``, ``updated_at`` (the store's now) and ``tries``."""
    task = await make_task(store, await a_workflow(store), tries=1)
    clock.set(at(1))
    [claimed] = await store.queue.claim(owner="w1", limit=5, lease_seconds=LEASE)
    assert (claimed.id, claimed.status, claimed.tries) == (task.id, TaskStatus.RUNNING, 2)
    assert claimed.started_at == claimed.updated_at == at(1)
    assert_utc(claimed)
    assert await store.tasks.get(task.id) == claimed


async def test_a_retried_task_keeps_the_start_time_of_its_first_attempt(
        store: Store, clock: FakeClock) -> None:
    """``started_at`` is set by the first claim only; every claim adds a try."""
    task = await make_task(store, await a_workflow(store))
    clock.set(at(1))
    [first] = await store.queue.claim(owner="w1", limit=1, lease_seconds=LEASE)
    retry = outcome(TaskStatus.PENDING, 2, error="flaky", next_retry_at=at(3))
    assert await store.queue.release(first, retry, owner="w1")
    waiting = await store.tasks.get(task.id)
    assert (waiting.status, waiting.error, waiting.next_retry_at) == (TaskStatus.PENDING,
                                                                      "flaky", at(3))
    clock.set(at(2.5))
    assert await store.queue.claim(owner="w2", limit=1, lease_seconds=LEASE) == []
    clock.set(at(3))
    [second] = await store.queue.claim(owner="w2", limit=1, lease_seconds=LEASE)
    assert (second.tries, second.started_at, second.updated_at) == (2, at(1), at(3))


async def test_a_task_is_never_claimed_twice(store: Store) -> None:
    """A second claimer gets only what the first left."""
    workflow = await a_workflow(store)
    for index in range(5):
        await make_task(store, workflow, created=index)
    one = await store.queue.claim(owner="w1", limit=3, lease_seconds=LEASE)
    two = await store.queue.claim(owner="w2", limit=3, lease_seconds=LEASE)
    assert (len(one), len(two)) == (3, 2)
    assert not {t.id for t in one} & {t.id for t in two}
    assert await store.queue.claim(owner="w3", limit=3, lease_seconds=LEASE) == []


async def test_concurrent_claimers_never_get_the_same_task(store: Store) -> None:
    """Many claims racing over the same queue share it out without a duplicate."""
    workflow = await a_workflow(store)
    for index in range(30):
        await make_task(store, workflow, created=index)
    batches = await asyncio.gather(*(
        store.queue.claim(owner=f"w{index}", limit=3, lease_seconds=LEASE)
        for index in range(16)
    ))
    claimed = [task.id for batch in batches for task in batch]
    assert len(claimed) == len(set(claimed)) == 30
    for index, batch in enumerate(batches):
        ids = sorted(t.id for t in batch)
        assert sorted(await store.queue.held(owner=f"w{index}", task_ids=ids)) == ids


async def test_claiming_named_tasks_leaves_every_other_task_alone(store: Store) -> None:
    """A claim narrowed to ids takes only those, and only while they are runnable."""
    workflow = await a_workflow(store)
    older = await make_task(store, workflow, created=1)
    mine = await make_task(store, workflow, created=2)
    claimed = await store.queue.claim(owner="w1", limit=5, lease_seconds=LEASE,
                                      task_ids=[mine.id])
    assert [t.id for t in claimed] == [mine.id]
    assert (await store.tasks.get(older.id)).status is TaskStatus.PENDING
    assert await store.queue.claim(owner="w2", limit=5, lease_seconds=LEASE,
                                   task_ids=[mine.id]) == []
    assert await store.queue.claim(owner="w2", limit=5, lease_seconds=LEASE,
                                   task_ids=[]) == []


async def test_a_task_added_claimed_is_stored_running_under_the_owners_lease(
        store: Store, clock: FakeClock) -> None:
    """``add_claimed`` stores a new task already running, as a claim would leave it: one try,
    its start and first attempt at the store's now, held by its owner alone, released by
    its first attempt."""
    workflow = await a_workflow(store)
    clock.set(at(1))
    stored = await store.queue.add_claimed(new_task(workflow, created=1), owner="w1",
                                           lease_seconds=LEASE)
    assert (stored.status, stored.tries, stored.started_at) == (TaskStatus.RUNNING, 1, at(1))
    assert [(a.attempt, a.started_at) for a in stored.attempts] == [(1, at(1))]
    assert_utc(stored)
    assert await store.tasks.get(stored.id) == stored
    assert await store.queue.claim(owner="w2", limit=5, lease_seconds=LEASE) == []
    assert await store.queue.held(owner="w1", task_ids=[stored.id]) == [stored.id]
    assert await store.queue.release(stored, outcome(TaskStatus.COMPLETED, 2), owner="w1")
    assert (await store.tasks.get(stored.id)).status is TaskStatus.COMPLETED


async def test_a_task_added_claimed_stays_pending_when_it_cannot_run_yet(
        store: Store, clock: FakeClock) -> None:
    """A task whose workflow has no free slot, or that is not runnable before a later time,
    is stored pending, for any claimer once it can run."""
    unlimited = await a_workflow(store)
    other = await make_workflow(store, await store.sources.get(unlimited.source_id),
                                remote_id="limited")
    workflow = await store.workflows.update(
        other.id, WorkflowPatch(updated_at=at(0), max_concurrency=1))
    first = await store.queue.add_claimed(new_task(workflow, created=1), owner="w1",
                                          lease_seconds=LEASE)
    second = await store.queue.add_claimed(new_task(workflow, created=2), owner="w1",
                                           lease_seconds=LEASE)
    assert (first.status, second.status, second.tries) == (TaskStatus.RUNNING,
                                                           TaskStatus.PENDING, 0)
    assert await store.queue.release(first, outcome(TaskStatus.COMPLETED, 3), owner="w1")
    [following] = await store.queue.claim(owner="w2", limit=5, lease_seconds=LEASE)
    assert following.id == second.id

    later = await store.queue.add_claimed(
        new_task(unlimited, created=3, next_retry_at=at(10)), owner="w1",
        lease_seconds=LEASE)
    assert later.status is TaskStatus.PENDING
    clock.set(at(10))
    assert [t.id for t in await store.queue.claim(owner="w2", limit=5,
                                                  lease_seconds=LEASE)] == [later.id]


async def test_adding_claimed_fails_as_adding_does_and_stores_nothing(store: Store) -> None:
    """An unknown workflow is ``NotFoundError``, a taken id ``ConflictError``; the task already
    there is untouched and nothing else was stored."""
    workflow = await a_workflow(store)
    existing = await make_task(store, workflow)
    with pytest.raises(ConflictError):
        await store.queue.add_claimed(existing, owner="w1", lease_seconds=LEASE)
    orphan = new_task(workflow, workflow_id=WorkflowId("no-such-workflow"))
    with pytest.raises(NotFoundError):
        await store.queue.add_claimed(orphan, owner="w1", lease_seconds=LEASE)
    assert await store.tasks.get(existing.id) == existing
    page = await store.tasks.list(TaskFilter(), limit=10, offset=0)
    assert [task.id for task in page.items] == [existing.id]


async def test_a_task_added_claimed_with_its_target_is_refused_after_a_catalogue_change(
        store: Store) -> None:
    """A task stored with the run target it was made from is refused (``StaleTargetError``,
    nothing stored) once a workflow or a source changed since that target was read, on the
    one-statement path and on a limited workflow's; with the target read again, or with no
    version to check, it is stored."""
    workflow = await a_workflow(store)
    source = await store.sources.get(workflow.source_id)
    other = await make_workflow(store, source, remote_id="other")
    changes = [
        lambda: store.workflows.update(workflow.id, WorkflowPatch(updated_at=at(1),
                                                                  webhook_url="http://h")),
        lambda: store.sources.update(source.id, SourcePatch(updated_at=at(2),
                                                            sealed_key="resealed")),
        lambda: store.workflows.update(other.id, WorkflowPatch(updated_at=at(3),
                                                               max_concurrency=3)),
        # limited: the insert and claim in one transaction
        lambda: store.workflows.update(workflow.id, WorkflowPatch(updated_at=at(4),
                                                                  max_concurrency=20)),
        lambda: store.workflows.update(workflow.id, WorkflowPatch(updated_at=at(5),
                                                                  max_concurrency=30)),
    ]
    for number, change in enumerate(changes):
        target = await store.workflows.run_target(workflow.id)
        await change()
        refused = new_task(workflow, created=number)
        with pytest.raises(StaleTargetError):
            await store.queue.add_claimed(refused, owner="w1", lease_seconds=LEASE,
                                          target=target)
        with pytest.raises(NotFoundError):
            await store.tasks.get(refused.id)
        current = await store.workflows.run_target(workflow.id)
        assert current != target
        stored = await store.queue.add_claimed(new_task(workflow, created=number),
                                               owner="w1", lease_seconds=LEASE, target=current)
        assert stored.status is TaskStatus.RUNNING
        unchecked = msgspec.structs.replace(target, catalogue=None)
        assert (await store.queue.add_claimed(new_task(workflow, created=number), owner="w1",
                                              lease_seconds=LEASE, target=unchecked)).tries == 1
    page = await store.tasks.list(TaskFilter(), limit=20, offset=0)
    assert len(page.items) == 2 * len(changes)


async def test_a_task_added_claimed_with_a_checked_target_still_waits_for_its_limit(
        store: Store) -> None:
    """A checked run target lets the store skip looking at the workflow's limit only when the
    target is the task's own workflow as it stands: a workflow at its limit keeps the new
    task pending, also when the target given is another, unlimited workflow's."""
    limited = await a_workflow(store)
    source = await store.sources.get(limited.source_id)
    unlimited = await make_workflow(store, source, remote_id="unlimited")
    limited = await store.workflows.update(
        limited.id, WorkflowPatch(updated_at=at(1), max_concurrency=1))
    first = await store.queue.add_claimed(
        new_task(limited, created=2), owner="w1", lease_seconds=LEASE,
        target=await store.workflows.run_target(limited.id))
    assert first.status is TaskStatus.RUNNING
    for number, target_of in enumerate((limited, unlimited), start=3):
        waiting = await store.queue.add_claimed(
            new_task(limited, created=number), owner="w1", lease_seconds=LEASE,
            target=await store.workflows.run_target(target_of.id))
        assert waiting.status is TaskStatus.PENDING
        assert (await store.tasks.get(waiting.id)).status is TaskStatus.PENDING
    free = await store.queue.add_claimed(
        new_task(unlimited, created=5), owner="w1", lease_seconds=LEASE,
        target=await store.workflows.run_target(unlimited.id))
    assert free.status is TaskStatus.RUNNING


async def test_a_remembered_run_target_is_never_stored_with_once_it_is_out_of_date(
        store: Store) -> None:
    """``run_target(remembered=True)`` may answer a target read before a change, unchecked;
    a task stored with it is then refused, and one the store accepts was made from the
    current target; a deleted workflow is not found again."""
    workflow = await a_workflow(store)
    first = await store.workflows.run_target(workflow.id, remembered=True)
    assert await store.workflows.run_target(workflow.id, remembered=True) == first
    await store.workflows.update(workflow.id, WorkflowPatch(updated_at=at(1),
                                                            webhook_url="http://elsewhere"))
    remembered = await store.workflows.run_target(workflow.id, remembered=True)
    try:
        stored = await store.queue.add_claimed(new_task(workflow), owner="w1",
                                               lease_seconds=LEASE, target=remembered)
    except StaleTargetError:
        pass
    else:
        assert stored.status is TaskStatus.RUNNING
        assert remembered.workflow.webhook_url == "http://elsewhere"
    assert (await store.workflows.run_target(workflow.id)).workflow.webhook_url == (
        "http://elsewhere")
    assert (await store.workflows.run_target(workflow.id, remembered=True)
            ).workflow.webhook_url == "http://elsewhere"
    await store.workflows.delete(workflow.id)
    with pytest.raises(NotFoundError):
        await store.workflows.run_target(workflow.id)


async def test_outcomes_released_at_once_are_each_written_or_refused_as_if_alone(
        store: Store, clock: FakeClock) -> None:
    """Many runs ending at the same moment (a store may write them together): each outcome
    is written, with its own answer, error and retry time, or refused when the lease is not
    the caller's or the attempt is not the current one; every answer is what a read gives,
    and a refused one leaves its task running under its lease."""
    workflow = await a_workflow(store)
    for number in range(12):
        await make_task(store, workflow, created=number)
    clock.set(at(1))
    claimed = await store.queue.claim(owner="w1", limit=12, lease_seconds=LEASE)
    calls = []
    for number, task in enumerate(claimed):
        if number % 4 == 0:
            done = outcome(TaskStatus.FAILED, 2, error=f"boom {number}",
                           output_raw={"n": number, "text": "ünïcode ✓"})
        elif number % 4 == 1:
            done = outcome(TaskStatus.PENDING, 2, error="retry", next_retry_at=at(5))
        else:
            done = outcome(TaskStatus.COMPLETED, 2, output_data=f"answer {number}",
                           output_raw={"n": number})
        owner = "w2" if number == 5 else "w1"
        asked = msgspec.structs.replace(task, tries=task.tries + 1) if number == 7 else task
        calls.append((task, owner, asked, done))
    answers = await asyncio.gather(*(store.queue.release(asked, done, owner=owner)
                                     for _, owner, asked, done in calls))
    for number, ((task, _, _, done), answer) in enumerate(zip(calls, answers, strict=True)):
        stored = await store.tasks.get(task.id)
        if number in (5, 7):
            assert answer is None
            assert stored.status is TaskStatus.RUNNING
            assert await store.queue.held(owner="w1", task_ids=[task.id]) == [task.id]
            continue
        assert answer == stored
        assert (stored.status, stored.error, stored.next_retry_at) == (
            done.status, done.error, done.next_retry_at)
        assert stored.output_raw == done.output_raw
        assert stored.attempts[-1].finished_at == at(2)
        assert await store.queue.held(owner="w1", task_ids=[task.id]) == []


async def test_runs_added_claimed_at_once_are_each_stored_or_refused_as_if_alone(
        store: Store, clock: FakeClock) -> None:
    """Many runs asked for at the same moment (a store may insert them together): each is
    stored running under its owner's lease, or pending when its workflow is at its limit, or
    refused with its own error (a target out of date, an unknown workflow, a taken id)
    without failing the others; every answer is what a read gives."""
    workflow = await a_workflow(store)
    source = await store.sources.get(workflow.source_id)
    limited = await store.workflows.update(
        (await make_workflow(store, source, remote_id="limited")).id,
        WorkflowPatch(updated_at=at(0), max_concurrency=1))
    existing = await make_task(store, workflow)
    target = await store.workflows.run_target(workflow.id)
    stale = msgspec.structs.replace(target, catalogue=(target.catalogue or 0) + 1000)
    clock.set(at(1))
    fine = [new_task(workflow, created=number) for number in range(8)]
    calls = [*((task, target) for task in fine),
             (new_task(workflow, created=9), stale),
             (new_task(workflow, workflow_id=WorkflowId("no-such-workflow")), None),
             (new_task(limited, created=10), None), (new_task(limited, created=11), None)]
    answers = await asyncio.gather(*(
        store.queue.add_claimed(task, owner=f"w{number % 2}", lease_seconds=LEASE,
                                target=known)
        for number, (task, known) in enumerate(calls)), return_exceptions=True)
    taken = [new_task(workflow, created=12), existing, new_task(workflow, created=13)]
    answers += await asyncio.gather(*(
        store.queue.add_claimed(task, owner="w0", lease_seconds=LEASE) for task in taken),
        return_exceptions=True)
    for number, answer in enumerate([*answers[:8], answers[12], answers[14]]):
        assert isinstance(answer, Task)
        assert (answer.status, answer.tries, answer.started_at) == (TaskStatus.RUNNING, 1, at(1))
        assert answer == await store.tasks.get(answer.id)
        assert await store.queue.held(owner=f"w{number % 2 if number < 8 else 0}",
                                      task_ids=[answer.id]) == [answer.id]
    assert [type(answer) for answer in (answers[8], answers[9], answers[13])] == [
        StaleTargetError, NotFoundError, ConflictError]
    with pytest.raises(NotFoundError):
        await store.tasks.get(calls[8][0].id)
    assert await store.tasks.get(existing.id) == existing
    assert sorted(answer.status for answer in answers[10:12]
                  if isinstance(answer, Task)) == [TaskStatus.PENDING, TaskStatus.RUNNING]


async def test_an_outcome_carrying_nul_characters_is_answered_as_it_is_stored(
        store: Store) -> None:
    """A source's answer may carry NUL characters, which some stores cannot keep as they are
    (PostgreSQL stores U+FFFD instead): release answers the task as a read then gives it,
    after a retry and after the last attempt."""
    workflow = await a_workflow(store)
    task = await make_task(store, workflow)
    [claimed] = await store.queue.claim(owner="w1", limit=1, lease_seconds=LEASE)
    retry = outcome(TaskStatus.PENDING, 1, error="bad\x00byte", output_raw={"x\x00": "y\x00"})
    answer = await store.queue.release(claimed, retry, owner="w1")
    assert answer == await store.tasks.get(task.id)
    [again] = await store.queue.claim(owner="w1", limit=1, lease_seconds=LEASE)
    done = outcome(TaskStatus.COMPLETED, 2, output_data="a\x00b",
                   output_raw={"text": "c\x00d", "list": ["\x00", 1]})
    answer = await store.queue.release(again, done, owner="w1")
    assert answer == await store.tasks.get(task.id)
    assert answer is not None
    assert answer.output_data in ("a\x00b", "a\ufffdb")


async def test_outcomes_carrying_nul_characters_released_at_once_are_answered_as_stored(
        store: Store) -> None:
    """Runs ending together (a store may write them in one statement) with NUL characters,
    quotes and backslashes in their answers and errors: each is answered as a read gives it."""
    workflow = await a_workflow(store)
    for number in range(4):
        await make_task(store, workflow, created=number)
    claimed = await store.queue.claim(owner="w1", limit=4, lease_seconds=LEASE)
    outcomes = [
        outcome(TaskStatus.COMPLETED, 2, output_data=f'a\x00"b\\{number}',
                output_raw={"text": 'c\x00"d\\', "list": ["\x00", number]})
        if number % 2 else
        outcome(TaskStatus.FAILED, 2, error=f"bad\x00byte {number}",
                output_raw={"x\x00": "y\x00\\u0000"})
        for number in range(4)]
    answers = await asyncio.gather(*(store.queue.release(task, done, owner="w1")
                                     for task, done in zip(claimed, outcomes, strict=True)))
    for task, done, answer in zip(claimed, outcomes, answers, strict=True):
        stored = await store.tasks.get(task.id)
        assert answer == stored
        assert stored.status is done.status
        assert stored.output_data in (done.output_data,
                                      (done.output_data or "").replace("\x00", "\ufffd") or None)


async def test_racing_adds_claimed_on_a_limit_of_two_start_two(store: Store) -> None:
    """Many runs asked for at once on a workflow limited to two: two start, the rest wait."""
    workflow = await store.workflows.update(
        (await a_workflow(store)).id, WorkflowPatch(updated_at=at(0), max_concurrency=2))
    stored = await asyncio.gather(*(
        store.queue.add_claimed(new_task(workflow, created=index), owner=f"w{index % 3}",
                                lease_seconds=LEASE)
        for index in range(12)))
    statuses = sorted(task.status for task in stored)
    assert statuses == [TaskStatus.PENDING] * 10 + [TaskStatus.RUNNING] * 2


async def test_renewing_returns_the_tasks_the_owner_still_holds(
        store: Store, clock: FakeClock) -> None:
    """Cancelled or other owners' tasks drop out; the renewed leases run from the store's now."""
    workflow = await a_workflow(store)
    kept = await make_task(store, workflow, created=1)
    cancelled = await make_task(store, workflow, created=2)
    await store.queue.claim(owner="w1", limit=2, lease_seconds=60)
    theirs = await make_task(store, workflow, created=3)
    await store.queue.claim(owner="w2", limit=1, lease_seconds=60)
    await store.tasks.cancel(cancelled.id, now=at(0.5))
    clock.set(at(0.5))
    every = [kept.id, cancelled.id, theirs.id]
    assert await store.queue.renew(owner="w1", lease_seconds=600, task_ids=every) == [kept.id]
    assert await store.queue.renew(owner="w2", lease_seconds=600, task_ids=every) == [theirs.id]
    assert await store.queue.renew(owner="nobody", lease_seconds=600, task_ids=every) == []
    clock.set(at(10))
    assert await store.queue.expired(limit=10) == []
    clock.set(at(10.6))
    assert {t.id for t in await store.queue.expired(limit=10)} == {kept.id, theirs.id}


async def test_a_renewal_of_named_tasks_leaves_the_owners_other_leases_to_run_out(
        store: Store, clock: FakeClock) -> None:
    """Renewing only the runs a worker has under way: a lease of the same owner with no run
    behind it is not extended, so it expires and can be recovered."""
    workflow = await a_workflow(store)
    running = await make_task(store, workflow, created=1)
    orphan = await make_task(store, workflow, created=2)
    await store.queue.claim(owner="w1", limit=2, lease_seconds=60)
    clock.set(at(0.5))
    assert await store.queue.renew(owner="w1", lease_seconds=600,
                                   task_ids=[running.id, TaskId("unknown")]) == [running.id]
    assert await store.queue.renew(owner="w2", lease_seconds=600, task_ids=[orphan.id]) == []
    assert await store.queue.renew(owner="w1", lease_seconds=600, task_ids=[]) == []
    clock.set(at(1.1))
    assert [t.id for t in await store.queue.expired(limit=10)] == [orphan.id]


async def test_an_expired_lease_is_neither_held_nor_renewed(
        store: Store, clock: FakeClock) -> None:
    """An expired lease is not revived: the task may be recovered by now."""
    workflow = await a_workflow(store)
    stalled = await make_task(store, workflow, created=1)
    await store.queue.claim(owner="w1", limit=1, lease_seconds=60)
    clock.set(at(0.5))
    fresh = await make_task(store, workflow, created=2)
    await store.queue.claim(owner="w1", limit=1, lease_seconds=60)
    clock.set(at(1.2))
    assert await store.queue.held(owner="w1", task_ids=[stalled.id, fresh.id]) == [fresh.id]
    assert await store.queue.renew(owner="w1", lease_seconds=60,
                                   task_ids=[stalled.id, fresh.id]) == [fresh.id]
    assert [t.id for t in await store.queue.expired(limit=10)] == [stalled.id]


async def test_held_names_the_tasks_still_running_under_the_owner(store: Store) -> None:
    """Released, cancelled and other owners' tasks are not held; unknown ids are ignored."""
    workflow = await a_workflow(store)
    tasks = [await make_task(store, workflow, created=index) for index in range(4)]
    claimed = await store.queue.claim(owner="w1", limit=3, lease_seconds=LEASE)
    await store.queue.claim(owner="w2", limit=1, lease_seconds=LEASE)
    await store.tasks.cancel(tasks[1].id, now=at(1))
    assert await store.queue.release(claimed[2], outcome(TaskStatus.COMPLETED, 1), owner="w1")
    ids = [t.id for t in tasks] + [new_task(workflow).id]
    assert await store.queue.held(owner="w1", task_ids=ids) == [tasks[0].id]
    assert await store.queue.held(owner="w2", task_ids=ids) == [tasks[3].id]
    assert await store.queue.held(owner="w1", task_ids=[]) == []


async def test_only_the_lease_owner_can_release_a_task(store: Store) -> None:
    """Release writes the outcome and clears the lease for its owner and nobody else, and
    answers the task as written (``None`` when it wrote nothing)."""
    workflow = await a_workflow(store)
    task = await make_task(store, workflow, created=1)
    [claimed] = await store.queue.claim(owner="w1", limit=1, lease_seconds=LEASE)
    done = outcome(TaskStatus.COMPLETED, 0.5, output_data="ok", output_raw={"answer": "ok"})
    assert await store.queue.release(claimed, done, owner="w2") is None
    assert await store.tasks.get(task.id) == claimed
    written = await store.queue.release(claimed, done, owner="w1")
    read = await store.tasks.get(task.id)
    assert written == read
    assert read == msgspec.structs.replace(
        claimed, status=TaskStatus.COMPLETED, output_data="ok", output_raw={"answer": "ok"},
        finished_at=at(0.5), updated_at=at(0.5),
        attempts=[msgspec.structs.replace(claimed.attempts[0], finished_at=at(0.5))])
    assert await store.queue.renew(owner="w1", lease_seconds=LEASE, task_ids=[task.id]) == []
    assert not await store.queue.release(claimed, done, owner="w1")


async def test_a_late_answer_of_an_earlier_attempt_is_refused(
        store: Store, clock: FakeClock) -> None:
    """The same owner re-claiming a task after its lease ran out holds a new attempt; the old
    attempt's release is fenced off."""
    task = await make_task(store, await a_workflow(store))
    [first] = await store.queue.claim(owner="w1", limit=1, lease_seconds=60)
    clock.set(at(2))
    interrupted = outcome(TaskStatus.PENDING, 2, error="interrupted")
    assert await store.queue.recover(task.id, interrupted, attempt=first.tries)
    [second] = await store.queue.claim(owner="w1", limit=1, lease_seconds=60)
    assert second.tries == first.tries + 1
    late = outcome(TaskStatus.COMPLETED, 2.5, output_data="stale")
    assert not await store.queue.release(first, late, owner="w1")
    assert await store.tasks.get(task.id) == second
    fresh = outcome(TaskStatus.COMPLETED, 2.5, output_data="fresh")
    assert await store.queue.release(second, fresh, owner="w1")
    assert (await store.tasks.get(task.id)).output_data == "fresh"


async def test_releasing_a_task_that_is_not_running_writes_nothing(store: Store) -> None:
    """A task cancelled meanwhile, or unknown, is not overwritten."""
    workflow = await a_workflow(store)
    task = await make_task(store, workflow)
    [claimed] = await store.queue.claim(owner="w1", limit=1, lease_seconds=60)
    await store.tasks.cancel(task.id, now=at(0.5))
    late = outcome(TaskStatus.COMPLETED, 1)
    assert not await store.queue.release(claimed, late, owner="w1")
    assert not await store.queue.recover(task.id, late, attempt=claimed.tries, owners=["w1"])
    assert (await store.tasks.get(task.id)).status is TaskStatus.CANCELLED
    ghost = new_task(workflow)
    assert not await store.queue.release(ghost.claimed_at(at(1)), late, owner="w1")
    assert not await store.queue.recover(ghost.id, late, attempt=1)


async def test_expired_leases_are_running_tasks_past_their_lease_oldest_first(
        store: Store, clock: FakeClock) -> None:
    """A lease ending at the store's now has not yet expired; ``limit`` caps the answer."""
    workflow = await a_workflow(store)
    first = await make_task(store, workflow, created=1)
    second = await make_task(store, workflow, created=2)
    await make_task(store, workflow, created=3, status=TaskStatus.COMPLETED)
    await make_task(store, workflow, created=4)
    clock.set(at(3))
    await store.queue.claim(owner="dead", limit=2, lease_seconds=60)
    clock.set(at(4))
    assert await store.queue.expired(limit=10) == []
    clock.set(at(4.5))
    expired = await store.queue.expired(limit=10)
    assert [t.id for t in expired] == [first.id, second.id]
    assert expired[0] == await store.tasks.get(first.id)
    assert [t.id for t in await store.queue.expired(limit=1)] == [first.id]


async def test_recovering_needs_the_lease_to_have_expired(store: Store, clock: FakeClock) -> None:
    """A live lease is not recovered; once it runs out the outcome is written and the lease
    cleared."""
    task = await make_task(store, await a_workflow(store))
    [claimed] = await store.queue.claim(owner="w1", limit=1, lease_seconds=60)
    interrupted = outcome(TaskStatus.PENDING, 2, error="interrupted")
    clock.set(at(0.5))
    assert not await store.queue.recover(task.id, interrupted, attempt=claimed.tries)
    assert (await store.tasks.get(task.id)).status is TaskStatus.RUNNING
    clock.set(at(2))
    assert not await store.queue.recover(task.id, interrupted, attempt=claimed.tries + 1)
    assert await store.queue.recover(task.id, interrupted, attempt=claimed.tries)
    read = await store.tasks.get(task.id)
    assert (read.status, read.error, read.tries) == (TaskStatus.PENDING, "interrupted", 1)
    assert await store.queue.expired(limit=10) == []
    assert await store.queue.held(owner="w1", task_ids=[task.id]) == []


async def test_a_recovered_task_that_was_claimed_again_is_not_overwritten(
        store: Store, clock: FakeClock) -> None:
    """Two processes recovering the same expired task: the second write finds it re-claimed
    by a live worker and leaves it alone, so the run is not interrupted twice."""
    task = await make_task(store, await a_workflow(store))
    await store.queue.claim(owner="dead", limit=1, lease_seconds=60)
    clock.set(at(2))
    [stale] = await store.queue.expired(limit=10)
    interrupted = outcome(TaskStatus.PENDING, 2, error="interrupted")
    assert await store.queue.recover(task.id, interrupted, attempt=stale.tries)
    [again] = await store.queue.claim(owner="live", limit=1, lease_seconds=1800)
    assert not await store.queue.recover(task.id, interrupted, attempt=stale.tries)
    assert await store.tasks.get(task.id) == again
    assert await store.queue.renew(owner="live", lease_seconds=LEASE,
                                   task_ids=[task.id]) == [task.id]


async def test_concurrent_recoveries_of_one_attempt_have_one_winner(
        store: Store, clock: FakeClock) -> None:
    """N nodes recovering the same abandoned attempt write its outcome once."""
    task = await make_task(store, await a_workflow(store))
    [claimed] = await store.queue.claim(owner="dead", limit=1, lease_seconds=60)
    clock.set(at(2))
    results = await asyncio.gather(*(
        store.queue.recover(task.id, outcome(TaskStatus.PENDING, 2, error=f"node {index}"),
                            attempt=claimed.tries)
        for index in range(8)
    ))
    assert sorted(results) == [False] * 7 + [True]
    assert (await store.tasks.get(task.id)).status is TaskStatus.PENDING


async def test_a_dead_owners_tasks_are_recovered_before_their_lease_runs_out(
        store: Store) -> None:
    """Owners named as dead count as expired at once; live owners' leases do not."""
    workflow = await a_workflow(store)
    lost = await make_task(store, workflow, created=1)
    live = await make_task(store, workflow, created=2)
    [claimed] = await store.queue.claim(owner="dead", limit=1, lease_seconds=LEASE)
    await store.queue.claim(owner="alive", limit=1, lease_seconds=LEASE)
    assert await store.queue.expired(limit=10) == []
    assert [t.id for t in await store.queue.expired(limit=10, owners=["dead"])] == [lost.id]
    failed = outcome(TaskStatus.FAILED, 1, error="node died")
    assert not await store.queue.recover(lost.id, failed, attempt=claimed.tries)
    assert await store.queue.recover(lost.id, failed, attempt=claimed.tries, owners=["dead"])
    assert (await store.tasks.get(lost.id)).status is TaskStatus.FAILED
    assert not await store.queue.recover(live.id, failed, attempt=1, owners=["dead"])
    assert (await store.tasks.get(live.id)).status is TaskStatus.RUNNING


async def test_a_retry_time_in_another_offset_is_judged_as_an_instant(
        store: Store, clock: FakeClock) -> None:
    """``next_retry_at`` written at -05:00 is claimable at that instant, not five hours off."""
    minus_five = timezone(timedelta(hours=-5))
    task = await make_task(store, await a_workflow(store),
                           next_retry_at=at(5).astimezone(minus_five))
    assert (await store.tasks.get(task.id)).next_retry_at == at(5)
    clock.set(at(4.99))
    assert await store.queue.claim(owner="w1", limit=1, lease_seconds=LEASE) == []
    clock.set(at(5))
    [claimed] = await store.queue.claim(owner="w1", limit=1, lease_seconds=LEASE)
    assert_utc(claimed)
