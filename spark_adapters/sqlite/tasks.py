"""``SqliteTaskRepository``: runs, with their input, answer, error and timing.

The lease columns (``lease_owner``, ``lease_expires_at``) are not on the ``Task`` Struct; the
queue (``spark_adapters.sqlite.queue``) owns them.
"""

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import msgspec

from spark_adapters.read_memo import ReadMemo
from spark_adapters.sqlite.connection import (
    SQLITE_MAX_INTEGER,
    Database,
    rows,
    scalar,
    select_page,
    translate_errors,
    where_equal,
)
from spark_adapters.sqlite.rows import (
    column_names,
    encode_columns,
    encode_datetime,
    json_text,
    struct_from_row,
)
from spark_adapters.sqlite.wakeups import WORK, SqliteWakeUpFeed, cancelled
from spark_core.errors import ConflictError, InvalidStateError, NotFoundError
from spark_core.models import Page, Task, TaskAttempt, TaskId, TaskStatus
from spark_core.ports import Clock, TaskFilter, TaskRepository

_JSON_FIELDS = ("output_raw", "tweaks", "attempts")
_OTHER_JSON_FIELDS = ("output_raw", "tweaks")
"""The JSON fields but ``attempts``, which ``attempts_text`` writes."""
_COLUMNS = column_names(Task)

# Lists never read output_raw (a raw response can be megabytes and lists show many tasks) nor
# the attempt history (one task's read shows it): the Struct's defaults (None, []) stand in.
_LIST_COLUMNS = ", ".join(name for name in _COLUMNS if name not in ("output_raw", "attempts"))
_INSERT = (f"INSERT INTO tasks ({', '.join(_COLUMNS)}) "  # noqa: S608 - our column names only
           f"VALUES ({', '.join('?' for _ in _COLUMNS)})")
_INSERT_RETURNING = f"{_INSERT} RETURNING *"

def appended_attempt(attempts: str, number: str) -> str:
    """SQL for the history ``attempts`` with attempt ``number`` appended, started at the next
    parameter: what a claim writes (``attempts_text`` writes the same JSON for a history
    built in Python)."""
    return f"json_insert({attempts}, '$[#]', json_object('attempt', {number}, 'started_at', ?))"


def attempts_text(attempts: Sequence[TaskAttempt]) -> str:
    """The stored JSON of an attempt history, as the statements that change it in SQL write
    it: datetimes in the stored format, an attempt under way without ``finished_at`` and
    ``error`` (``appended_attempt``), an ended one with both (an outcome's ``json_set``)."""
    entries: list[dict[str, Any]] = []
    for attempt in attempts:
        entry: dict[str, Any] = {"attempt": attempt.attempt,
                                 "started_at": encode_datetime(attempt.started_at)}
        if attempt.finished_at is not None:
            entry["finished_at"] = encode_datetime(attempt.finished_at)
            entry["error"] = attempt.error
        entries.append(entry)
    return json_text(entries) or "[]"


# A task inserted already claimed (running, its attempt and lease written): a plain insert
# when its workflow is known to have no limit, else only if it has none.
_CLAIMED_COLUMNS = f"{', '.join(_COLUMNS)}, lease_owner, lease_expires_at"
_CLAIMED_VALUES = ", ".join("?" for _ in range(len(_COLUMNS) + 2))
_INSERT_CLAIMED = f"INSERT INTO tasks ({_CLAIMED_COLUMNS}) VALUES ({_CLAIMED_VALUES})"  # noqa: S608
_INSERT_CLAIMED_IF_UNLIMITED = (
    f"INSERT INTO tasks ({_CLAIMED_COLUMNS}) SELECT {_CLAIMED_VALUES} "  # noqa: S608
    "WHERE EXISTS (SELECT 1 FROM workflows WHERE id = ? AND max_concurrency IS NULL)")
# A schedule's fire inserts a (schedule, time) at most once: the unique index of migration 4
# skips a repeat, while any other constraint (a reused id, a missing workflow) still fails.
_INSERT_ONCE_PER_FIRE_TIME = (
    f"{_INSERT} ON CONFLICT (schedule_id, scheduled_for) "
    "WHERE schedule_id IS NOT NULL AND scheduled_for IS NOT NULL DO NOTHING"
)
_CANCEL = (
    "UPDATE tasks SET status = 'cancelled', finished_at = ?, updated_at = ?, "
    "lease_owner = NULL, lease_expires_at = NULL, "
    "attempts = CASE WHEN status = 'running' AND json_array_length(attempts) > 0 "
    "THEN json_set(attempts, '$[#-1].finished_at', ?, '$[#-1].error', 'cancelled') "
    "ELSE attempts END "
    "WHERE id = ? AND status IN ('pending', 'running') RETURNING *"
)
_FINAL = "status IN ('completed', 'failed', 'cancelled')"
_PRUNE = (
    "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks "  # noqa: S608 - constants only
    f"WHERE {_FINAL} AND finished_at < ? ORDER BY finished_at LIMIT ?)"
)


