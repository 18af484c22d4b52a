"""``PostgresWorkflowRepository``: the local catalogue, listed with run statistics in one query."""

from typing import Any

from psycopg import sql

from spark_adapters.postgres.connection import Conn, Database, fetch_all, fetch_one, page_bounds
from spark_adapters.postgres.rows import column_names, param, struct_from_row, struct_to_row
from spark_adapters.postgres.statements import assignments, insert_statement, remembered
from spark_adapters.read_memo import ReadMemo, RunTargets
from spark_core.errors import NotFoundError
from spark_core.models import (
    Page,
    Source,
    Workflow,
    WorkflowDeletion,
    WorkflowId,
    WorkflowSummary,
)
from spark_core.ports import RunTarget, WorkflowFilter, WorkflowPatch, patch_fields

_JSON_FIELDS = ("data", "tags")

# The newest task is one index search per workflow on the page, and the counts are kept by
# triggers in workflow_stat_stripes (a few per workflow, summed: migration 12), so a page
# costs the same however many tasks exist. Not through the workflow_stats view (kept for the
# previous version's nodes): PostgreSQL sums every workflow's stripes for a join on a grouped
# view (26 ms against 1.8 ms for a page of 100 of 5,000 workflows with 16 stripes each).
_SUMMARY_COLUMNS = """
    w.*,
    coalesce(
        (SELECT upper(t.status) FROM tasks t WHERE t.workflow_id = w.id
         ORDER BY t.created_at DESC, t.id DESC LIMIT 1),
        'NEW'
    ) AS latest_run,
    coalesce(stats.task_count, 0) AS task_count,
    coalesce(stats.failed_task_count, 0) AS failed_task_count
"""

def workflow_to_row(workflow: Workflow) -> dict[str, Any]:
    """The ``workflows`` row for ``workflow``, with its case-folded name for searching."""
    row = struct_to_row(workflow, json_fields=_JSON_FIELDS)
    row["name_folded"] = workflow.name.casefold()
    return row


async def fetch_workflow(conn: Conn, workflow_id: str) -> Workflow:
    """One workflow by id; ``NotFoundError`` if unknown."""
    row = await fetch_one(conn, "SELECT * FROM workflows WHERE id = %s", [workflow_id])
    if row is None:
        raise NotFoundError(f"Workflow {workflow_id} not found")
    return struct_from_row(Workflow, row)


async def require_workflow(conn: Conn, workflow_id: str) -> None:
    """Raise ``NotFoundError`` unless the workflow exists."""
    if await fetch_one(conn, "SELECT 1 FROM workflows WHERE id = %s", [workflow_id]) is None:
        raise NotFoundError(f"Workflow {workflow_id} not found")


def _filter_clause(filters: WorkflowFilter) -> tuple[sql.Composable, dict[str, Any]]:
    conditions: list[sql.Composable] = []
    params: dict[str, Any] = {}
    for column, value in (("source_id", filters.source_id), ("source", filters.source_url),
                          ("flow_type", filters.flow_type)):
        if value is not None:
            conditions.append(sql.SQL("w.{} = {}").format(sql.Identifier(column),
                                                         sql.Placeholder(column)))
            params[column] = value
    if filters.q is not None:
        # strpos, not LIKE: the text is matched as it is, wildcards included.
        conditions.append(sql.SQL("strpos(w.name_folded, %(q)s) > 0"))
        params["q"] = filters.q.casefold()
    if not conditions:
        return sql.SQL(""), params
    return sql.SQL("WHERE ") + sql.SQL(" AND ").join(conditions), params


# The run path's statements are rendered to text once: psycopg renders a composed statement
# (quoting each identifier) on every execution, ~15 us for these, on every run.
# The source's columns come back prefixed, so they cannot collide with the workflow's.
_WITHOUT_DEFINITION = sql.SQL(", ").join(
    sql.Identifier(name) for name in column_names(Workflow) if name != "data")
"""Every column of a workflow but its flow definition (``WorkflowRepository.find``)."""
_FIND = sql.SQL("""
    SELECT {columns} FROM workflows WHERE id = %(key)s
    UNION ALL
    (SELECT {columns} FROM workflows WHERE remote_flow_id = %(key)s
     ORDER BY created_at, id LIMIT 1)
    LIMIT 1
""")
_FIND_WHOLE = _FIND.format(columns=sql.SQL("*")).as_string()
_FIND_WITHOUT_DEFINITION = _FIND.format(columns=_WITHOUT_DEFINITION).as_string()
_RUN_TARGET = sql.SQL("SELECT {}, {}, (SELECT version FROM catalogue_version) AS catalogue "
                      "FROM ({}) w JOIN sources s ON s.id = w.source_id").format(
    sql.SQL(", ").join(sql.SQL("w.{}").format(sql.Identifier(name))
                       for name in column_names(Workflow) if name != "data"),
    sql.SQL(", ").join(
        sql.SQL("s.{} AS {}").format(sql.Identifier(name), sql.Identifier(f"source__{name}"))
        for name in (*column_names(Source), "sealed_key")),
    _FIND.format(columns=_WITHOUT_DEFINITION)).as_string()


