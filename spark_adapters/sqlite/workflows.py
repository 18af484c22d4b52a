"""``SqliteWorkflowRepository``: the local catalogue, listed with run statistics in one query."""

import sqlite3
from typing import Any

from spark_adapters.read_memo import ReadMemo, RunTargets
from spark_adapters.sqlite.connection import (
    Database,
    rows,
    scalar,
    select_page,
    set_clause,
    translate_errors,
)
from spark_adapters.sqlite.rows import (
    column_names,
    encode_columns,
    struct_from_row,
    struct_to_row,
)
from spark_adapters.sqlite.sources import source_from_row
from spark_core.errors import NotFoundError
from spark_core.models import Page, Workflow, WorkflowDeletion, WorkflowId, WorkflowSummary
from spark_core.ports import (
    RunTarget,
    WorkflowFilter,
    WorkflowPatch,
    WorkflowRepository,
    patch_fields,
)

_JSON_FIELDS = ("data", "tags")

# The newest task is one index search per workflow on the page, and the counts are kept by
# triggers in workflow_stats (migration 3), so a page costs the same however many tasks exist.
_SUMMARY_COLUMNS = """
    workflows.*,
    coalesce(
        (SELECT upper(tasks.status) FROM tasks WHERE tasks.workflow_id = workflows.id
         ORDER BY tasks.created_at DESC, tasks.id DESC LIMIT 1),
        'NEW'
    ) AS latest_run,
    coalesce(
        (SELECT task_count FROM workflow_stats WHERE workflow_id = workflows.id), 0
    ) AS task_count,
    coalesce(
        (SELECT failed_task_count FROM workflow_stats WHERE workflow_id = workflows.id), 0
    ) AS failed_task_count
"""

_COLUMNS = column_names(Workflow)
_WITHOUT_DEFINITION = ", ".join(name for name in _COLUMNS if name != "data")
"""Every column of a workflow but its flow definition (``WorkflowRepository.find``)."""
# One statement inserts or updates in place; the stored row keeps its id, created_at and its
# local settings (max_concurrency, webhook_url: not part of the remote flow).
_UPSERT = (
    f"INSERT INTO workflows ({', '.join(_COLUMNS)}) "  # noqa: S608 - our column names only
    f"VALUES ({', '.join('?' for _ in _COLUMNS)}) "
    "ON CONFLICT (source_id, remote_flow_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _COLUMNS
                if name not in ("id", "created_at", "source_id", "remote_flow_id",
                                "max_concurrency", "webhook_url"))
    + " RETURNING *"
)


def workflow_to_row(workflow: Workflow) -> dict[str, Any]:
    """The ``workflows`` row for ``workflow``."""
    return struct_to_row(workflow, json_fields=_JSON_FIELDS)


def workflow_from_row(row: dict[str, Any]) -> Workflow:
    """The ``Workflow`` stored as ``row``; extra columns (list statistics) are ignored."""
    return struct_from_row(Workflow, row, json_fields=_JSON_FIELDS)


def _filter_clause(filters: WorkflowFilter) -> tuple[str, list[Any]]:
    conditions: list[str] = []
    params: list[Any] = []
    for column, value in (("source_id", filters.source_id), ("source", filters.source_url),
                          ("flow_type", filters.flow_type)):
        if value is not None:
            conditions.append(f"workflows.{column} = ?")
            params.append(value)
    if filters.q is not None:
        conditions.append("instr(spark_casefold(workflows.name), ?) > 0")
        params.append(filters.q.casefold())
    return ("WHERE " + " AND ".join(conditions) if conditions else ""), params


def _not_found(workflow_id: str) -> NotFoundError:
    return NotFoundError(f"Workflow {workflow_id} not found")


def catalogue_version(conn: sqlite3.Connection) -> int:
    """The number every change to a workflow or a source raises (migration 14)."""
    return int(scalar(conn, "SELECT version FROM catalogue_version"))


def _found(conn: sqlite3.Connection, columns: str, id_or_remote_id: str) -> list[dict[str, Any]]:
    """``columns`` of the workflow with that local id, else of the oldest with that remote
    flow id (``find``): the second read only when the first finds nothing."""
    return (rows(conn, f"SELECT {columns} FROM workflows WHERE id = ?",  # noqa: S608
                 [id_or_remote_id])
            or rows(conn, f"SELECT {columns} FROM workflows WHERE remote_flow_id = ? "  # noqa: S608
                          "ORDER BY created_at, id LIMIT 1", [id_or_remote_id]))


