"""``PostgresTaskRepository``: runs, their input, answer, error and timing."""

import functools
from collections.abc import Awaitable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import msgspec
import psycopg.errors
from psycopg import sql

from spark_adapters.postgres.connection import (
    NOW,
    Conn,
    Database,
    fetch_all,
    fetch_one,
)
from spark_adapters.postgres.rows import (
    column_names,
    param,
    struct_from_row,
    struct_to_row,
    text_param,
    utc,
)
from spark_adapters.postgres.statements import remembered, select_page
from spark_adapters.read_memo import ReadMemo
from spark_core.errors import ConflictError, InvalidStateError, NotFoundError
from spark_core.models import Page, Task, TaskId, TaskStatus
from spark_core.ports import TaskFilter

_JSON_FIELDS = ("output_raw", "tweaks", "attempts")

# Lists never read output_raw (a raw response can be megabytes and lists show many tasks) nor
# the attempt history (one task's read shows it).
_LEFT_OUT_OF_LISTS = {"output_raw": sql.SQL("NULL::jsonb AS output_raw"),
                      "attempts": sql.SQL("'[]'::jsonb AS attempts")}
LIST_COLUMNS = sql.SQL(", ").join(
    _LEFT_OUT_OF_LISTS.get(name, sql.Identifier(name)) for name in column_names(Task)
)
_FINAL = "status IN ('completed', 'failed', 'cancelled')"
_PRUNE = (
    "WITH gone AS (DELETE FROM tasks WHERE id IN (SELECT id FROM tasks "  # noqa: S608 - constants only
    f"WHERE {_FINAL} AND finished_at < {{cutoff}} ORDER BY finished_at LIMIT %(limit)s) "
    "RETURNING 1) SELECT count(*) AS n FROM gone"
)
_PRUNE_BEFORE = _PRUNE.format(cutoff="%(before)s")
_PRUNE_OLDER_THAN = _PRUNE.format(cutoff=NOW + " - make_interval(secs => %(age)s)")


def _filter_clause(filters: TaskFilter) -> tuple[sql.Composable, dict[str, Any]]:
    """The ``WHERE`` clause of a task list: equal columns, text, and a creation time range."""
    conditions: list[sql.Composable] = []
    params: dict[str, Any] = {}
    for column, value in (("workflow_id", filters.workflow_id),
                          ("schedule_id", filters.schedule_id), ("status", filters.status)):
        if value is not None:
            conditions.append(sql.SQL("{} = {}").format(sql.Identifier(column),
                                                        sql.Placeholder(column)))
            params[column] = param(value)
    if filters.q is not None:
        # strpos, not LIKE: the text is matched as it is, wildcards included.
        conditions.append(sql.SQL(
            "(strpos(lower(input_data), lower(%(q)s)) > 0"
            " OR strpos(lower(coalesce(output_data, '')), lower(%(q)s)) > 0"
            " OR strpos(lower(coalesce(error, '')), lower(%(q)s)) > 0)"))
        params["q"] = text_param(filters.q)
    if filters.created_after is not None:
        conditions.append(sql.SQL("created_at >= %(created_after)s"))
        params["created_after"] = utc(filters.created_after)
    if filters.created_before is not None:
        conditions.append(sql.SQL("created_at < %(created_before)s"))
        params["created_before"] = utc(filters.created_before)
    if filters.updated_after is not None:
        conditions.append(sql.SQL("updated_at >= %(updated_after)s"))
        params["updated_after"] = utc(filters.updated_after)
    if not conditions:
        return sql.SQL(""), params
    return sql.SQL("WHERE ") + sql.SQL(" AND ").join(conditions), params


def _kept_total(filters: TaskFilter) -> sql.Composable | None:
    """The count of all tasks, or of one workflow's, from the counters the triggers keep in
    ``workflow_stat_stripes`` (exact, in the same snapshot; a workflow's stripes summed),
    instead of counting up to millions of rows per page; ``None`` for other filters, which
    count the rows they match."""
    narrowed = msgspec.structs.replace(filters, workflow_id=None)
    if narrowed != TaskFilter():
        return None
    if filters.workflow_id is None:
        return sql.SQL("SELECT coalesce(sum(task_count), 0) AS n FROM workflow_stat_stripes")
    return sql.SQL("SELECT coalesce(sum(task_count), 0) AS n FROM workflow_stat_stripes "
                   "WHERE workflow_id = %(workflow_id)s")


