"""``SqliteSourceRepository``: the servers workflows are synced from, with their sealed keys."""

import sqlite3
from typing import Any

from spark_adapters.sqlite.connection import (
    Database,
    insert_statement,
    rows,
    scalar,
    select_page,
    set_clause,
    translate_errors,
    where_equal,
)
from spark_adapters.sqlite.rows import encode_columns, struct_from_row, struct_to_row
from spark_core.errors import ConflictError, NotFoundError
from spark_core.models import Page, Source, SourceDeletion, SourceId
from spark_core.ports import SourceFilter, SourcePatch, SourceRepository, patch_fields

_JSON_FIELDS = ("version_info",)


def source_to_row(source: Source) -> dict[str, Any]:
    """The ``sources`` row for ``source`` (without its sealed key, which is not on the Struct)."""
    return struct_to_row(source, json_fields=_JSON_FIELDS)


def source_from_row(row: dict[str, Any]) -> Source:
    """The ``Source`` stored as ``row``; the sealed key column is left behind."""
    return struct_from_row(Source, row, json_fields=_JSON_FIELDS)


def _url_taken(url: str) -> str:
    return f"A source with URL {url} already exists"


def _not_found(source_id: str) -> NotFoundError:
    return NotFoundError(f"Source {source_id} not found")


class SqliteSourceRepository(SourceRepository):
    """The ``SourceRepository`` port on the ``sources`` table."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def add(self, source: Source, *, sealed_key: str | None) -> Source:
        """Insert; ``ConflictError`` if a source with the same URL (or id) exists."""
        sql, params = insert_statement("sources",
                                       {**source_to_row(source), "sealed_key": sealed_key})

        def insert(conn: sqlite3.Connection) -> Source:
            try:
                return source_from_row(rows(conn, sql, params)[0])
            except sqlite3.IntegrityError as exc:
                if "sources.url" in str(exc):
                    raise ConflictError(_url_taken(source.url)) from exc
                raise ConflictError(f"Source {source.id} already exists") from exc

        return await self._database.write(insert)

    async def get(self, source_id: SourceId) -> Source:
        """One source by id."""
        found = await self._database.read(
            lambda conn: rows(conn, "SELECT * FROM sources WHERE id = ?", [source_id]))
        if not found:
            raise _not_found(source_id)
        return source_from_row(found[0])

    async def find_by_url(self, url: str) -> Source | None:
        """The source with this (normalised) URL, if any."""
        found = await self._database.read(
            lambda conn: rows(conn, "SELECT * FROM sources WHERE url = ?", [url]))
        return source_from_row(found[0]) if found else None

    async def list(self, filters: SourceFilter, *, limit: int, offset: int) -> Page[Source]:
        """Sources ordered by creation time."""
        where, params = where_equal(status=filters.status, source_type=filters.source_type)
        page, total = await self._database.read(
            lambda conn: select_page(conn, table="sources", columns="*", where=where,
                                     params=params, order_by="created_at, id",
                                     limit=limit, offset=offset),
            snapshot=True,
        )
        return Page(items=[source_from_row(row) for row in page], total=total, limit=limit,
                    offset=offset)

    async def update(self, source_id: SourceId, patch: SourcePatch) -> Source:
        """Set the patch's fields (a new URL reaches the source's workflows too) and return the
        source as stored; ``ConflictError`` if the new URL belongs to another source."""
        columns = encode_columns(patch_fields(patch), json_fields=_JSON_FIELDS)
        assignments, params = set_clause(columns)
        sql = f"UPDATE sources SET {assignments} WHERE id = ? RETURNING *"  # noqa: S608
        new_url = columns.get("url")

        def update(conn: sqlite3.Connection) -> Source:
            conflict = _url_taken(new_url) if new_url is not None else None
            with translate_errors(conflict=conflict):
                found = rows(conn, sql, [*params, source_id])
            if not found:
                raise _not_found(source_id)
            if new_url is not None:
                conn.execute("UPDATE workflows SET source = ? WHERE source_id = ?",
                             [new_url, source_id])
            return source_from_row(found[0])

        return await self._database.write(update)

    async def get_key(self, source_id: SourceId) -> str | None:
        """The sealed API key of a source (``None`` if it has none)."""
        found = await self._database.read(
            lambda conn: rows(conn, "SELECT sealed_key FROM sources WHERE id = ?", [source_id]))
        if not found:
            raise _not_found(source_id)
        key: str | None = found[0]["sealed_key"]
        return key

    async def delete(self, source_id: SourceId) -> SourceDeletion:
        """Delete a source with its workflows, their schedules and tasks."""
        workflows = "SELECT id FROM workflows WHERE source_id = ?"

        def delete(conn: sqlite3.Connection) -> SourceDeletion:
            if scalar(conn, "SELECT 1 FROM sources WHERE id = ?", [source_id]) is None:
                raise _not_found(source_id)
            schedules, tasks = (
                int(scalar(conn, f"SELECT count(*) FROM {table} "  # noqa: S608
                                 f"WHERE workflow_id IN ({workflows})", [source_id]))
                for table in ("schedules", "tasks")
            )
            workflow_count = int(scalar(conn, f"SELECT count(*) FROM ({workflows})",  # noqa: S608
                                        [source_id]))
            conn.execute("DELETE FROM sources WHERE id = ?", [source_id])
            return SourceDeletion(source_id=source_id, workflows_deleted=workflow_count,
                                  schedules_deleted=schedules, tasks_deleted=tasks)

        return await self._database.write(delete)
