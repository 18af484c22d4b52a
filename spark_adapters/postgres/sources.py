"""``PostgresSourceRepository``: the servers workflows are synced from, with sealed keys."""

from psycopg import sql

from spark_adapters.postgres.connection import Conn, Database, fetch_one
from spark_adapters.postgres.rows import json_param, param, struct_from_row, struct_to_row
from spark_adapters.postgres.statements import (
    assignments,
    equal_filters,
    insert_statement,
    select_page,
)
from spark_core.errors import ConflictError, NotFoundError
from spark_core.models import Page, Source, SourceDeletion, SourceId
from spark_core.ports import SourceFilter, SourcePatch, patch_fields

_JSON_FIELDS = ("version_info",)


async def fetch_source(conn: Conn, source_id: str) -> Source:
    """One source by id; ``NotFoundError`` if unknown."""
    row = await fetch_one(conn, "SELECT * FROM sources WHERE id = %s", [source_id])
    if row is None:
        raise NotFoundError(f"Source {source_id} not found")
    return struct_from_row(Source, row)


async def _check_url_free(conn: Conn, url: str, source_id: str) -> None:
    row = await fetch_one(conn, "SELECT 1 FROM sources WHERE url = %s AND id <> %s",
                          [url, source_id])
    if row is not None:
        raise ConflictError(f"A source with URL {url} already exists")


class PostgresSourceRepository:
    """The ``SourceRepository`` port on the ``sources`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, source: Source, *, sealed_key: str | None) -> Source:
        """Insert; ``ConflictError`` if a source with the same URL (or id) exists."""
        row = {**struct_to_row(source, json_fields=_JSON_FIELDS), "sealed_key": sealed_key}
        async with self._db.transaction() as conn:
            await _check_url_free(conn, source.url, source.id)
            inserted = await fetch_one(
                conn, insert_statement("sources", row, "ON CONFLICT DO NOTHING RETURNING *"),
                row)
            if inserted is None:
                raise ConflictError(f"Source {source.id} already exists")
            return struct_from_row(Source, inserted)

    async def get(self, source_id: SourceId) -> Source:
        """One source by id."""
        async with self._db.connection() as conn:
            return await fetch_source(conn, source_id)

    async def find_by_url(self, url: str) -> Source | None:
        """The source with this (normalised) URL, if any."""
        async with self._db.connection() as conn:
            row = await fetch_one(conn, "SELECT * FROM sources WHERE url = %s", [url])
        return None if row is None else struct_from_row(Source, row)

    async def list(self, filters: SourceFilter, *, limit: int, offset: int) -> Page[Source]:
        """Sources ordered by creation time."""
        where, params = equal_filters(status=filters.status, source_type=filters.source_type)
        return await select_page(self._db, Source, table="sources", where=where, params=params,
                                 order_by="created_at, id", limit=limit, offset=offset)

    async def update(self, source_id: SourceId, patch: SourcePatch) -> Source:
        """Set the patch's fields; a new URL is written to the source's workflows too."""
        fields = {name: param(value) for name, value in patch_fields(patch).items()}
        if "version_info" in fields:
            fields["version_info"] = json_param(fields["version_info"])
        async with self._db.transaction() as conn:
            await fetch_source(conn, source_id)
            if "url" in fields:
                await _check_url_free(conn, fields["url"], source_id)
                await conn.execute("UPDATE workflows SET source = %s WHERE source_id = %s",
                                   [fields["url"], source_id])
            query = sql.SQL("UPDATE sources SET {} WHERE id = %(id)s RETURNING *").format(
                assignments(fields))
            row = await fetch_one(conn, query, {**fields, "id": source_id})
            assert row is not None
            return struct_from_row(Source, row)

    async def get_key(self, source_id: SourceId) -> str | None:
        """The sealed API key of a source (``None`` if it has none)."""
        async with self._db.connection() as conn:
            row = await fetch_one(conn, "SELECT sealed_key FROM sources WHERE id = %s",
                                  [source_id])
        if row is None:
            raise NotFoundError(f"Source {source_id} not found")
        key: str | None = row["sealed_key"]
        return key

    async def delete(self, source_id: SourceId) -> SourceDeletion:
        """Delete a source with its workflows, their schedules and tasks."""
        async with self._db.transaction() as conn:
            counts = await fetch_one(conn, """
                SELECT
                    (SELECT count(*) FROM workflows WHERE source_id = %(id)s) AS workflows,
                    (SELECT count(*) FROM schedules JOIN workflows w ON w.id = workflow_id
                      WHERE w.source_id = %(id)s) AS schedules,
                    (SELECT count(*) FROM tasks JOIN workflows w ON w.id = workflow_id
                      WHERE w.source_id = %(id)s) AS tasks
            """, {"id": source_id})
            deleted = await conn.execute("DELETE FROM sources WHERE id = %s", [source_id])
            if deleted.rowcount == 0 or counts is None:
                raise NotFoundError(f"Source {source_id} not found")
        return SourceDeletion(source_id=source_id, workflows_deleted=int(counts["workflows"]),
                              schedules_deleted=int(counts["schedules"]),
                              tasks_deleted=int(counts["tasks"]))
