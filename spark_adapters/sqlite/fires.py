"""``SqliteFireLedger``: the fire ledger on the ``schedule_fires`` table (migration 6).

Rows are keyed (``schedule_id``, ``nominal_time``) and cascade with their schedule. The
scheduler's records are written by ``upsert_fires`` inside the fire's own transaction (see
``SqliteScheduleRepository.fire``).
"""

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from spark_adapters.sqlite.connection import (
    SQLITE_MAX_INTEGER,
    Database,
    placeholders,
    rows,
    scalar,
)
from spark_adapters.sqlite.rows import encode_datetime, struct_from_row, struct_to_row
from spark_core.fires import (
    COUNTED_AS_FIRED,
    COUNTED_AS_SKIPPED,
    FireCounters,
    FireOutcome,
    FireRecord,
)
from spark_core.models import Page, ScheduleId
from spark_core.ports import FireLedger

_COLUMNS = ("schedule_id", "nominal_time", "outcome", "reason", "task_id", "decided_at",
            "delay_seconds")
_INSERT = (f"INSERT INTO schedule_fires ({', '.join(_COLUMNS)}) "  # noqa: S608 - our columns
           f"VALUES ({placeholders(_COLUMNS)}) ")
_REPLACE = ", ".join(f"{name} = excluded.{name}" for name in _COLUMNS[2:])


def _values(record: FireRecord) -> list[Any]:
    row = struct_to_row(record, json_fields=())
    return [row[name] for name in _COLUMNS]


def upsert_fires(conn: sqlite3.Connection, records: Sequence[FireRecord]) -> None:
    """Write ``records`` in the caller's transaction, replacing a record of the same time."""
    if records:
        conn.executemany(
            _INSERT + f"ON CONFLICT (schedule_id, nominal_time) DO UPDATE SET {_REPLACE}",
            [_values(record) for record in records],
        )


def _in_list(name: str, values: Sequence[str]) -> str:
    return f"{name} IN ({placeholders(values)})"


class SqliteFireLedger(FireLedger):
    """The ``FireLedger`` port on the ``schedule_fires`` table."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def record(self, records: Sequence[FireRecord]) -> int:
        """Insert the records whose key is free and whose schedule exists."""
        sql = (f"INSERT INTO schedule_fires ({', '.join(_COLUMNS)}) "  # noqa: S608
               f"SELECT {placeholders(_COLUMNS)} WHERE EXISTS "
               "(SELECT 1 FROM schedules WHERE id = ?) ON CONFLICT DO NOTHING")

        def insert(conn: sqlite3.Connection) -> int:
            return sum(conn.execute(sql, [*_values(r), r.schedule_id]).rowcount
                       for r in records)

        return await self._database.write(insert) if records else 0

    async def list(self, schedule_id: ScheduleId, *, outcome: FireOutcome | None = None,
                   until: datetime | None = None, limit: int,
                   offset: int) -> Page[FireRecord]:
        """A schedule's records, newest nominal time first."""
        where: list[str] = ["schedule_id = ?"]
        params: list[str] = [schedule_id]
        if outcome is not None:
            where.append("outcome = ?")
            params.append(str(outcome))
        if until is not None:
            where.append("nominal_time <= ?")
            params.append(encode_datetime(until))
        clause = " AND ".join(where)

        def read(conn: sqlite3.Connection) -> tuple[list[dict[str, Any]], int]:
            total = int(scalar(conn, f"SELECT count(*) FROM schedule_fires "  # noqa: S608
                                     f"WHERE {clause}", params))
            found = rows(conn, f"SELECT * FROM schedule_fires WHERE {clause} "  # noqa: S608
                               "ORDER BY nominal_time DESC LIMIT ? OFFSET ?",
                         [*params, min(limit, SQLITE_MAX_INTEGER),
                          min(offset, SQLITE_MAX_INTEGER)])
            return found, total

        found, total = await self._database.read(read, snapshot=True)
        return Page(items=[struct_from_row(FireRecord, row, json_fields=()) for row in found],
                    total=total, limit=limit, offset=offset)

    async def counters(self, schedule_ids: Sequence[ScheduleId]
                       ) -> dict[ScheduleId, FireCounters]:
        """Each schedule's counters, in one query over the primary key."""
        if not schedule_ids:
            return {}
        fired = [str(o) for o in COUNTED_AS_FIRED]
        skipped = [str(o) for o in COUNTED_AS_SKIPPED]
        sql = (
            f"SELECT schedule_id, sum({_in_list('outcome', fired)}) AS fired_count, "  # noqa: S608
            "sum(outcome = 'missed') AS missed_count, "
            f"sum({_in_list('outcome', skipped)}) AS skipped_overlap_count, "
            "(SELECT n.outcome FROM schedule_fires AS n WHERE n.schedule_id = f.schedule_id "
            " ORDER BY n.nominal_time DESC LIMIT 1) AS last_outcome "
            f"FROM schedule_fires AS f WHERE {_in_list('schedule_id', schedule_ids)} "
            "GROUP BY schedule_id"
        )
        found = await self._database.read(
            lambda conn: rows(conn, sql, [*fired, *skipped, *schedule_ids]))
        return {ScheduleId(row.pop("schedule_id")): struct_from_row(FireCounters, row,
                                                                    json_fields=())
                for row in found}

    async def prune(self, *, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` records decided before ``before``."""

        def delete(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "DELETE FROM schedule_fires WHERE rowid IN (SELECT rowid FROM schedule_fires "
                "WHERE decided_at < ? LIMIT ?)",
                [encode_datetime(before), min(limit, SQLITE_MAX_INTEGER)],
            ).rowcount

        return await self._database.write(delete)