def attempt_time(value: datetime) -> str:
    """An attempt's start or end as it is kept in the ``attempts`` JSON: ISO-8601 UTC."""
    return utc(value).isoformat(timespec="microseconds")


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
    return len(await insert_returning(conn, tasks, skip_taken_slots=skip_taken_slots))


async def insert_returning(
    conn: Conn, tasks: Sequence[Task], *, skip_taken_slots: bool, hinted: bool = True
) -> list[dict[str, Any]]:
    """``insert_tasks`` in one statement, answering the rows as stored (every pending one
    hinted ``work`` from its ``RETURNING`` unless not ``hinted``); the constraints tell the
    failures apart."""
    if not tasks:
        return []
    rows = [task_to_row(task) for task in tasks]
    render = _insert_statement if len(rows) <= _KEPT_INSERT_ROWS else _render_insert
    statement = render(tuple(rows[0]), len(rows), skip_taken_slots=skip_taken_slots,
                       hinted=hinted)
    params = {f"{name}_{index}": value
              for index, row in enumerate(rows) for name, value in row.items()}
    with _insert_errors(tasks):
        return await fetch_all(conn, statement, params)


def _render_insert(columns: tuple[str, ...], count: int, *, skip_taken_slots: bool,
                   hinted: bool) -> str:
    """``insert_returning``'s statement for ``count`` rows of ``columns``, as text."""
    values = sql.SQL(", ").join(
        sql.SQL("({})").format(sql.SQL(", ").join(
            sql.Placeholder(f"{name}_{index}") for name in columns))
        for index in range(count)
    )
    hint = "CASE WHEN status = 'pending' THEN 'work' END" if hinted else "NULL"
    return sql.SQL("INSERT INTO tasks ({}) VALUES {} {} RETURNING *, spark_notify("
                   "{}, id) AS hint").format(
        sql.SQL(", ").join(sql.Identifier(name) for name in columns),
        values,
        sql.SQL("ON CONFLICT (schedule_id, scheduled_for) DO NOTHING" if skip_taken_slots
                else ""),
        sql.SQL(hint),
    ).as_string()


_KEPT_INSERT_ROWS = 8
"""Inserts of up to this many rows (a run's task, a round of due schedules) keep their
rendered statement: psycopg renders a composed statement, quoting every identifier, on each
execution. Larger ones (a backfill) are rare and would keep large strings."""
_insert_statement = functools.lru_cache(maxsize=16)(_render_insert)


def claimed_columns(*, tries: str, started_at: str, attempts: str) -> dict[str, str]:
    """What a claim sets, as SQL over the task's ``tries``, ``started_at`` and ``attempts``
    before it (columns of the row claimed, or parameters of a row inserted already claimed):
    running, one more try, started now unless it had started, the new attempt appended to the
    history with its start in the history's text format. One definition for the claim and for
    ``insert_running``, so the two rows cannot differ."""
    return {
        "status": "'running'",
        "tries": f"{tries} + 1",
        "started_at": f"coalesce({started_at}, {NOW})",
        "updated_at": NOW,
        "attempts": f"{attempts} || jsonb_build_array(jsonb_build_object('attempt', {tries} + 1,"
                    f" 'started_at', to_char(({NOW}) AT TIME ZONE 'UTC',"
                    " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')))",
    }


_RUNNING_COLUMNS = claimed_columns(tries="%(tries)s", started_at="%(started_at)s::timestamptz",
                                   attempts="%(attempts)s::jsonb")
"""The claimed columns of a task inserted already claimed (``insert_running``)."""


_INSERT_RUNNING = sql.SQL(
    "INSERT INTO tasks ({}, lease_owner, lease_expires_at) SELECT {}, %(lease_owner)s, "  # noqa: S608 - constants only
    + NOW + " + make_interval(secs => %(lease)s) WHERE EXISTS (SELECT 1 FROM workflows "
    "WHERE id = %(workflow_id)s AND max_concurrency IS NULL) {} RETURNING updated_at")
