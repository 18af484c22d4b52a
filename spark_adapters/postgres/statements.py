"""Small builders of SQL statements from our own column names, values always as parameters."""

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, LiteralString, TypeVar

import msgspec
from psycopg import sql

from spark_adapters.postgres.connection import Conn, Database, fetch_all, page_bounds
from spark_adapters.postgres.rows import param, struct_from_row
from spark_adapters.read_memo import ReadMemo
from spark_core.models import Page

S = TypeVar("S", bound=msgspec.Struct)
P = TypeVar("P")
ALL_COLUMNS = sql.SQL("*")


def equal_filters(**columns: object) -> tuple[sql.Composable, dict[str, Any]]:
    """A ``WHERE`` clause matching each column whose value is not ``None`` (or none at all)."""
    used = {name: param(value) for name, value in columns.items() if value is not None}
    if not used:
        return sql.SQL(""), {}
    clause = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in used
    )
    return sql.SQL("WHERE ") + clause, used


def assignments(fields: dict[str, Any]) -> sql.Composable:
    """``col = %(col)s, …`` for every field name (our own column names)."""
    return sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name))
        for name in fields
    )


def insert_statement(table: str, row: dict[str, Any], suffix: LiteralString = "") -> sql.Composed:
    """An ``INSERT`` of ``row`` into ``table`` with named placeholders."""
    return sql.SQL("INSERT INTO {} ({}) VALUES ({}) {}").format(
        sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(name) for name in row),
        sql.SQL(", ").join(sql.Placeholder(name) for name in row),
        sql.SQL(suffix),
    )


async def select_page(
    db: Database, struct_type: type[S], *, table: str, where: sql.Composable,
    params: dict[str, Any], order_by: LiteralString, limit: int, offset: int,
    columns: sql.Composable = ALL_COLUMNS, key: str = "id", total: sql.Composable | None = None,
    conn: Conn | None = None,
) -> Page[S]:
    """One page of ``table``'s rows as ``struct_type`` and the total matching ``where``, in one
    round trip (the total rides on every row; an empty page still brings it). ``total`` is a
    cheaper query answering the same count as a column ``n``, where the caller has one; on
    ``conn`` when given, else on a pooled connection."""
    page_order = ", ".join(f"page.{part.strip()}" for part in order_by.split(","))
    query = sql.SQL(
        "WITH page AS (SELECT {columns} FROM {table} {where} ORDER BY {order} "
        "LIMIT %(limit)s OFFSET %(offset)s) "
        "SELECT total.n AS total_count, page.* FROM "
        "({total}) AS total "
        "LEFT JOIN page ON true ORDER BY {page_order}"
    ).format(columns=columns, table=sql.Identifier(table), where=where,
             total=total or sql.SQL("SELECT count(*) AS n FROM {} {}").format(
                 sql.Identifier(table), where),
             order=sql.SQL(order_by), page_order=sql.SQL(page_order))
    if conn is None:
        async with db.connection() as pooled:
            found = await fetch_all(pooled, query, {**params, **page_bounds(limit, offset)})
    else:
        found = await fetch_all(conn, query, {**params, **page_bounds(limit, offset)})
    return Page(items=[struct_from_row(struct_type, row) for row in found if row[key]],
                total=int(found[0]["total_count"]), limit=limit, offset=offset)


async def remembered(db: Database, memo: ReadMemo[P], key: Hashable,
                     read: Callable[[Conn], Awaitable[P]]) -> P:
    """``read(conn)``, or its answer kept in ``memo`` for ``key`` while no transaction
    committed since it was read (``spark_adapters.read_memo``).

    The change token is the current snapshot (``xmin:xmax:xip``), read by a query that
    started after this call (``SnapshotTokens``, shared by concurrent callers) and before
    the read: two equal snapshots see the same committed transactions, and any commit in
    between (by any node or client) makes them differ. A hit costs a share of one small
    round trip instead of the page's query, its rows and their decoding; after a commit, the
    lists asking at once share one read of the page.
    """
    token = await db.snapshots.current()
    if token and (kept := memo.get(key, token)) is not None:
        return kept

    async def read_pooled() -> P:
        async with db.connection() as conn:
            return await read(conn)

    return await (memo.read_once(key, token, read_pooled) if token else read_pooled())
