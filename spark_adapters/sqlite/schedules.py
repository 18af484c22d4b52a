"""The ``schedules`` table, and the compare-and-set that fires a schedule exactly once."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlite_utils

from spark_adapters.sqlite.connection import (
    Connection,
    rows,
    scalar,
    select_page,
    update_statement,
    where_equal,
)
from spark_adapters.sqlite.rows import (
    decode_datetime,
    encode_datetime,
    struct_from_row,
    struct_to_row,
)
from spark_adapters.sqlite.tasks import insert_tasks
from spark_adapters.sqlite.workflows import require_workflow
from spark_core.errors import ConflictError, NotFoundError
from spark_core.models import Page, Schedule, ScheduleId, Task
from spark_core.ports import ScheduleFilter


def schedule_to_row(schedule: Schedule) -> dict[str, Any]:
    """The ``schedules`` row for ``schedule``."""
    return struct_to_row(schedule, json_fields=())


def schedule_from_row(row: dict[str, Any]) -> Schedule:
    """The ``Schedule`` stored as ``row``."""
    return struct_from_row(Schedule, row, json_fields=())


def fetch_schedule(db: sqlite_utils.Database, schedule_id: str) -> Schedule:
    """One schedule by id inside an open transaction; ``NotFoundError`` if unknown."""
    found = rows(db, "SELECT * FROM schedules WHERE id = ?", [schedule_id])
    if not found:
        raise NotFoundError(f"Schedule {schedule_id} not found")
    return schedule_from_row(found[0])


class ScheduleTable:
    """The schedule methods of ``SqliteStore``."""

    _connection: Connection

    def add_schedule(self, schedule: Schedule) -> Schedule:
        """Insert; ``NotFoundError`` if its workflow does not exist."""
        with self._connection.write() as db:
            require_workflow(db, schedule.workflow_id)
            if scalar(db, "SELECT 1 FROM schedules WHERE id = ?", [schedule.id]) is not None:
                raise ConflictError(f"Schedule {schedule.id} already exists")
            db.table("schedules").insert(schedule_to_row(schedule))
            return fetch_schedule(db, schedule.id)

    def get_schedule(self, schedule_id: ScheduleId) -> Schedule:
        """One schedule by id."""
        with self._connection.read() as db:
            return fetch_schedule(db, schedule_id)

    def list_schedules(self, filters: ScheduleFilter, *, limit: int,
                       offset: int) -> Page[Schedule]:
        """Schedules ordered by creation time."""
        where, params = where_equal(workflow_id=filters.workflow_id, status=filters.status)
        with self._connection.read() as db:
            page, total = select_page(db, table="schedules", columns="*", where=where,
                                      params=params, order_by="created_at, id",
                                      limit=limit, offset=offset)
        return Page(items=[schedule_from_row(row) for row in page], total=total, limit=limit,
                    offset=offset)

    def update_schedule(self, schedule: Schedule) -> Schedule:
        """Overwrite a schedule (whatever its ``next_run_at``)."""
        with self._connection.write() as db:
            fetch_schedule(db, schedule.id)
            require_workflow(db, schedule.workflow_id)
            db.execute(*update_statement("schedules", schedule_to_row(schedule)))
            return fetch_schedule(db, schedule.id)

    def delete_schedule(self, schedule_id: ScheduleId) -> None:
        """Delete a schedule; its tasks stay, with ``schedule_id`` kept for history."""
        with self._connection.write() as db:
            if db.execute("DELETE FROM schedules WHERE id = ?", [schedule_id]).rowcount == 0:
                raise NotFoundError(f"Schedule {schedule_id} not found")

    def due_schedules(self, now: datetime, *, limit: int) -> list[Schedule]:
        """Active schedules whose ``next_run_at`` <= ``now``, earliest first."""
        with self._connection.read() as db:
            due = rows(db, "SELECT * FROM schedules WHERE status = 'active' "
                           "AND next_run_at <= ? ORDER BY next_run_at, id LIMIT ?",
                       [encode_datetime(now), limit])
        return [schedule_from_row(row) for row in due]

    def next_due_at(self) -> datetime | None:
        """The earliest ``next_run_at`` of any active schedule."""
        with self._connection.read() as db:
            earliest = scalar(db, "SELECT min(next_run_at) FROM schedules "
                                  "WHERE status = 'active'")
        return None if earliest is None else decode_datetime(earliest)

    def fire_schedule(self, schedule: Schedule, *, expected_next_run_at: datetime,
                      tasks: Sequence[Task]) -> bool:
        """Overwrite ``schedule`` and insert ``tasks`` only if ``next_run_at`` is unchanged."""
        sql, params = update_statement("schedules", schedule_to_row(schedule))
        sql += " AND next_run_at IS ?"
        params.append(encode_datetime(expected_next_run_at))
        with self._connection.write() as db:
            if db.execute(sql, params).rowcount != 1:
                return False
            insert_tasks(db, list(tasks))
        return True

    def count_active_tasks(self, schedule_id: ScheduleId) -> tuple[int, int]:
        """(pending, running) task counts of a schedule, for its overlap policy."""
        with self._connection.read() as db:
            counts = dict(db.execute(
                "SELECT status, count(*) FROM tasks WHERE schedule_id = ? "
                "AND status IN ('pending', 'running') GROUP BY status",
                [schedule_id],
            ).fetchall())
        return int(counts.get("pending", 0)), int(counts.get("running", 0))