def task_to_row(task: Task) -> dict[str, Any]:
    """The ``tasks`` row for ``task`` (the lease columns are not on the Struct)."""
    values = msgspec.structs.asdict(task)
    values["attempts"] = attempts_text(task.attempts)
    return encode_columns(values, json_fields=_OTHER_JSON_FIELDS)


def task_from_row(row: dict[str, Any]) -> Task:
    """The ``Task`` stored as ``row``; the lease columns are left behind."""
    return struct_from_row(Task, row, json_fields=_JSON_FIELDS)


def tasks_from_list_rows(found: list[dict[str, Any]]) -> list[Task]:
    """The tasks of a list page's rows (``_LIST_COLUMNS``), converted in one call; the rows
    are changed in place."""
    for row in found:
        if row["tweaks"] is not None:
            row["tweaks"] = msgspec.json.decode(row["tweaks"])
    return msgspec.convert(found, list[Task], strict=False)


def task_values(task: Task) -> list[Any]:
    """The parameters of ``_INSERT`` for ``task``, in column order."""
    row = task_to_row(task)
    return [row[name] for name in _COLUMNS]


def insert_fired_tasks(conn: sqlite3.Connection, tasks: Sequence[Task]) -> None:
    """Insert a fire's tasks, skipping any whose (schedule_id, scheduled_for) exists already;
    ``ConflictError`` on a reused id, ``NotFoundError`` on a missing workflow."""
    if not tasks:
        return
    with translate_errors(missing="The workflow of a fired task does not exist"):
        conn.executemany(_INSERT_ONCE_PER_FIRE_TIME, [task_values(task) for task in tasks])


