"""The ``workflows`` table: the local catalogue, listed with run statistics in one query."""

from typing import Any

import sqlite_utils

from spark_adapters.sqlite.connection import (
    Connection,
    rows,
    scalar,
    select_page,
    update_statement,
)
from spark_adapters.sqlite.rows import struct_from_row, struct_to_row
from spark_adapters.sqlite.sources import fetch_source
from spark_core.errors import NotFoundError
from spark_core.models import Page, Workflow, WorkflowDeletion, WorkflowId, WorkflowSummary
from spark_core.ports import WorkflowFilter

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


def workflow_to_row(workflow: Workflow) -> dict[str, Any]:
    """The ``workflows`` row for ``workflow``."""
    return struct_to_row(workflow, json_fields=_JSON_FIELDS)


def workflow_from_row(row: dict[str, Any]) -> Workflow:
    """The ``Workflow`` stored as ``row``; extra columns (list statistics) are ignored."""
    return struct_from_row(Workflow, row, json_fields=_JSON_FIELDS)


def fetch_workflow(db: sqlite_utils.Database, workflow_id: str) -> Workflow:
    """One workflow by id inside an open transaction; ``NotFoundError`` if unknown."""
    found = rows(db, "SELECT * FROM workflows WHERE id = ?", [workflow_id])
    if not found:
        raise NotFoundError(f"Workflow {workflow_id} not found")
    return workflow_from_row(found[0])


def require_workflow(db: sqlite_utils.Database, workflow_id: str) -> None:
    """Raise ``NotFoundError`` unless the workflow exists."""
    if scalar(db, "SELECT 1 FROM workflows WHERE id = ?", [workflow_id]) is None:
        raise NotFoundError(f"Workflow {workflow_id} not found")


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


class WorkflowTable:
    """The workflow methods of ``SqliteStore``."""

    _connection: Connection

    def upsert_workflow(self, workflow: Workflow) -> Workflow:
        """Insert, or update in place the one with the same (source_id, remote_flow_id)."""
        row = workflow_to_row(workflow)
        with self._connection.write() as db:
            fetch_source(db, workflow.source_id)
            existing = rows(
                db,
                "SELECT id, created_at FROM workflows WHERE source_id = ? AND remote_flow_id = ?",
                [workflow.source_id, workflow.remote_flow_id],
            )
            if existing:
                row.update(existing[0])
                db.execute(*update_statement("workflows", row))
            else:
                db.table("workflows").insert(row)
            return fetch_workflow(db, row["id"])

    def get_workflow(self, workflow_id: WorkflowId) -> Workflow:
        """One workflow by local id."""
        with self._connection.read() as db:
            return fetch_workflow(db, workflow_id)

    def find_workflow(self, id_or_remote_id: str) -> Workflow | None:
        """A workflow by local id, else by remote flow id (first by creation time)."""
        with self._connection.read() as db:
            found = rows(db, "SELECT * FROM workflows WHERE id = ?", [id_or_remote_id]) or rows(
                db,
                "SELECT * FROM workflows WHERE remote_flow_id = ? "
                "ORDER BY created_at, id LIMIT 1",
                [id_or_remote_id],
            )
        return workflow_from_row(found[0]) if found else None

    def list_workflows(self, filters: WorkflowFilter, *, limit: int,
                       offset: int) -> Page[WorkflowSummary]:
        """Workflows by name with ``latest_run`` and task counts, computed in one query."""
        where, params = _filter_clause(filters)
        with self._connection.read() as db:
            page, total = select_page(db, table="workflows", columns=_SUMMARY_COLUMNS,
                                      where=where, params=params, order_by="name, id",
                                      limit=limit, offset=offset)
        items = [
            WorkflowSummary(workflow=workflow_from_row(row), latest_run=row["latest_run"],
                            task_count=row["task_count"],
                            failed_task_count=row["failed_task_count"])
            for row in page
        ]
        return Page(items=items, total=total, limit=limit, offset=offset)

    def delete_workflow(self, workflow_id: WorkflowId) -> WorkflowDeletion:
        """Delete a workflow with its schedules and tasks."""
        with self._connection.write() as db:
            require_workflow(db, workflow_id)
            schedules, tasks = (
                int(scalar(db, f"SELECT count(*) FROM {table} WHERE workflow_id = ?",  # noqa: S608
                           [workflow_id]))
                for table in ("schedules", "tasks")
            )
            db.execute("DELETE FROM workflows WHERE id = ?", [workflow_id])
        return WorkflowDeletion(workflow_id=workflow_id, schedules_deleted=schedules,
                                tasks_deleted=tasks)
