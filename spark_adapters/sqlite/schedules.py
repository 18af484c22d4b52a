"""``SqliteScheduleRepository``: schedules, and the compare-and-set on ``version`` that fires a
schedule once however many schedulers race for it."""

import sqlite3
from collections.abc import Sequence
from typing import Any

from spark_adapters.sqlite.connection import (
    Database,
    rows,
    scalar,
    select_page,
    set_clause,
    translate_errors,
    where_equal,
)
from spark_adapters.sqlite.fires import upsert_fires
from spark_adapters.sqlite.rows import (
    decode_datetime,
    encode_columns,
    encode_datetime,
    struct_from_row,
    struct_to_row,
)
from spark_adapters.sqlite.tasks import insert_fired_tasks
from spark_adapters.sqlite.wakeups import SCHEDULES, WORK, SqliteWakeUpFeed
from spark_core.errors import NotFoundError, StaleWriteError
from spark_core.fires import FireRecord
from spark_core.models import Page, Schedule, ScheduleId, Task
from spark_core.ports import (
    Clock,
    DueSchedules,
    NextDue,
    ScheduleFilter,
    SchedulePatch,
    ScheduleRepository,
    patch_fields,
)


def schedule_to_row(schedule: Schedule) -> dict[str, Any]:
    """The ``schedules`` row for ``schedule``."""
    return struct_to_row(schedule, json_fields=())


def schedule_from_row(row: dict[str, Any]) -> Schedule:
    """The ``Schedule`` stored as ``row``."""
    return struct_from_row(Schedule, row, json_fields=())


def _compare_and_set(patch: SchedulePatch) -> tuple[str, list[Any]]:
    """An ``UPDATE`` setting the patch's fields and ``version + 1``, for parameters
    ``[*values, schedule_id, expected_version]``."""
    assignments, values = set_clause(encode_columns(patch_fields(patch), json_fields=()))
    sql = (f"UPDATE schedules SET {assignments}, version = version + 1 "  # noqa: S608
           "WHERE id = ? AND version = ?")
    return sql, values


def _taken(schedule_id: str, key: object) -> str:
    """The conflict message for an insert or update that breaks a unique index."""
    if isinstance(key, str):
        return f"A schedule with key {key!r} already exists"
    return f"Schedule {schedule_id} already exists"


def _not_found(schedule_id: str) -> NotFoundError:
    return NotFoundError(f"Schedule {schedule_id} not found")