def _where(filters: TaskFilter) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause of a task list: equal columns, text, and a creation time range."""
    where, params = where_equal(workflow_id=filters.workflow_id,
                                schedule_id=filters.schedule_id, status=filters.status)
    conditions = [where.removeprefix("WHERE ")] if where else []
    if filters.q is not None:
        conditions.append("(instr(spark_casefold(input_data), ?) > 0 "
                          "OR instr(spark_casefold(coalesce(output_data, '')), ?) > 0 "
                          "OR instr(spark_casefold(coalesce(error, '')), ?) > 0)")
        params.extend([filters.q.casefold()] * 3)
    if filters.created_after is not None:
        conditions.append("created_at >= ?")
        params.append(encode_datetime(filters.created_after))
    if filters.created_before is not None:
        conditions.append("created_at < ?")
        params.append(encode_datetime(filters.created_before))
    if filters.updated_after is not None:
        conditions.append("updated_at >= ?")
        params.append(encode_datetime(filters.updated_after))
    return ("WHERE " + " AND ".join(conditions) if conditions else ""), params


def _not_found(task_id: str) -> NotFoundError:
    return NotFoundError(f"Task {task_id} not found")


def insert_task(conn: sqlite3.Connection, task: Task) -> Task:
    """Insert ``task`` and answer it as stored; ``NotFoundError`` if its workflow does not
    exist, ``ConflictError`` if the id (or the schedule's fire time) is taken."""
    with _insert_errors(task):
        return task_from_row(rows(conn, _INSERT_RETURNING, task_values(task))[0])


def insert_claimed_task(conn: sqlite3.Connection, task: Task, *, owner: str, now: datetime,
                        lease_until: datetime, unlimited: bool = False) -> Task | None:
    """Insert the new runnable ``task`` as a claim by ``owner`` at ``now`` would leave it
    (running, one more try, started now unless it had started, its new attempt appended,
    leased until ``lease_until``) when its workflow has no ``max_concurrency``, in one
    statement; the task as written (not read back), or ``None`` when the workflow has a limit
    or does not exist (nothing inserted). ``unlimited``: the caller knows the workflow has
    no limit as it stands in this transaction (the statement does not look). Errors as
    ``insert_task``."""
    running = task.claimed_at(now)
    params = [*task_values(running), owner, encode_datetime(lease_until)]
    with _insert_errors(task):
        if unlimited:
            conn.execute(_INSERT_CLAIMED, params)
            return running
        inserted = conn.execute(_INSERT_CLAIMED_IF_UNLIMITED,
                                [*params, task.workflow_id]).rowcount
    return running if inserted else None


@contextmanager
def _insert_errors(task: Task) -> Iterator[None]:
    """sqlite3's errors of a task insert, told apart: a missing workflow, a taken fire time,
    a taken id."""
    with translate_errors(missing=f"Workflow {task.workflow_id} not found"):
        try:
            yield
        except sqlite3.IntegrityError as exc:
            if "tasks.scheduled_for" in str(exc):
                raise ConflictError(f"Schedule {task.schedule_id} already has a task "
                                    f"for {task.scheduled_for}") from exc
            if "tasks.id" in str(exc):
                raise ConflictError(f"Task {task.id} already exists") from exc
            raise


class SqliteTaskRepository(TaskRepository):
    """The ``TaskRepository`` port on the ``tasks`` table."""

    def __init__(self, database: Database, *, clock: Clock, hints: SqliteWakeUpFeed) -> None:
        self._database = database
        self._clock = clock
        self._hints = hints
        self._pages: ReadMemo[Page[Task]] = ReadMemo()

    async def add(self, task: Task) -> Task:
        """Insert; ``NotFoundError`` if its workflow does not exist, ``ConflictError`` if the id
        (or the schedule's fire time) is taken."""
        added = await self._database.write(lambda conn: insert_task(conn, task), quick=True)
        self._hints.publish(WORK)
        return added

    async def get(self, task_id: TaskId) -> Task:
        """One task by id, with ``output_raw``."""
        found = await self._database.read(
            lambda conn: rows(conn, "SELECT * FROM tasks WHERE id = ?", [task_id]))
        if not found:
            raise _not_found(task_id)
        return task_from_row(found[0])

    async def list(self, filters: TaskFilter, *, limit: int, offset: int) -> Page[Task]:
        """Tasks newest first (``created_at`` descending), without ``output_raw``; the same
        page again while nothing was written to the database (``ReadMemo``)."""
        key, token = (filters, limit, offset), self._database.change_token()
        if token is not None and (kept := self._pages.get(key, token)) is not None:
            return kept
        where, params = _where(filters)
        rows_, total = await self._database.read(
            lambda conn: select_page(conn, table="tasks", columns=_LIST_COLUMNS, where=where,
                                     params=params, order_by="created_at DESC, id DESC",
                                     limit=limit, offset=offset),
            snapshot=True,
        )
        page = Page(items=tasks_from_list_rows(rows_), total=total, limit=limit, offset=offset)
        if token is not None:
            self._pages.put(key, token, page)
        return page

    async def count_by_status(
        self, *, created_after: datetime | None = None
    ) -> dict[TaskStatus, int]:
        """Tasks by status in one statement: a count per status, each a range of the covering
        index ``idx_tasks_status_created_at`` (no table row is read)."""
        bound = "" if created_after is None else " AND created_at >= ?"
        query = " UNION ALL ".join(
            f"SELECT ? AS status, count(*) AS n FROM tasks WHERE status = ?{bound}"  # noqa: S608
            for _ in TaskStatus)
        since = [] if created_after is None else [encode_datetime(created_after)]
        params = [value for status in TaskStatus for value in (status.value, status.value,
                                                                 *since)]
        found = await self._database.read(lambda conn: rows(conn, query, params),
                                          snapshot=True)
        return {TaskStatus(row["status"]): int(row["n"]) for row in found if row["n"]}

    async def watch_end(self, task_id: TaskId) -> bool:
        """Nothing to do (``True`` without looking): this store's hints name no task across
        processes (``wakeups``), so a waiter in another process polls; in this process every
        end is hinted."""
        return True

    async def cancel(self, task_id: TaskId, *, now: datetime) -> Task:
        """Move a pending or running task to ``cancelled``, clearing any lease;
        ``InvalidStateError`` if it already finished."""
        stamp = encode_datetime(now)

        def cancel(conn: sqlite3.Connection) -> Task:
            cancelled = rows(conn, _CANCEL, [stamp, stamp, stamp, task_id])
            if cancelled:
                return task_from_row(cancelled[0])
            status = scalar(conn, "SELECT status FROM tasks WHERE id = ?", [task_id])
            if status is None:
                raise _not_found(task_id)
            raise InvalidStateError(f"Task {task_id} already finished ({status})")

        task = await self._database.write(cancel)
        self._hints.publish(*cancelled(task_id))
        return task

    async def delete(self, task_id: TaskId) -> None:
        """Delete a task."""

        def delete(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM tasks WHERE id = ?", [task_id]).rowcount

        if await self._database.write(delete) == 0:
            raise _not_found(task_id)

    async def prune(self, *, before: datetime | None = None,
                    older_than: timedelta | None = None, limit: int) -> int:
        """Delete up to ``limit`` finished tasks that finished before ``before``, or more than
        ``older_than`` ago by the store's clock; returns how many went."""
        if (before is None) == (older_than is None):
            raise ValueError("Give exactly one of before and older_than")
        cutoff = before if before is not None else self._clock.now() - (older_than or timedelta())
        params = [encode_datetime(cutoff), min(max(limit, 0), SQLITE_MAX_INTEGER)]

        def prune(conn: sqlite3.Connection) -> int:
            return int(conn.execute(_PRUNE, params).rowcount)

        return await self._database.write(prune)
