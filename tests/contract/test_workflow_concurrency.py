"""The claim's contract for a workflow's ``max_concurrency``: beyond it, its tasks stay pending,
whoever claims and however many claim at once; and how a workflow's local settings (the limit,
the webhook) are updated and kept."""

import asyncio

import msgspec
import pytest

from spark_core.errors import NotFoundError
from spark_core.models import TaskStatus, Workflow, WorkflowId
from spark_core.ports import Store, TaskFilter, WorkflowPatch
from tests.contract.builders import (
    LEASE,
    a_workflow,
    at,
    make_source,
    make_task,
    make_workflow,
    outcome,
)


async def _limited(store: Store, limit: int | None) -> Workflow:
    """A workflow on a fresh source with ``max_concurrency`` set to ``limit``."""
    workflow = await a_workflow(store)
    return await store.workflows.update(
        workflow.id, WorkflowPatch(updated_at=at(1), max_concurrency=limit))


async def _statuses(store: Store, workflow: Workflow) -> list[TaskStatus]:
    """The statuses of ``workflow``'s tasks, sorted."""
    page = await store.tasks.list(TaskFilter(workflow_id=workflow.id), limit=100, offset=0)
    return sorted(task.status for task in page.items)


async def test_two_concurrent_claimers_on_a_limit_of_one_get_one_task_between_them(
    store: Store,
) -> None:
    """Racing claimers take the one free slot once; the rest stay pending until a release."""
    workflow = await _limited(store, 1)
    tasks = [await make_task(store, workflow, created=index) for index in range(3)]
    first, second = await asyncio.gather(
        store.queue.claim(owner="w1", limit=5, lease_seconds=LEASE),
        store.queue.claim(owner="w2", limit=5, lease_seconds=LEASE),
    )
    claimed = [*first, *second]
    assert [task.id for task in claimed] == [tasks[0].id]
    assert await _statuses(store, workflow) == [TaskStatus.PENDING, TaskStatus.PENDING,
                                                TaskStatus.RUNNING]
    assert await store.queue.claim(owner="w3", limit=5, lease_seconds=LEASE) == []
    owner = "w1" if first else "w2"
    assert await store.queue.release(claimed[0], outcome(TaskStatus.COMPLETED, 2),
                                     owner=owner)
    [following] = await store.queue.claim(owner="w3", limit=5, lease_seconds=LEASE)
    assert following.id == tasks[1].id


async def test_many_concurrent_claimers_never_run_more_than_the_limit(store: Store) -> None:
    """Sixteen racing claimers on a limit of two start exactly two tasks."""
    workflow = await _limited(store, 2)
    for index in range(10):
        await make_task(store, workflow, created=index)
    batches = await asyncio.gather(*(
        store.queue.claim(owner=f"w{index}", limit=3, lease_seconds=LEASE)
        for index in range(16)
    ))
    assert sum(len(batch) for batch in batches) == 2
    assert (await _statuses(store, workflow)).count(TaskStatus.RUNNING) == 2


async def test_a_limited_workflow_does_not_hold_back_other_workflows(store: Store) -> None:
    """Tasks beyond a limit are skipped, and older tasks of unlimited workflows still come
    first in the oldest-first order."""
    source = await make_source(store)
    limited = await make_workflow(store, source, remote_id="limited")
    limited = await store.workflows.update(
        limited.id, WorkflowPatch(updated_at=at(1), max_concurrency=2))
    free = await make_workflow(store, source, remote_id="free")
    for index in range(4):
        await make_task(store, limited, created=index)
    others = [await make_task(store, free, created=10 + index) for index in range(2)]
    claimed = await store.queue.claim(owner="w1", limit=10, lease_seconds=LEASE)
    assert [task.workflow_id for task in claimed] == [limited.id, limited.id, free.id, free.id]
    assert [task.id for task in claimed][2:] == [task.id for task in others]
    assert [task.created_at for task in claimed] == sorted(task.created_at for task in claimed)


async def test_a_claim_of_named_tasks_keeps_the_limit(store: Store) -> None:
    """Naming tasks does not bypass the limit: only the free slots are taken."""
    workflow = await _limited(store, 1)
    tasks = [await make_task(store, workflow, created=index) for index in range(3)]
    claimed = await store.queue.claim(owner="w1", limit=5, lease_seconds=LEASE,
                                      task_ids=[tasks[2].id, tasks[1].id])
    assert [task.id for task in claimed] == [tasks[1].id]
    assert await store.queue.claim(owner="w1", limit=5, lease_seconds=LEASE,
                                   task_ids=[tasks[0].id]) == []


async def test_syncing_again_keeps_the_limit_and_lifting_it_frees_every_task(
    store: Store,
) -> None:
    """An upsert of the same remote flow keeps ``max_concurrency``; None means unlimited."""
    workflow = await _limited(store, 1)
    assert workflow.max_concurrency == 1
    assert workflow.updated_at == at(1)
    resynced = await store.workflows.upsert(msgspec.structs.replace(
        workflow, name="Renamed", max_concurrency=None, updated_at=at(2)))
    assert (resynced.name, resynced.max_concurrency) == ("Renamed", 1)
    assert (await store.workflows.get(workflow.id)).max_concurrency == 1
    for index in range(3):
        await make_task(store, workflow, created=index)
    assert len(await store.queue.claim(owner="w1", limit=5, lease_seconds=LEASE)) == 1
    lifted = await store.workflows.update(
        workflow.id, WorkflowPatch(updated_at=at(3), max_concurrency=None))
    assert lifted.max_concurrency is None
    assert len(await store.queue.claim(owner="w1", limit=5, lease_seconds=LEASE)) == 2


async def test_an_update_sets_only_the_settings_it_names_and_a_sync_keeps_them(
    store: Store,
) -> None:
    """A workflow's local settings (limit and webhook) are patched field by field, cleared with
    None, and kept by an upsert of the same remote flow; an unknown workflow is not found."""
    workflow = await _limited(store, 2)
    hooked = await store.workflows.update(workflow.id, WorkflowPatch(
        updated_at=at(2), webhook_url="https://hooks.example/spark?token=t"))
    assert (hooked.max_concurrency, hooked.webhook_url) == (2, "https://hooks.example/spark?token=t")
    assert hooked.updated_at == at(2)
    resynced = await store.workflows.upsert(msgspec.structs.replace(
        hooked, name="Renamed", max_concurrency=None, webhook_url=None, updated_at=at(3)))
    assert (resynced.max_concurrency, resynced.webhook_url) == (
        2, "https://hooks.example/spark?token=t")
    cleared = await store.workflows.update(workflow.id, WorkflowPatch(
        updated_at=at(4), webhook_url=None))
    assert (cleared.max_concurrency, cleared.webhook_url) == (2, None)
    assert await store.workflows.get(workflow.id) == cleared
    with pytest.raises(NotFoundError):
        await store.workflows.update(WorkflowId("nope"), WorkflowPatch(updated_at=at(5)))