class SqliteScheduleRepository(ScheduleRepository):
    """The ``ScheduleRepository`` port on the ``schedules`` table; dueness by the store's clock."""

    def __init__(self, database: Database, *, clock: Clock, hints: SqliteWakeUpFeed) -> None:
        self._database = database
        self._clock = clock
        self._hints = hints

    async def add(self, schedule: Schedule) -> Schedule:
        """Insert at version 1; ``NotFoundError`` if its workflow does not exist."""
        row = {**schedule_to_row(schedule), "version": 1}
        sql = (f"INSERT INTO schedules ({', '.join(row)}) "  # noqa: S608 - our column names
               f"VALUES ({', '.join('?' for _ in row)}) RETURNING *")

        def insert(conn: sqlite3.Connection) -> Schedule:
            with translate_errors(missing=f"Workflow {schedule.workflow_id} not found",
                                  conflict=_taken(schedule.id, schedule.key)):
                return schedule_from_row(rows(conn, sql, list(row.values()))[0])

        added = await self._database.write(insert)
        self._hints.publish(SCHEDULES)
        return added

    async def get(self, schedule_id: ScheduleId) -> Schedule:
        """One schedule by id."""
        found = await self._database.read(
            lambda conn: rows(conn, "SELECT * FROM schedules WHERE id = ?", [schedule_id]))
        if not found:
            raise _not_found(schedule_id)
        return schedule_from_row(found[0])

    async def list(self, filters: ScheduleFilter, *, limit: int,
                   offset: int) -> Page[Schedule]:
        """Schedules ordered by creation time."""
        where, params = where_equal(workflow_id=filters.workflow_id, status=filters.status,
                                    key=filters.key)
        page, total = await self._database.read(
            lambda conn: select_page(conn, table="schedules", columns="*", where=where,
                                     params=params, order_by="created_at, id",
                                     limit=limit, offset=offset),
            snapshot=True,
        )
        return Page(items=[schedule_from_row(row) for row in page], total=total, limit=limit,
                    offset=offset)

    async def update(self, schedule_id: ScheduleId, patch: SchedulePatch, *,
                     expected_version: int) -> Schedule:
        """Set the patch's fields if the schedule is still at ``expected_version`` (which then
        goes up by one); ``StaleWriteError`` if it changed, ``NotFoundError`` if it is gone."""
        sql, values = _compare_and_set(patch)
        params = [*values, schedule_id, expected_version]
        missing = (f"Workflow {patch.workflow_id} not found"
                   if isinstance(patch.workflow_id, str) else None)

        def update(conn: sqlite3.Connection) -> Schedule:
            with translate_errors(missing=missing, conflict=_taken(schedule_id, patch.key)):
                found = rows(conn, f"{sql} RETURNING *", params)
            if found:
                return schedule_from_row(found[0])
            stored = scalar(conn, "SELECT version FROM schedules WHERE id = ?", [schedule_id])
            if stored is None:
                raise _not_found(schedule_id)
            raise StaleWriteError(
                f"Schedule {schedule_id} changed meanwhile (version {stored}, "
                f"expected {expected_version}); read it again"
            )

        updated = await self._database.write(update)
        self._hints.publish(SCHEDULES)
        return updated

    async def delete(self, schedule_id: ScheduleId) -> None:
        """Delete a schedule; its tasks stay, with ``schedule_id`` kept for history."""

        def delete(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM schedules WHERE id = ?", [schedule_id]).rowcount

        if await self._database.write(delete) == 0:
            raise _not_found(schedule_id)
        self._hints.publish(SCHEDULES)

    async def due(self, *, limit: int) -> DueSchedules:
        """Active schedules whose ``next_run_at`` <= the store's now, earliest first."""
        now = self._clock.now()
        due = await self._database.read(
            lambda conn: rows(conn, "SELECT * FROM schedules WHERE status = 'active' "
                                    "AND next_run_at <= ? ORDER BY next_run_at, id LIMIT ?",
                              [encode_datetime(now), limit]))
        return DueSchedules(now=now, schedules=[schedule_from_row(row) for row in due])

    async def next_due(self) -> NextDue:
        """The earliest ``next_run_at`` of any active schedule, with the store's now."""
        now = self._clock.now()
        earliest = await self._database.read(
            lambda conn: scalar(conn, "SELECT min(next_run_at) FROM schedules "
                                      "WHERE status = 'active'"))
        return NextDue(now=now, at=None if earliest is None else decode_datetime(earliest))

    async def fire(self, schedule_id: ScheduleId, patch: SchedulePatch, *,
                   expected_version: int, tasks: Sequence[Task],
                   fires: Sequence[FireRecord] = ()) -> bool:
        """If the schedule is still at ``expected_version``, set the patch's fields (version
        + 1), insert ``tasks`` (skipping a (schedule, time) already there) and write the fire
        records, atomically; returns whether this caller won."""
        sql, values = _compare_and_set(patch)
        params = [*values, schedule_id, expected_version]

        def fire(conn: sqlite3.Connection) -> bool:
            if conn.execute(sql, params).rowcount != 1:
                return False
            insert_fired_tasks(conn, tasks)
            upsert_fires(conn, fires)
            return True

        won = await self._database.write(fire)
        if won:
            self._hints.publish(*((SCHEDULES, WORK) if tasks else (SCHEDULES,)))
        return won

    async def count_active_tasks(self, schedule_id: ScheduleId) -> tuple[int, int]:
        """(pending, running) task counts of a schedule, for its overlap policy."""
        found = await self._database.read(lambda conn: conn.execute(
            "SELECT status, count(*) FROM tasks WHERE schedule_id = ? "
            "AND status IN ('pending', 'running') GROUP BY status",
            [schedule_id],
        ).fetchall())
        counts = dict(found)
        return int(counts.get("pending", 0)), int(counts.get("running", 0))
