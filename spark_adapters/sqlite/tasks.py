"""The ``tasks`` table: runs, their results, and the leases workers hold on running ones."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlite_utils

from spark_adapters.sqlite.connection import (
    Connection,
    insert_statement,
    rows,
    scalar,
    select_page,
    update_statement,
    where_equal,
)
from spark_adapters.sqlite.rows import (
    column_names,
    encode_datetime,
    struct_from_row,
    struct_to_row,
)
from spark_adapters.sqlite.workflows import require_workflow
from spark_core.errors import ConflictError, InvalidStateError, NotFoundError
from spark_core.models import Page, Task, TaskId, TaskStatus
from spark_core.ports import TaskFilter

_JSON_FIELDS = ("output_raw", "tweaks")

# Lists never read output_raw: a raw response can be megabytes and lists show many tasks.
_LIST_COLUMNS = ", ".join(
    "NULL AS output_raw" if name == "output_raw" else name for name in column_names(Task)
)
_FINAL = tuple(status.value for status in TaskStatus if status.is_final)


def task_to_row(task: Task) -> dict[str, Any]:
    """The ``tasks`` row for ``task`` (the lease columns are not on the Struct)."""
    return struct_to_row(task, json_fields=_JSON_FIELDS)


def task_from_row(row: dict[str, Any]) -> Task:
    """The ``Task`` stored as ``row``; the lease columns are left behind."""
    return struct_from_row(Task, row, json_fields=_JSON_FIELDS)


def fetch_task(db: sqlite_utils.Database, task_id: str) -> Task:
    """One task by id inside an open transaction; ``NotFoundError`` if unknown."""
    found = rows(db, "SELECT * FROM tasks WHERE id = ?", [task_id])
    if not found:
        raise NotFoundError(f"Task {task_id} not found")
    return task_from_row(found[0])


def insert_tasks(db: sqlite_utils.Database, tasks: list[Task]) -> None:
    """Insert new tasks inside an open transaction; ``ConflictError`` on a reused id."""
    for task in tasks:
        if scalar(db, "SELECT 1 FROM tasks WHERE id = ?", [task.id]) is not None:
            raise ConflictError(f"Task {task.id} already exists")
    for task in tasks:  # a plain INSERT: sqlite-utils' insert_all re-reads the schema each call
        db.execute(*insert_statement("tasks", task_to_row(task)))


def _in(values: Sequence[str]) -> str:
    return ", ".join("?" for _ in values)


class TaskTable:
    """The task methods of ``SqliteStore``."""

    _connection: Connection

    def add_task(self, task: Task) -> Task:
        """Insert; ``NotFoundError`` if its workflow does not exist."""
        with self._connection.write() as db:
            require_workflow(db, task.workflow_id)
            insert_tasks(db, [task])
            return fetch_task(db, task.id)

    def get_task(self, task_id: TaskId) -> Task:
        """One task by id, with ``output_raw``."""
        with self._connection.read() as db:
            return fetch_task(db, task_id)

    def list_tasks(self, filters: TaskFilter, *, limit: int, offset: int) -> Page[Task]:
        """Tasks newest first (``created_at`` descending), without ``output_raw``."""
        where, params = where_equal(workflow_id=filters.workflow_id,
                                    schedule_id=filters.schedule_id, status=filters.status)
        with self._connection.read() as db:
            page, total = select_page(db, table="tasks", columns=_LIST_COLUMNS, where=where,
                                      params=params, order_by="created_at DESC, id DESC",
                                      limit=limit, offset=offset)
        return Page(items=[task_from_row(row) for row in page], total=total, limit=limit,
                    offset=offset)

    def update_task(self, task: Task) -> Task:
        """Overwrite a task; a lease it holds is kept."""
        with self._connection.write() as db:
            fetch_task(db, task.id)
            require_workflow(db, task.workflow_id)
            db.execute(*update_statement("tasks", task_to_row(task)))
            return fetch_task(db, task.id)

    def delete_task(self, task_id: TaskId) -> None:
        """Delete a task."""
        with self._connection.write() as db:
            if db.execute("DELETE FROM tasks WHERE id = ?", [task_id]).rowcount == 0:
                raise NotFoundError(f"Task {task_id} not found")

    def claim_tasks(self, now: datetime, *, owner: str, lease_until: datetime,
                    limit: int, task_ids: Sequence[TaskId] | None = None) -> list[Task]:
        """Move up to ``limit`` runnable tasks to ``running`` under ``owner``'s lease."""
        now_text = encode_datetime(now)
        only = "" if task_ids is None else f"AND id IN ({_in(task_ids)}) "
        with self._connection.write() as db:
            ids = [row["id"] for row in rows(
                db,
                "SELECT id FROM tasks WHERE status = 'pending' "  # noqa: S608 - placeholders only
                f"AND (next_retry_at IS NULL OR next_retry_at <= ?) {only}"
                "ORDER BY created_at, id LIMIT ?",
                [now_text, *(task_ids or ()), limit],
            )]
            if not ids:
                return []
            db.execute(
                "UPDATE tasks SET status = 'running', lease_owner = ?, lease_expires_at = ?, "  # noqa: S608
                f"started_at = ?, tries = tries + 1, updated_at = ? WHERE id IN ({_in(ids)})",
                [owner, encode_datetime(lease_until), now_text, now_text, *ids],
            )
            claimed = rows(db, f"SELECT * FROM tasks WHERE id IN ({_in(ids)}) "  # noqa: S608
                               "ORDER BY created_at, id", ids)
        return [task_from_row(row) for row in claimed]

    def renew_leases(self, owner: str, lease_until: datetime) -> list[TaskId]:
        """Extend ``owner``'s leases; returns the ids of the running tasks it still holds."""
        with self._connection.write() as db:
            db.execute(
                "UPDATE tasks SET lease_expires_at = ? "
                "WHERE status = 'running' AND lease_owner = ?",
                [encode_datetime(lease_until), owner],
            )
            held = rows(db, "SELECT id FROM tasks WHERE status = 'running' AND lease_owner = ? "
                            "ORDER BY created_at, id", [owner])
        return [TaskId(row["id"]) for row in held]

    def expired_leases(self, now: datetime) -> list[Task]:
        """Running tasks whose lease ran out before ``now``, oldest first."""
        with self._connection.read() as db:
            expired = rows(db, "SELECT * FROM tasks WHERE status = 'running' "
                               "AND lease_expires_at < ? ORDER BY created_at, id",
                           [encode_datetime(now)])
        return [task_from_row(row) for row in expired]

    def cancel_task(self, task_id: TaskId, now: datetime) -> Task:
        """Move a pending or running task to ``cancelled``; ``InvalidStateError`` if final."""
        now_text = encode_datetime(now)
        with self._connection.write() as db:
            task = fetch_task(db, task_id)
            if task.status.is_final:
                raise InvalidStateError(f"Task {task_id} already finished ({task.status})")
            db.execute(
                "UPDATE tasks SET status = 'cancelled', finished_at = ?, updated_at = ?, "
                "lease_owner = NULL, lease_expires_at = NULL WHERE id = ?",
                [now_text, now_text, task_id],
            )
            return fetch_task(db, task_id)

    def release_task(self, task: Task, *, owner: str | None) -> bool:
        """Overwrite a running task held by ``owner`` (or, if ``None``, whose lease had expired
        by ``task.updated_at``), clearing the lease."""
        row = {**task_to_row(task), "lease_owner": None, "lease_expires_at": None}
        sql, params = update_statement("tasks", row)
        if owner is None:
            sql += " AND status = 'running' AND lease_expires_at < ?"
            condition = [encode_datetime(task.updated_at)]
        else:
            sql += " AND status = 'running' AND lease_owner = ?"
            condition = [owner]
        with self._connection.write() as db:
            changed: int = db.execute(sql, [*params, *condition]).rowcount
        return changed == 1