class SqliteWorkflowRepository(WorkflowRepository):
    """The ``WorkflowRepository`` port on the ``workflows`` table."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._pages: ReadMemo[Page[WorkflowSummary]] = ReadMemo()
        self._targets = RunTargets()

    async def upsert(self, workflow: Workflow) -> Workflow:
        """Insert, or update in place the one with the same (source_id, remote_flow_id);
        ``NotFoundError`` if the source does not exist."""
        row = workflow_to_row(workflow)
        params = [row[name] for name in _COLUMNS]

        def upsert(conn: sqlite3.Connection) -> Workflow:
            with translate_errors(missing=f"Source {workflow.source_id} not found",
                                  conflict=f"Workflow {workflow.id} already exists"):
                return workflow_from_row(rows(conn, _UPSERT, params)[0])

        return await self._database.write(upsert)

    async def get(self, workflow_id: WorkflowId) -> Workflow:
        """One workflow by local id."""
        found = await self._database.read(
            lambda conn: rows(conn, "SELECT * FROM workflows WHERE id = ?", [workflow_id]))
        if not found:
            raise _not_found(workflow_id)
        return workflow_from_row(found[0])

    async def update(self, workflow_id: WorkflowId, patch: WorkflowPatch) -> Workflow:
        """Store the local settings the patch sets, with its ``updated_at``."""
        assignments, params = set_clause(encode_columns(patch_fields(patch), json_fields=()))
        statement = f"UPDATE workflows SET {assignments} WHERE id = ? RETURNING *"  # noqa: S608
        found = await self._database.write(
            lambda conn: rows(conn, statement, [*params, workflow_id]))
        if not found:
            raise _not_found(workflow_id)
        return workflow_from_row(found[0])

    async def find(self, id_or_remote_id: str, *, definition: bool = True) -> Workflow | None:
        """A workflow by local id, else by remote flow id (first by creation time), without
        its ``data`` unless ``definition``. Two reads outside a transaction: the second only
        when the first finds nothing (what every run by local id saves), and a workflow added
        between them is found at the next ask."""
        columns = "*" if definition else _WITHOUT_DEFINITION
        found = await self._database.read(lambda conn: _found(conn, columns, id_or_remote_id))
        return workflow_from_row(found[0]) if found else None

    async def run_target(self, id_or_remote_id: str, *,
                         remembered: bool = False) -> RunTarget:
        """The workflow by local or remote id (as ``find``, without its definition), its
        source and the source's sealed key, from one snapshot.

        The targets read are kept, and answered again while the catalogue's version (raised
        by triggers on every change to a workflow or a source, by any process) is the one
        they were read at: one small read instead of two and their decoding; ``remembered``,
        without that read (``add_claimed`` makes it)."""
        kept = self._targets.get(id_or_remote_id)
        if kept is not None and (remembered or await self._database.read(
                catalogue_version) == kept.catalogue):
            return kept

        def read(conn: sqlite3.Connection) -> tuple[int, list[dict[str, Any]],
                                                    list[dict[str, Any]]]:
            version = catalogue_version(conn)
            workflow = _found(conn, _WITHOUT_DEFINITION, id_or_remote_id)
            source = rows(conn, "SELECT * FROM sources WHERE id = ?",
                          [workflow[0]["source_id"]]) if workflow else []
            return version, workflow, source

        version, workflow, source = await self._database.read(read, snapshot=True)
        if not workflow or not source:
            raise NotFoundError(f"Workflow {id_or_remote_id} not found")
        target = RunTarget(workflow=workflow_from_row(workflow[0]),
                           source=source_from_row(source[0]),
                           sealed_key=source[0]["sealed_key"], catalogue=version)
        self._targets.keep(id_or_remote_id, target)
        return target

    async def list(self, filters: WorkflowFilter, *, limit: int,
                   offset: int) -> Page[WorkflowSummary]:
        """Workflows by name with ``latest_run`` and task counts, computed in one query; the
        same page again while nothing was written to the database (``ReadMemo``)."""
        key, token = (filters, limit, offset), self._database.change_token()
        if token is not None and (kept := self._pages.get(key, token)) is not None:
            return kept
        where, params = _filter_clause(filters)
        found, total = await self._database.read(
            lambda conn: select_page(conn, table="workflows", columns=_SUMMARY_COLUMNS,
                                     where=where, params=params, order_by="name, id",
                                     limit=limit, offset=offset),
            snapshot=True,
        )
        items = [
            WorkflowSummary(workflow=workflow_from_row(row), latest_run=row["latest_run"],
                            task_count=row["task_count"],
                            failed_task_count=row["failed_task_count"])
            for row in found
        ]
        page = Page(items=items, total=total, limit=limit, offset=offset)
        if token is not None:
            self._pages.put(key, token, page)
        return page

    async def delete(self, workflow_id: WorkflowId) -> WorkflowDeletion:
        """Delete a workflow with its schedules and tasks."""

        def delete(conn: sqlite3.Connection) -> WorkflowDeletion:
            if scalar(conn, "SELECT 1 FROM workflows WHERE id = ?", [workflow_id]) is None:
                raise _not_found(workflow_id)
            schedules, tasks = (
                int(scalar(conn, f"SELECT count(*) FROM {table} "  # noqa: S608
                                 "WHERE workflow_id = ?", [workflow_id]))
                for table in ("schedules", "tasks")
            )
            conn.execute("DELETE FROM workflows WHERE id = ?", [workflow_id])
            return WorkflowDeletion(workflow_id=workflow_id, schedules_deleted=schedules,
                                    tasks_deleted=tasks)

        return await self._database.write(delete)
