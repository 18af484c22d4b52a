"""``PostgresTaskRepository``: runs, their input, answer, error and timing."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg.errors
from psycopg import sql

from spark_adapters.postgres.connection import Conn, Database, fetch_all, fetch_one, page_bounds
from spark_adapters.postgres.rows import column_names, struct_from_row, struct_to_row, utc
from spark_adapters.postgres.statements import equal_filters, insert_statement
from spark_adapters.postgres.workflows import require_workflow
from spark_core.errors import ConflictError, InvalidStateError, NotFoundError
from spark_core.models import Page, Task, TaskId, TaskStatus
from spark_core.ports import TaskFilter

_JSON_FIELDS = ("output_raw", "tweaks")

# Lists never read output_raw: a raw response can be megabytes and lists show many tasks.
LIST_COLUMNS = sql.SQL(", ").join(
    sql.SQL("NULL::jsonb AS output_raw") if name == "output_raw" else sql.Identifier(name)
    for name in column_names(Task)
)


def task_to_row(task: Task) -> dict[str, Any]:
    """The ``tasks`` row for ``task`` (the lease columns are not on the Struct)."""
    return struct_to_row(task, json_fields=_JSON_FIELDS)


def task_from_row(row: dict[str, Any]) -> Task:
    """The ``Task`` stored as ``row``; the lease columns are left behind."""
    return struct_from_row(Task, row)


async def fetch_task(conn: Conn, task_id: str) -> Task:
    """One task by id; ``NotFoundError`` if unknown."""
    row = await fetch_one(conn, "SELECT * FROM tasks WHERE id = %s", [task_id])
    if row is None:
        raise NotFoundError(f"Task {task_id} not found")
    return task_from_row(row)


async def insert_tasks(conn: Conn, tasks: Sequence[Task], *, skip_taken_slots: bool) -> int:
    """Insert new tasks inside an open transaction and hint ``work``; returns how many went in.

    ``ConflictError`` on a reused id, ``NotFoundError`` if a workflow does not exist. With
    ``skip_taken_slots``, a task whose (schedule_id, scheduled_for) exists is left out.
    """
    inserted = 0
    for task in tasks:
        row = task_to_row(task)
        suffix = ("ON CONFLICT (schedule_id, scheduled_for) DO NOTHING RETURNING id"
                  if skip_taken_slots else "RETURNING id")
        if await fetch_one(conn, "SELECT 1 FROM tasks WHERE id = %s", [task.id]) is not None:
            raise ConflictError(f"Task {task.id} already exists")
        await require_workflow(conn, task.workflow_id)
        try:
            stored = await fetch_one(conn, insert_statement("tasks", row, suffix), row)
        except psycopg.errors.UniqueViolation as exc:
            raise ConflictError(f"Schedule {task.schedule_id} already has a task for "
                                f"{task.scheduled_for}") from exc
        if stored is not None:
            inserted += 1
            if task.status is TaskStatus.PENDING:
                await conn.execute("SELECT spark_notify('work', %s)", [task.id])
    return inserted


class PostgresTaskRepository:
    """The ``TaskRepository`` port on the ``tasks`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, task: Task) -> Task:
        """Insert; ``NotFoundError`` if its workflow does not exist."""
        async with self._db.transaction() as conn:
            await insert_tasks(conn, [task], skip_taken_slots=False)
            return await fetch_task(conn, task.id)

    async def get(self, task_id: TaskId) -> Task:
        """One task by id, with ``output_raw``."""
        async with self._db.connection() as conn:
            return await fetch_task(conn, task_id)

    async def list(self, filters: TaskFilter, *, limit: int, offset: int) -> Page[Task]:
        """Tasks newest first (``created_at`` descending), without ``output_raw``."""
        where, params = equal_filters(workflow_id=filters.workflow_id,
                                      schedule_id=filters.schedule_id, status=filters.status)
        query = sql.SQL(
            "WITH page AS (SELECT {columns} FROM tasks {where} "
            "ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s) "
            "SELECT total.n AS total_count, page.* FROM "
            "(SELECT count(*) AS n FROM tasks {where}) AS total "
            "LEFT JOIN page ON true ORDER BY page.created_at DESC, page.id DESC"
        ).format(columns=LIST_COLUMNS, where=where)
        async with self._db.connection() as conn:
            found = await fetch_all(conn, query, {**params, **page_bounds(limit, offset)})
        return Page(items=[task_from_row(row) for row in found if row["id"]],
                    total=int(found[0]["total_count"]), limit=limit, offset=offset)

    async def cancel(self, task_id: TaskId, *, now: datetime) -> Task:
        """Atomically move a pending or running task to ``cancelled`` (clearing any lease);
        ``InvalidStateError`` if it already finished. Wakes the node running it."""
        async with self._db.transaction() as conn:
            row = await fetch_one(conn, """
                UPDATE tasks SET status = 'cancelled', finished_at = %(now)s,
                    updated_at = %(now)s, lease_owner = NULL, lease_expires_at = NULL
                WHERE id = %(id)s AND status IN ('pending', 'running')
                RETURNING *
            """, {"id": task_id, "now": utc(now)})
            if row is None:
                task = await fetch_task(conn, task_id)
                raise InvalidStateError(f"Task {task_id} already finished ({task.status})")
            await conn.execute("SELECT spark_notify('cancel', %(id)s), "
                               "spark_notify('finished', %(id)s)", {"id": task_id})
            return task_from_row(row)

    async def delete(self, task_id: TaskId) -> None:
        """Delete a task."""
        async with self._db.connection() as conn:
            deleted = await conn.execute("DELETE FROM tasks WHERE id = %s", [task_id])
        if deleted.rowcount == 0:
            raise NotFoundError(f"Task {task_id} not found")