_SAME_CATALOGUE = "AND (SELECT version FROM catalogue_version) = %(catalogue)s"
"""The catalogue is still at the version the run's target was read at (migration 10)."""


async def insert_running(conn: Conn, task: Task, *, owner: str, lease_seconds: float,
                         now: datetime | None, catalogue: int | None = None) -> Task | None:
    """Insert ``task`` already claimed by ``owner`` (as the claim would leave it, by the
    database's clock) in one statement, when its workflow has no ``max_concurrency`` (and,
    given ``catalogue``, the catalogue is still at that version); the task as stored
    (``task.claimed_at`` the database's time of the claim, the one value read back), or
    ``None`` when the workflow has a limit or does not exist, or the catalogue has moved on
    (nothing inserted). Errors as ``insert_returning``."""
    row = task_to_row(task)
    params = {**row, "lease_owner": owner, "lease": float(lease_seconds), "now": now,
              "catalogue": catalogue}
    statement = _insert_running_statement(tuple(row), checked=catalogue is not None)
    with _insert_errors([task]):
        inserted = await fetch_one(conn, statement, params)
    return None if inserted is None else task.claimed_at(utc(inserted["updated_at"]))


@functools.lru_cache(maxsize=4)
def _insert_running_statement(columns: tuple[str, ...], *, checked: bool) -> str:
    """``insert_running``'s statement for a row of ``columns`` (every task's row has the same
    ones), rendered to text once: psycopg renders a composed statement on every execution,
    quoting each identifier again."""
    values = [sql.SQL(_RUNNING_COLUMNS[name]) if name in _RUNNING_COLUMNS
              else sql.Placeholder(name) for name in columns]
    return _INSERT_RUNNING.format(
        sql.SQL(", ").join(sql.Identifier(name) for name in columns),
        sql.SQL(", ").join(values), sql.SQL(_SAME_CATALOGUE if checked else "")).as_string()


@contextmanager
def _insert_errors(tasks: Sequence[Task]) -> Iterator[None]:
    """The constraint a task insert broke, told apart: a taken (schedule, time), a taken id,
    a missing workflow."""
    try:
        yield
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name == "tasks_schedule_slot":
            first = tasks[0]
            raise ConflictError(f"Schedule {first.schedule_id} already has a task for "
                                f"{first.scheduled_for}") from exc
        raise ConflictError(f"Task {_named(tasks, 'id')} already exists") from exc
    except psycopg.errors.ForeignKeyViolation as exc:
        raise NotFoundError(f"Workflow {_named(tasks, 'workflow_id')} not found") from exc


def _named(tasks: Sequence[Task], field: str) -> str:
    """The value of ``field`` that a one-task insert failed on (a batch names the first)."""
    return str(getattr(tasks[0], field))


def _count_per_status(bound: str) -> str:
    """One count per status (the statuses are the enum's own words, not input)."""
    return " UNION ALL ".join(
        f"SELECT '{status.value}' AS status, count(*) AS n FROM tasks "  # noqa: S608
        f"WHERE status = '{status.value}'{bound}" for status in TaskStatus)


_COUNT_BY_STATUS = _count_per_status("")
_COUNT_BY_STATUS_SINCE = _count_per_status(" AND created_at >= %(since)s")


