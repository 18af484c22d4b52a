"""Counting tasks by status in one query (the dashboard's overview), on every store."""

from spark_core.models import TaskStatus
from spark_core.ports import Store
from tests.contract.builders import a_workflow, at, make_task


async def test_tasks_are_counted_by_status_overall_and_since_a_time(store: Store) -> None:
    """Each status with its count; ``created_after`` keeps tasks created at or after it; a
    status without tasks is left out."""
    workflow = await a_workflow(store)
    for created, status in [(0, TaskStatus.COMPLETED), (1, TaskStatus.FAILED),
                            (2, TaskStatus.COMPLETED), (3, TaskStatus.PENDING),
                            (4, TaskStatus.COMPLETED)]:
        await make_task(store, workflow, created=created, status=status)
    assert await store.tasks.count_by_status() == {
        TaskStatus.COMPLETED: 3, TaskStatus.FAILED: 1, TaskStatus.PENDING: 1}
    assert await store.tasks.count_by_status(created_after=at(2)) == {
        TaskStatus.COMPLETED: 2, TaskStatus.PENDING: 1}
    assert await store.tasks.count_by_status(created_after=at(5)) == {}
