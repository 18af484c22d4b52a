"""The SQLite store answers an unchanged list read again from memory (``ReadMemo``), and never
after a write: its own, another store's on the same file (another process), or a bare
connection's."""

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from spark_adapters.sqlite import SqliteStore
from spark_core.models import Workflow
from spark_core.ports import TaskFilter, WorkflowFilter
from tests.contract.builders import a_workflow, make_task


async def opened(path: Path) -> SqliteStore:
    """A store on ``path``, opened and migrated."""
    store = SqliteStore(path)
    await store.open()
    await store.migrate()
    return store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A store on a fresh file, closed afterwards."""
    sqlite_store = await opened(tmp_path / "spark.db")
    yield sqlite_store
    await sqlite_store.close()


@pytest.fixture
async def workflow(store: SqliteStore) -> Workflow:
    """A workflow with one task."""
    workflow = await a_workflow(store)
    await make_task(store, workflow)
    return workflow


async def test_an_unchanged_list_is_the_same_page(store: SqliteStore, workflow: Workflow) -> None:
    """Reading the same page twice with nothing written in between reads the database once."""
    tasks = await store.tasks.list(TaskFilter(), limit=100, offset=0)
    assert await store.tasks.list(TaskFilter(), limit=100, offset=0) is tasks
    workflows = await store.workflows.list(WorkflowFilter(), limit=100, offset=0)
    assert await store.workflows.list(WorkflowFilter(), limit=100, offset=0) is workflows
    other_page = await store.tasks.list(TaskFilter(), limit=10, offset=0)
    assert other_page is not tasks


async def test_a_write_of_this_store_is_seen_at_once(store: SqliteStore,
                                                     workflow: Workflow) -> None:
    """A task added through the store is in the next list and in the workflow's counts."""
    before = await store.workflows.list(WorkflowFilter(), limit=100, offset=0)
    await make_task(store, workflow)
    tasks = await store.tasks.list(TaskFilter(), limit=100, offset=0)
    assert tasks.total == 2
    after = await store.workflows.list(WorkflowFilter(), limit=100, offset=0)
    assert (before.items[0].task_count, after.items[0].task_count) == (1, 2)


async def test_a_write_of_another_process_is_seen_at_once(tmp_path: Path, store: SqliteStore,
                                                          workflow: Workflow) -> None:
    """Writes by another store on the same file, or by a bare connection, are in the next
    list of this store."""
    first = await store.tasks.list(TaskFilter(), limit=100, offset=0)
    other = await opened(tmp_path / "spark.db")
    try:
        await make_task(other, workflow)
    finally:
        await other.close()
    second = await store.tasks.list(TaskFilter(), limit=100, offset=0)
    assert (first.total, second.total) == (1, 2)

    with sqlite3.connect(tmp_path / "spark.db", isolation_level=None) as conn:
        conn.execute("UPDATE tasks SET input_data = 'changed elsewhere'")
    third = await store.tasks.list(TaskFilter(), limit=100, offset=0)
    assert {task.input_data for task in third.items} == {"changed elsewhere"}


async def test_an_in_memory_store_sees_its_own_writes() -> None:
    """``:memory:`` (one connection) reuses a page only until the store's next commit."""
    store = await opened(Path(":memory:"))
    try:
        workflow = await a_workflow(store)
        first = await store.tasks.list(TaskFilter(), limit=100, offset=0)
        assert await store.tasks.list(TaskFilter(), limit=100, offset=0) is first
        await make_task(store, workflow)
        assert (await store.tasks.list(TaskFilter(), limit=100, offset=0)).total == 1
    finally:
        await store.close()