class PostgresTaskRepository:
    """The ``TaskRepository`` port on the ``tasks`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pages: ReadMemo[Page[Task]] = ReadMemo()

    async def add(self, task: Task) -> Task:
        """Insert; ``NotFoundError`` if its workflow does not exist."""
        async with self._db.connection() as conn:  # one statement: its own transaction
            [row] = await insert_returning(conn, [task], skip_taken_slots=False)
            return task_from_row(row)

    async def get(self, task_id: TaskId) -> Task:
        """One task by id, with ``output_raw``."""
        async with self._db.connection() as conn:
            return await fetch_task(conn, task_id)

    async def list(self, filters: TaskFilter, *, limit: int, offset: int) -> Page[Task]:
        """Tasks newest first (``created_at`` descending), without ``output_raw``; the same
        page again while nothing was committed (``remembered``)."""

        def read(conn: Conn) -> Awaitable[Page[Task]]:
            where, params = _filter_clause(filters)  # on a miss only, as SQLite's
            return select_page(self._db, Task, table="tasks", where=where, params=params,
                               order_by="created_at DESC, id DESC", limit=limit, offset=offset,
                               columns=LIST_COLUMNS, total=_kept_total(filters), conn=conn)

        return await remembered(self._db, self._pages, (filters, limit, offset), read)

    async def count_by_status(
        self, *, created_after: datetime | None = None
    ) -> dict[TaskStatus, int]:
        """Tasks by status in one statement: a count per status, each a range of the index
        ``tasks_status`` (status, created_at)."""
        query = _COUNT_BY_STATUS if created_after is None else _COUNT_BY_STATUS_SINCE
        params = {} if created_after is None else {"since": utc(created_after)}
        async with self._db.connection() as conn:
            found = await fetch_all(conn, query, params)
        return {TaskStatus(row["status"]): int(row["n"]) for row in found if row["n"]}

    async def cancel(self, task_id: TaskId, *, now: datetime) -> Task:
        """Atomically move a pending or running task to ``cancelled`` (clearing any lease);
        ``InvalidStateError`` if it already finished. Wakes the node running it."""
        async with self._db.transaction() as conn:
            row = await fetch_one(conn, """
                UPDATE tasks SET status = 'cancelled', finished_at = %(now)s,
                    updated_at = %(now)s, lease_owner = NULL, lease_expires_at = NULL,
                    attempts = CASE WHEN status = 'running' AND jsonb_array_length(attempts) > 0
                        THEN jsonb_set(jsonb_set(attempts, '{-1,finished_at}',
                                                 to_jsonb(%(ended)s::text)),
                                       '{-1,error}', '"cancelled"')
                        ELSE attempts END
                WHERE id = %(id)s AND status IN ('pending', 'running')
                RETURNING *
            """, {"id": task_id, "now": utc(now), "ended": attempt_time(now)})
            if row is None:
                task = await fetch_task(conn, task_id)
                raise InvalidStateError(f"Task {task_id} already finished ({task.status})")
            await conn.execute("SELECT spark_notify('cancel', %(id)s), "
                               "spark_notify('finished', %(id)s)", {"id": task_id})
            return task_from_row(row)

    async def watch_end(self, task_id: TaskId) -> bool:
        """From now on, the task's end is hinted to every node (``spark_notify('finished')``
        in the write of its final outcome; only such tasks' ends are); ``False`` when it has
        ended already or does not exist."""
        async with self._db.connection() as conn:
            return bool(await fetch_all(
                conn, "UPDATE tasks SET awaited = true WHERE id = %s"
                      " AND status IN ('pending', 'running') RETURNING id", [task_id]))

    async def delete(self, task_id: TaskId) -> None:
        """Delete a task."""
        async with self._db.connection() as conn:
            deleted = await conn.execute("DELETE FROM tasks WHERE id = %s", [task_id])
        if deleted.rowcount == 0:
            raise NotFoundError(f"Task {task_id} not found")

    async def prune(self, *, before: datetime | None = None,
                    older_than: timedelta | None = None, limit: int) -> int:
        """Delete up to ``limit`` finished tasks that finished before ``before``, or more than
        ``older_than`` ago by the database's clock; returns how many went."""
        if (before is None) == (older_than is None):
            raise ValueError("Give exactly one of before and older_than")
        params: dict[str, Any] = {"limit": min(max(limit, 0), 2**63 - 1)}
        if before is not None:
            query, params["before"] = _PRUNE_BEFORE, utc(before)
        else:
            query = _PRUNE_OLDER_THAN
            params["age"] = (older_than or timedelta()).total_seconds()
            params["now"] = self._db.now()
        async with self._db.connection() as conn:
            row = await fetch_one(conn, query, params)
        return int(row["n"]) if row else 0
