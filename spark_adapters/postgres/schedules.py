"""``PostgresScheduleRepository``: schedules, and the compare-and-set that fires one once."""

from collections.abc import Sequence
from typing import Any

from psycopg import sql

from spark_adapters.postgres.connection import (
    NOW,
    Conn,
    Database,
    fetch_all,
    fetch_one,
    page_bounds,
)
from spark_adapters.postgres.fires import upsert_fires
from spark_adapters.postgres.rows import param, struct_from_row, struct_to_row, utc
from spark_adapters.postgres.statements import (
    assignments,
    equal_filters,
    insert_statement,
    select_page,
)
from spark_adapters.postgres.tasks import insert_tasks
from spark_adapters.postgres.workflows import require_workflow
from spark_core.errors import ConflictError, NotFoundError, StaleWriteError
from spark_core.fires import FireRecord
from spark_core.models import Page, Schedule, ScheduleId, Task
from spark_core.ports import (
    DueSchedules,
    NextDue,
    ScheduleFilter,
    SchedulePatch,
    patch_fields,
)

_NOTIFY = "SELECT spark_notify('schedules', %s)"


async def fetch_schedule(conn: Conn, schedule_id: str) -> Schedule:
    """One schedule by id; ``NotFoundError`` if unknown."""
    row = await fetch_one(conn, "SELECT * FROM schedules WHERE id = %s", [schedule_id])
    if row is None:
        raise NotFoundError(f"Schedule {schedule_id} not found")
    return struct_from_row(Schedule, row)


async def _set_if_version(conn: Conn, schedule_id: str, patch: SchedulePatch,
                          expected_version: int) -> dict[str, Any] | None:
    """The compare-and-set: write the patch and bump the version if it is still expected."""
    fields = {name: param(value) for name, value in patch_fields(patch).items()}
    query = sql.SQL(
        "UPDATE schedules SET {}version = version + 1 "
        "WHERE id = %(id)s AND version = %(expected_version)s RETURNING *"
    ).format(assignments(fields) + sql.SQL(", ") if fields else sql.SQL(""))
    return await fetch_one(conn, query, {**fields, "id": schedule_id,
                                         "expected_version": expected_version})


class PostgresScheduleRepository:
    """The ``ScheduleRepository`` port on the ``schedules`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, schedule: Schedule) -> Schedule:
        """Insert (at version 1); ``NotFoundError`` if its workflow does not exist."""
        row = {**struct_to_row(schedule, json_fields=()), "version": 1}
        async with self._db.transaction() as conn:
            await require_workflow(conn, schedule.workflow_id)
            inserted = await fetch_one(
                conn, insert_statement("schedules", row, "ON CONFLICT DO NOTHING RETURNING *"),
                row)
            if inserted is None:
                raise ConflictError(f"Schedule {schedule.id} already exists"
                                    if schedule.key is None else
                                    f"A schedule with key {schedule.key!r} already exists")
            await conn.execute(_NOTIFY, [schedule.id])
            return struct_from_row(Schedule, inserted)

    async def get(self, schedule_id: ScheduleId) -> Schedule:
        """One schedule by id."""
        async with self._db.connection() as conn:
            return await fetch_schedule(conn, schedule_id)

    async def list(
        self, filters: ScheduleFilter, *, limit: int, offset: int
    ) -> Page[Schedule]:
        """Schedules ordered by creation time."""
        where, params = equal_filters(workflow_id=filters.workflow_id, status=filters.status,
                                      key=filters.key)
        return await select_page(self._db, Schedule, table="schedules", where=where,
                                 params=params, order_by="created_at, id", limit=limit,
                                 offset=offset)

    async def update(
        self, schedule_id: ScheduleId, patch: SchedulePatch, *, expected_version: int
    ) -> Schedule:
        """Set the patch's fields if the stored schedule is still at ``expected_version``."""
        async with self._db.transaction() as conn:
            current = await fetch_schedule(conn, schedule_id)
            if isinstance(patch.workflow_id, str):
                await require_workflow(conn, patch.workflow_id)
            row = await _set_if_version(conn, schedule_id, patch, expected_version)
            if row is None:
                latest = await fetch_schedule(conn, schedule_id)
                raise StaleWriteError(
                    f"Schedule {schedule_id} changed meanwhile (version {latest.version}, "
                    f"expected {expected_version})")
            await conn.execute(_NOTIFY, [current.id])
            return struct_from_row(Schedule, row)

    async def delete(self, schedule_id: ScheduleId) -> None:
        """Delete a schedule; its tasks stay, with ``schedule_id`` kept for history."""
        async with self._db.transaction() as conn:
            deleted = await conn.execute("DELETE FROM schedules WHERE id = %s", [schedule_id])
            if deleted.rowcount == 0:
                raise NotFoundError(f"Schedule {schedule_id} not found")
            await conn.execute(_NOTIFY, [schedule_id])

    async def due(self, *, limit: int) -> DueSchedules:
        """Active schedules whose ``next_run_at`` <= the store's now, earliest first."""
        query = (
            "SELECT clock.db_now, s.* FROM (SELECT " + NOW + " AS db_now) AS clock "  # noqa: S608
            "LEFT JOIN LATERAL (SELECT * FROM schedules WHERE status = 'active' "
            "AND next_run_at <= clock.db_now ORDER BY next_run_at, id LIMIT %(limit)s) AS s "
            "ON true ORDER BY s.next_run_at, s.id"
        )
        async with self._db.connection() as conn:
            found = await fetch_all(conn, query, {"now": self._db.now(),
                                                  **page_bounds(limit, 0)})
        return DueSchedules(
            now=utc(found[0]["db_now"]),
            schedules=[struct_from_row(Schedule, row) for row in found if row["id"]],
        )

    async def next_due(self) -> NextDue:
        """The earliest ``next_run_at`` of any active schedule, with the store's now."""
        query = ("SELECT " + NOW + " AS db_now, "  # noqa: S608 - constants only
                 "(SELECT min(next_run_at) FROM schedules WHERE status = 'active') AS at")
        async with self._db.connection() as conn:
            row = await fetch_one(conn, query, {"now": self._db.now()})
        assert row is not None
        return NextDue(now=utc(row["db_now"]), at=None if row["at"] is None else utc(row["at"]))

    async def fire(
        self, schedule_id: ScheduleId, patch: SchedulePatch, *, expected_version: int,
        tasks: Sequence[Task], fires: Sequence[FireRecord] = (),
    ) -> bool:
        """If still at ``expected_version``: write the patch, insert ``tasks`` (a slot that
        exists already is skipped) and write the fire records; returns whether this caller
        won."""
        async with self._db.transaction() as conn:
            if await _set_if_version(conn, schedule_id, patch, expected_version) is None:
                return False
            await insert_tasks(conn, tasks, skip_taken_slots=True)
            await upsert_fires(conn, fires)
            await conn.execute(_NOTIFY, [schedule_id])
        return True

    async def count_active_tasks(self, schedule_id: ScheduleId) -> tuple[int, int]:
        """(pending, running) task counts of a schedule, for its overlap policy."""
        async with self._db.connection() as conn:
            row = await fetch_one(conn, """
                SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
                       count(*) FILTER (WHERE status = 'running') AS running
                FROM tasks WHERE schedule_id = %s AND status IN ('pending', 'running')
            """, [schedule_id])
        assert row is not None
        return int(row["pending"]), int(row["running"])

