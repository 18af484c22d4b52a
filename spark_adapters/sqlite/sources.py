"""The ``sources`` table: the servers workflows are synced from, with their sealed API keys."""

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
from spark_adapters.sqlite.rows import struct_from_row, struct_to_row
from spark_core.errors import ConflictError, NotFoundError
from spark_core.models import Page, Source, SourceDeletion, SourceId
from spark_core.ports import SourceFilter

_JSON_FIELDS = ("version_info",)


def source_to_row(source: Source) -> dict[str, Any]:
    """The ``sources`` row for ``source`` (without its sealed key, which is not on the Struct)."""
    return struct_to_row(source, json_fields=_JSON_FIELDS)


def source_from_row(row: dict[str, Any]) -> Source:
    """The ``Source`` stored as ``row``; the sealed key column is left behind."""
    return struct_from_row(Source, row, json_fields=_JSON_FIELDS)


def fetch_source(db: sqlite_utils.Database, source_id: str) -> Source:
    """One source by id inside an open transaction; ``NotFoundError`` if unknown."""
    found = rows(db, "SELECT * FROM sources WHERE id = ?", [source_id])
    if not found:
        raise NotFoundError(f"Source {source_id} not found")
    return source_from_row(found[0])


def _check_url_free(db: sqlite_utils.Database, url: str, source_id: str) -> None:
    owner = scalar(db, "SELECT id FROM sources WHERE url = ? AND id != ?", [url, source_id])
    if owner is not None:
        raise ConflictError(f"A source with URL {url} already exists")


class SourceTable:
    """The source methods of ``SqliteStore``."""

    _connection: Connection

    def add_source(self, source: Source, *, sealed_key: str | None) -> Source:
        """Insert; ``ConflictError`` if a source with the same URL exists."""
        with self._connection.write() as db:
            _check_url_free(db, source.url, source.id)
            if scalar(db, "SELECT 1 FROM sources WHERE id = ?", [source.id]):
                raise ConflictError(f"Source {source.id} already exists")
            db.table("sources").insert({**source_to_row(source), "sealed_key": sealed_key})
            return fetch_source(db, source.id)

    def get_source(self, source_id: SourceId) -> Source:
        """One source by id."""
        with self._connection.read() as db:
            return fetch_source(db, source_id)

    def find_source_by_url(self, url: str) -> Source | None:
        """The source with this (normalised) URL, if any."""
        with self._connection.read() as db:
            found = rows(db, "SELECT * FROM sources WHERE url = ?", [url])
            return source_from_row(found[0]) if found else None

    def list_sources(self, filters: SourceFilter, *, limit: int, offset: int) -> Page[Source]:
        """Sources ordered by creation time."""
        where, params = where_equal(status=filters.status, source_type=filters.source_type)
        with self._connection.read() as db:
            page, total = select_page(db, table="sources", columns="*", where=where,
                                      params=params, order_by="created_at, id",
                                      limit=limit, offset=offset)
        return Page(items=[source_from_row(row) for row in page], total=total, limit=limit,
                    offset=offset)

    def update_source(self, source: Source, *, sealed_key: str | None = None,
                      replace_key: bool = False) -> Source:
        """Overwrite a source; its sealed key changes only when ``replace_key`` is true."""
        row = source_to_row(source)
        if replace_key:
            row["sealed_key"] = sealed_key
        with self._connection.write() as db:
            fetch_source(db, source.id)
            _check_url_free(db, source.url, source.id)
            db.execute(*update_statement("sources", row))
            return fetch_source(db, source.id)

    def get_source_key(self, source_id: SourceId) -> str | None:
        """The sealed API key of a source (``None`` if it has none)."""
        with self._connection.read() as db:
            found = rows(db, "SELECT sealed_key FROM sources WHERE id = ?", [source_id])
        if not found:
            raise NotFoundError(f"Source {source_id} not found")
        key: str | None = found[0]["sealed_key"]
        return key

    def delete_source(self, source_id: SourceId) -> SourceDeletion:
        """Delete a source with its workflows, their schedules and tasks."""
        workflows = "SELECT id FROM workflows WHERE source_id = ?"
        with self._connection.write() as db:
            fetch_source(db, source_id)
            counts = {
                table: int(scalar(db, f"SELECT count(*) FROM {table} "  # noqa: S608
                                      f"WHERE workflow_id IN ({workflows})", [source_id]))
                for table in ("schedules", "tasks")
            }
            workflow_count = int(scalar(db, f"SELECT count(*) FROM ({workflows})",  # noqa: S608
                                        [source_id]))
            db.execute("DELETE FROM sources WHERE id = ?", [source_id])
        return SourceDeletion(source_id=source_id, workflows_deleted=workflow_count,
                              schedules_deleted=counts["schedules"],
                              tasks_deleted=counts["tasks"])

