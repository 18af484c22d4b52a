"""``PostgresFireLedger``: the fire ledger on the ``schedule_fires`` table (migration 0003).

Rows are keyed (``schedule_id``, ``nominal_time``) and cascade with their schedule. The
scheduler's records are written by ``upsert_fires`` inside the fire's own transaction (see
``PostgresScheduleRepository.fire``).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import sql

from spark_adapters.postgres.connection import Conn, Database, fetch_all, page_bounds
from spark_adapters.postgres.rows import param, struct_from_row, text_param
from spark_adapters.postgres.statements import select_page
from spark_core.fires import (
    COUNTED_AS_FIRED,
    COUNTED_AS_SKIPPED,
    FireCounters,
    FireOutcome,
    FireRecord,
)
from spark_core.models import Page, ScheduleId
from spark_core.ports import FireLedger

_INSERT = """
    INSERT INTO schedule_fires (schedule_id, nominal_time, outcome, reason, task_id,
                                decided_at, delay_seconds)
    SELECT %(schedule_id)s, %(nominal_time)s, %(outcome)s, %(reason)s, %(task_id)s,
           %(decided_at)s, %(delay_seconds)s
    WHERE EXISTS (SELECT 1 FROM schedules WHERE id = %(schedule_id)s)
"""
_REPLACE = """
    ON CONFLICT (schedule_id, nominal_time) DO UPDATE SET outcome = excluded.outcome,
        reason = excluded.reason, task_id = excluded.task_id,
        decided_at = excluded.decided_at, delay_seconds = excluded.delay_seconds
"""


def _params(record: FireRecord) -> dict[str, Any]:
    return {
        "schedule_id": record.schedule_id,
        "nominal_time": param(record.nominal_time),
        "outcome": str(record.outcome),
        "reason": text_param(record.reason),
        "task_id": record.task_id,
        "decided_at": param(record.decided_at),
        "delay_seconds": record.delay_seconds,
    }


async def upsert_fires(conn: Conn, records: Sequence[FireRecord]) -> None:
    """Write ``records`` in the caller's transaction, replacing a record of the same time."""
    if records:
        async with conn.cursor() as cursor:
            await cursor.executemany(_INSERT + _REPLACE, [_params(r) for r in records])


class PostgresFireLedger(FireLedger):
    """The ``FireLedger`` port on the ``schedule_fires`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, records: Sequence[FireRecord]) -> int:
        """Insert the records whose key is free and whose schedule exists."""
        written = 0
        if not records:
            return 0
        async with self._db.transaction() as conn:
            for record in records:
                cursor = await conn.execute(_INSERT + " ON CONFLICT DO NOTHING",
                                            _params(record))
                written += cursor.rowcount
        return written

    async def list(self, schedule_id: ScheduleId, *, outcome: FireOutcome | None = None,
                   until: datetime | None = None, limit: int,
                   offset: int) -> Page[FireRecord]:
        """A schedule's records, newest nominal time first."""
        where = sql.SQL(
            "WHERE schedule_id = %(schedule_id)s "
            "AND (%(outcome)s::text IS NULL OR outcome = %(outcome)s::text) "
            "AND (%(until)s::timestamptz IS NULL OR nominal_time <= %(until)s::timestamptz)")
        params = {"schedule_id": schedule_id, "outcome": None if outcome is None else
                  str(outcome), "until": None if until is None else param(until)}
        return await select_page(self._db, FireRecord, table="schedule_fires", where=where,
                                 params=params, order_by="nominal_time DESC", limit=limit,
                                 offset=offset, key="schedule_id")

    async def counters(self, schedule_ids: Sequence[ScheduleId]
                       ) -> dict[ScheduleId, FireCounters]:
        """Each schedule's counters, in one query over the primary key."""
        if not schedule_ids:
            return {}
        query = """
            SELECT schedule_id,
                   count(*) FILTER (WHERE outcome = ANY(%(fired)s)) AS fired_count,
                   count(*) FILTER (WHERE outcome = 'missed') AS missed_count,
                   count(*) FILTER (WHERE outcome = ANY(%(skipped)s))
                       AS skipped_overlap_count,
                   (array_agg(outcome ORDER BY nominal_time DESC))[1] AS last_outcome
            FROM schedule_fires WHERE schedule_id = ANY(%(ids)s) GROUP BY schedule_id
        """
        params = {"fired": [str(o) for o in COUNTED_AS_FIRED],
                  "skipped": [str(o) for o in COUNTED_AS_SKIPPED],
                  "ids": list(schedule_ids)}
        async with self._db.connection() as conn:
            found = await fetch_all(conn, query, params)
        return {ScheduleId(row.pop("schedule_id")): struct_from_row(FireCounters, row)
                for row in found}

    async def prune(self, *, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` records decided before ``before``."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM schedule_fires WHERE ctid = ANY(ARRAY(SELECT ctid FROM "
                "schedule_fires WHERE decided_at < %(before)s LIMIT %(limit)s))",
                {"before": param(before), **page_bounds(limit, 0)})
            return cursor.rowcount
