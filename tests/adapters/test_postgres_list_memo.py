"""The PostgreSQL store answers an unchanged list read again from memory (``remembered``), and
never after a commit: its own, or another client's on the same schema."""

import asyncio
import time
from collections.abc import AsyncIterator

import psycopg
import pytest

from spark_adapters.postgres import PostgresStore, connection
from spark_core.errors import StoreUnavailableError
from spark_core.models import Page, Workflow
from spark_core.ports import TaskFilter, WorkflowFilter
from tests.adapters.test_postgres_store import a_workflow, new_task
from tests.proxy import CuttableProxy


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    """An opened, migrated store on a fresh schema."""
    opened = PostgresStore(postgres_url, pool_size=4)
    await opened.open()
    await opened.migrate()
    yield opened
    await opened.close()


@pytest.fixture
async def workflow(store: PostgresStore) -> Workflow:
    """A workflow with one task."""
    workflow = await a_workflow(store)
    await store.tasks.add(new_task(workflow))
    return workflow


async def test_an_unchanged_list_is_the_same_page(store: PostgresStore,
                                                  workflow: Workflow) -> None:
    """Reading the same page twice with nothing committed in between returns the kept page."""
    tasks = await store.tasks.list(TaskFilter(), limit=100, offset=0)
    workflows = await store.workflows.list(WorkflowFilter(), limit=100, offset=0)
    assert await store.tasks.list(TaskFilter(), limit=100, offset=0) is tasks
    assert await store.workflows.list(WorkflowFilter(), limit=100, offset=0) is workflows


async def test_commits_of_this_store_and_of_other_clients_are_seen_at_once(
        store: PostgresStore, workflow: Workflow, postgres_url: str) -> None:
    """A task added through the store, and a change by another client, are in the next list."""
    before = await store.workflows.list(WorkflowFilter(), limit=100, offset=0)
    await store.tasks.add(new_task(workflow, seconds=1))
    after = await store.workflows.list(WorkflowFilter(), limit=100, offset=0)
    assert (before.items[0].task_count, after.items[0].task_count) == (1, 2)
    assert (await store.tasks.list(TaskFilter(), limit=100, offset=0)).total == 2

    # the URL names the test's schema (search_path), as the store's own connections do
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as other:
        await other.execute("UPDATE tasks SET input_data = %s", ["elsewhere"])
    changed = await store.tasks.list(TaskFilter(), limit=100, offset=0)
    assert {task.input_data for task in changed.items} == {"elsewhere"}



async def test_concurrent_reads_share_snapshot_rounds_and_never_miss_a_commit(
        store: PostgresStore, workflow: Workflow, postgres_url: str) -> None:
    """Many list reads at once (one snapshot query per round for all of them) each see every
    commit made before they asked, round after round."""
    for round_number in range(5):
        text = f"round {round_number}"
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as other:
            await other.execute("UPDATE tasks SET input_data = %s", [text])
        pages = await asyncio.gather(*(store.tasks.list(TaskFilter(), limit=100, offset=0)
                                       for _ in range(16)))
        assert all({task.input_data for task in page.items} == {text} for page in pages)


async def _snapshot_sessions(postgres_url: str) -> list[int]:
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_current_snapshot%%' "
            "AND pid <> pg_backend_pid() AND datname = current_database()")
        return [row[0] for row in await cursor.fetchall()]


async def test_a_killed_snapshot_session_costs_no_list_an_error(
        store: PostgresStore, workflow: Workflow, postgres_url: str) -> None:
    """The snapshot rounds' own session, terminated (a restart, a proxy dropping it), is
    replaced at the next list, which answers and sees the commits made meanwhile; closing the
    store ends the session."""
    await store.tasks.list(TaskFilter(), limit=100, offset=0)
    before = await _snapshot_sessions(postgres_url)
    assert before
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as other:
        await other.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid",
                            [before])
        await other.execute("UPDATE tasks SET input_data = 'after the kill'")
    page = await store.tasks.list(TaskFilter(), limit=100, offset=0)
    assert {task.input_data for task in page.items} == {"after the kill"}
    after = await _snapshot_sessions(postgres_url)
    assert after
    assert not set(after) & set(before)
    await store.close()
    assert not set(await _snapshot_sessions(postgres_url)) & set(after)


async def test_a_database_that_stops_answering_fails_lists_in_time_then_they_recover(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that holds the snapshot query (a hung server, a stalled network) fails the
    lists waiting on it with ``StoreUnavailableError`` after ``SNAPSHOT_SECONDS``, not never;
    once it answers again the next list is answered, on a new session, with the commits made
    meanwhile, and never with the held round's late answer."""
    monkeypatch.setattr(connection, "SNAPSHOT_SECONDS", 0.5)
    with CuttableProxy.before(postgres_url) as proxy:
        store = PostgresStore(proxy.route(postgres_url), pool_size=2)
        await store.open()
        try:
            await store.migrate()
            workflow = await a_workflow(store)
            await store.tasks.add(new_task(workflow))
            await store.tasks.list(TaskFilter(), limit=100, offset=0)
            proxy.freeze()
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="no answer"):
                await asyncio.gather(*(store.tasks.list(TaskFilter(), limit=100, offset=0)
                                       for _ in range(4)))
            assert time.monotonic() - started < 5
            async with await psycopg.AsyncConnection.connect(postgres_url,
                                                             autocommit=True) as other:
                await other.execute("UPDATE tasks SET input_data = 'while it hung'")
            proxy.thaw()
            page = await store.tasks.list(TaskFilter(), limit=100, offset=0)
            assert {task.input_data for task in page.items} == {"while it hung"}
        finally:
            proxy.thaw()
            await store.close()


async def test_a_list_cancelled_while_waiting_for_a_snapshot_fails_no_other(
        store: PostgresStore, workflow: Workflow) -> None:
    """A caller that goes away (a client disconnecting) while its list waits for the shared
    snapshot round is cancelled alone: the lists waiting with it are answered."""
    lists = [asyncio.create_task(store.tasks.list(TaskFilter(), limit=100, offset=0))
             for _ in range(3)]
    await asyncio.sleep(0)  # all three wait for the same round
    lists[1].cancel()
    first, cancelled, third = await asyncio.gather(*lists, return_exceptions=True)
    assert isinstance(cancelled, asyncio.CancelledError)
    assert isinstance(first, Page)
    assert isinstance(third, Page)
    assert [task.workflow_id for task in first.items] == [workflow.id]
    assert third == first


async def test_lists_asking_at_once_after_a_commit_share_one_read(
        store: PostgresStore, workflow: Workflow) -> None:
    """After a commit, the lists that ask at once are answered by one read of the page (the
    same page for all), not one read each."""
    await store.tasks.list(TaskFilter(), limit=100, offset=0)
    await store.tasks.add(new_task(workflow, seconds=1))
    pages = await asyncio.gather(*(store.tasks.list(TaskFilter(), limit=100, offset=0)
                                   for _ in range(8)))
    assert pages[0].total == 2
    assert all(page is pages[0] for page in pages)
