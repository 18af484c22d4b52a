"""A workflow's task counts on PostgreSQL (migration 12): kept in stripes, one picked by each
connection, so runs of one workflow recorded on many connections (a node's pool, many nodes)
never wait for each other's commits, and the sums stay exact however the rows are written.

What every store shares (counts through claims, failures, cancels and deletes) is checked by
the contract suite; here, what needs several real connections or an old schema.
"""

from datetime import UTC, datetime

import psycopg

from spark_adapters.postgres import PostgresStore
from spark_adapters.postgres.migrations import load_migrations
from spark_core.models import Workflow, WorkflowId, new_id
from spark_core.ports import TaskFilter, WorkflowFilter
from tests.adapters import test_postgres_store
from tests.adapters.test_postgres_store import a_workflow

store = test_postgres_store.store
"""An opened, migrated store on a fresh schema (the PostgreSQL store suite's fixture)."""

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

_STRIPED = 12
"""The migration that spread the counts over stripes."""


def insert_task(conn: psycopg.Connection, workflow_id: str, status: str = "pending") -> str:
    """A task row written straight in SQL, as any process on the database may; its id."""
    task_id = new_id()
    conn.execute("INSERT INTO tasks (id, workflow_id, status, max_retries, created_at, "
                 "updated_at) VALUES (%s, %s, %s, 0, %s, %s)",
                 [task_id, workflow_id, status, T0, T0])
    return task_id


def stripe_of(conn: psycopg.Connection) -> int:
    """The stripe this connection adds to."""
    row = conn.execute("SELECT pg_backend_pid() % 16").fetchone()
    assert row is not None
    return int(row[0])


def two_connections(url: str) -> tuple[psycopg.Connection, psycopg.Connection]:
    """Two autocommit connections that add to different stripes."""
    first = psycopg.connect(url, autocommit=True)
    others = []
    while True:
        second = psycopg.connect(url, autocommit=True)
        if stripe_of(second) != stripe_of(first):
            break
        others.append(second)
    for spare in others:
        spare.close()
    return first, second


async def counts(store: PostgresStore, workflow: Workflow) -> tuple[int, int, int, int]:
    """The workflow's task and failed counts as its summary shows them, and the totals of its
    task list and of the whole task list."""
    [summary] = [item for item in (await store.workflows.list(
        WorkflowFilter(), limit=100, offset=0)).items if item.workflow.id == workflow.id]
    mine = await store.tasks.list(TaskFilter(workflow_id=workflow.id), limit=1, offset=0)
    every = await store.tasks.list(TaskFilter(), limit=1, offset=0)
    return summary.task_count, summary.failed_task_count, mine.total, every.total


async def test_runs_of_one_workflow_recorded_on_two_connections_never_wait_for_each_other(
        store: PostgresStore, postgres_url: str) -> None:
    """While one connection's insert of a workflow's task is not yet committed, another
    connection inserts one of the same workflow at once (with one counter row per workflow,
    it waited for the first commit: here it would run out of its lock timeout), and both are
    counted once committed."""
    workflow = await a_workflow(store)
    first, second = two_connections(postgres_url)
    try:
        with first.transaction():
            insert_task(first, workflow.id)
            second.execute("SET lock_timeout = '2s'")
            insert_task(second, workflow.id)
            assert await counts(store, workflow) == (1, 0, 1, 1)
        assert await counts(store, workflow) == (2, 0, 2, 2)
    finally:
        first.close()
        second.close()


async def test_counts_spread_over_stripes_stay_exact_through_failures_and_deletes(
        store: PostgresStore, postgres_url: str) -> None:
    """Tasks written, failed, un-failed and deleted from connections on different stripes
    (a stripe alone may go negative) are counted exactly in the workflow's summary and both
    list totals; deleting the workflow takes its tasks and every stripe of its counts."""
    workflow = await a_workflow(store)
    other = await a_workflow(store)
    first, second = two_connections(postgres_url)
    try:
        kept = [insert_task(first, workflow.id), insert_task(first, workflow.id, "failed")]
        retried = insert_task(first, workflow.id, "failed")
        insert_task(second, other.id)
        gone = insert_task(second, workflow.id, "failed")
        second.execute("UPDATE tasks SET status = 'failed' WHERE id = %s", [kept[0]])
        second.execute("UPDATE tasks SET status = 'pending' WHERE id = %s", [retried])
        second.execute("DELETE FROM tasks WHERE id = ANY(%s)", [[kept[1], gone]])
        stripes = second.execute(
            "SELECT count(*) FROM workflow_stat_stripes WHERE workflow_id = %s",
            [workflow.id]).fetchone()
        assert stripes == (2,)
    finally:
        first.close()
        second.close()
    assert await counts(store, workflow) == (2, 1, 2, 3)
    assert await counts(store, other) == (1, 0, 1, 3)
    await store.workflows.delete(workflow.id)
    assert await counts(store, other) == (1, 0, 1, 1)
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM workflow_stat_stripes WHERE workflow_id = %s", [workflow.id])
        assert await cursor.fetchone() == (0,)


_PREVIOUS_READS = (
    "SELECT w.id, stats.task_count, stats.failed_task_count, "
    "(SELECT task_count FROM workflow_stats WHERE workflow_id = w.id) AS total "
    "FROM workflows w LEFT JOIN workflow_stats stats ON stats.workflow_id = w.id ORDER BY w.id")
"""How the version before the stripes read the counts: a join for the workflows' page and a
scalar subquery for a workflow's task total."""


async def test_counts_kept_before_the_stripes_survive_the_upgrade(postgres_url: str) -> None:
    """A schema counted by an older Spark (one row per workflow) keeps its counts through the
    migration that adds the stripes, and tasks written after it, on two stripes, add to them;
    a node of the older version still running during the upgrade reads the same sums, one row
    per workflow."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE spark_schema_migrations (version integer PRIMARY KEY, "
                     "name text NOT NULL, checksum text NOT NULL, "
                     "applied_at timestamptz NOT NULL DEFAULT now())")
        for migration in load_migrations()[:_STRIPED - 1]:
            conn.execute(migration.sql.encode())
            conn.execute("INSERT INTO spark_schema_migrations (version, name, checksum) "
                         "VALUES (%s, %s, %s)",
                         [migration.version, migration.name, migration.checksum])
        conn.execute("INSERT INTO sources (id, name, source_type, url, status, created_at, "
                     "updated_at) VALUES ('s1', 'LangFlow', 'langflow', 'http://lf', 'active', "
                     "%s, %s)", [T0, T0])
        conn.execute("INSERT INTO workflows (id, source_id, source, remote_flow_id, name, "
                     "name_folded, flow_type, created_at, updated_at) VALUES ('w1', 's1', "
                     "'http://lf', 'flow-1', 'Flow', 'flow', 'langflow', %s, %s)", [T0, T0])
        for status in ("completed", "failed", "failed"):
            insert_task(conn, "w1", status)
    upgraded = PostgresStore(postgres_url, pool_size=2)
    await upgraded.open()
    try:
        assert await upgraded.migrate() == len(load_migrations())
        workflow = await upgraded.workflows.get(WorkflowId("w1"))
        assert await counts(upgraded, workflow) == (3, 2, 3, 3)
        first, second = two_connections(postgres_url)
        with first, second:
            insert_task(first, "w1", "failed")
            insert_task(second, "w1")
            assert second.execute(_PREVIOUS_READS).fetchall() == [("w1", 5, 3, 5)]
        assert await counts(upgraded, workflow) == (5, 3, 5, 5)
    finally:
        await upgraded.close()