class PostgresWorkflowRepository:
    """The ``WorkflowRepository`` port on the ``workflows`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pages: ReadMemo[Page[WorkflowSummary]] = ReadMemo()
        self._targets = RunTargets()

    async def upsert(self, workflow: Workflow) -> Workflow:
        """Insert, or update in place the one with the same (source_id, remote_flow_id)."""
        row = workflow_to_row(workflow)
        updated = sql.SQL(", ").join(
            sql.SQL("{0} = excluded.{0}").format(sql.Identifier(name))
            # Local settings are not part of the remote flow: kept.
            for name in row
            if name not in ("id", "created_at", "max_concurrency", "webhook_url")
        )
        query = insert_statement("workflows", row) + sql.SQL(
            " ON CONFLICT (source_id, remote_flow_id) DO UPDATE SET {} RETURNING *"
        ).format(updated)
        async with self._db.transaction() as conn:
            if await fetch_one(conn, "SELECT 1 FROM sources WHERE id = %s",
                               [workflow.source_id]) is None:
                raise NotFoundError(f"Source {workflow.source_id} not found")
            stored = await fetch_one(conn, query, row)
            assert stored is not None
            return struct_from_row(Workflow, stored)

    async def get(self, workflow_id: WorkflowId) -> Workflow:
        """One workflow by local id."""
        async with self._db.connection() as conn:
            return await fetch_workflow(conn, workflow_id)

    async def update(self, workflow_id: WorkflowId, patch: WorkflowPatch) -> Workflow:
        """Store the local settings the patch sets, with its ``updated_at``."""
        fields = {name: param(value) for name, value in patch_fields(patch).items()}
        query = sql.SQL("UPDATE workflows SET {} WHERE id = %(id)s RETURNING *").format(
            assignments(fields))
        async with self._db.connection() as conn:
            row = await fetch_one(conn, query, {**fields, "id": workflow_id})
        if row is None:
            raise NotFoundError(f"Workflow {workflow_id} not found")
        return struct_from_row(Workflow, row)

    async def run_target(self, id_or_remote_id: str, *,
                         remembered: bool = False) -> RunTarget:
        """The workflow by local or remote id (as ``find``, without its definition), its
        source and the source's sealed key, with the catalogue's version, in one round trip;
        ``remembered``, the target this node read last for that id, if any, without one (the
        run's insert checks its version: ``PostgresTaskQueue.add_claimed``)."""
        if remembered and (kept := self._targets.get(id_or_remote_id)) is not None:
            return kept
        async with self._db.connection() as conn:
            row = await fetch_one(conn, _RUN_TARGET, {"key": id_or_remote_id})
        if row is None:
            raise NotFoundError(f"Workflow {id_or_remote_id} not found")
        source = {name.removeprefix("source__"): value for name, value in row.items()
                  if name.startswith("source__")}
        target = RunTarget(workflow=struct_from_row(Workflow, row),
                           source=struct_from_row(Source, source),
                           sealed_key=source["sealed_key"], catalogue=row["catalogue"])
        self._targets.keep(id_or_remote_id, target)
        return target

    async def find(self, id_or_remote_id: str, *, definition: bool = True) -> Workflow | None:
        """A workflow by local id, else by remote flow id (first by creation time), without
        its ``data`` unless ``definition``."""
        query = _FIND_WHOLE if definition else _FIND_WITHOUT_DEFINITION
        async with self._db.connection() as conn:
            row = await fetch_one(conn, query, {"key": id_or_remote_id})
        return None if row is None else struct_from_row(Workflow, row)

    async def list(
        self, filters: WorkflowFilter, *, limit: int, offset: int
    ) -> Page[WorkflowSummary]:
        """Workflows by name with ``latest_run`` and task counts, computed in one query; the
        same page again while nothing was committed (``remembered``)."""
        return await remembered(self._db, self._pages, (filters, limit, offset),
                                lambda conn: self._read_page(conn, filters, limit, offset))

    async def _read_page(self, conn: Conn, filters: WorkflowFilter, limit: int,
                         offset: int) -> Page[WorkflowSummary]:
        where, params = _filter_clause(filters)
        query = sql.SQL(
            "WITH page AS (SELECT w.id FROM workflows w {where} ORDER BY w.name, w.id "
            "LIMIT %(limit)s OFFSET %(offset)s), "
            "total AS (SELECT count(*) AS n FROM workflows w {where}) "
            "SELECT total.n AS total_count, summary.* FROM total LEFT JOIN LATERAL ("
            "SELECT {columns} FROM page JOIN workflows w ON w.id = page.id "
            "LEFT JOIN LATERAL (SELECT sum(s.task_count) AS task_count, "
            "sum(s.failed_task_count) AS failed_task_count FROM workflow_stat_stripes s "
            "WHERE s.workflow_id = w.id) AS stats ON true"
            ") AS summary ON true ORDER BY summary.name, summary.id"
        ).format(where=where, columns=sql.SQL(_SUMMARY_COLUMNS))
        found = await fetch_all(conn, query, {**params, **page_bounds(limit, offset)})
        items = [
            WorkflowSummary(workflow=struct_from_row(Workflow, row),
                            latest_run=row["latest_run"], task_count=int(row["task_count"]),
                            failed_task_count=int(row["failed_task_count"]))
            for row in found if row["id"] is not None
        ]
        return Page(items=items, total=int(found[0]["total_count"]), limit=limit,
                    offset=offset)

    async def delete(self, workflow_id: WorkflowId) -> WorkflowDeletion:
        """Delete a workflow with its schedules and tasks."""
        async with self._db.transaction() as conn:
            counts = await fetch_one(conn, """
                SELECT (SELECT count(*) FROM schedules WHERE workflow_id = %(id)s) AS schedules,
                       (SELECT count(*) FROM tasks WHERE workflow_id = %(id)s) AS tasks
            """, {"id": workflow_id})
            deleted = await conn.execute("DELETE FROM workflows WHERE id = %s", [workflow_id])
            if deleted.rowcount == 0 or counts is None:
                raise NotFoundError(f"Workflow {workflow_id} not found")
        return WorkflowDeletion(workflow_id=workflow_id,
                                schedules_deleted=int(counts["schedules"]),
                                tasks_deleted=int(counts["tasks"]))
