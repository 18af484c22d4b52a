"""Small builders of SQL statements from our own column names, values always as parameters."""

from typing import Any, LiteralString, TypeVar

import msgspec
from psycopg import sql

from spark_adapters.postgres.connection import Database, fetch_all, page_bounds
from spark_adapters.postgres.rows import param, struct_from_row
from spark_core.models import Page

S = TypeVar("S", bound=msgspec.Struct)
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
) -> Page[S]:
    """One page of ``table``'s rows as ``struct_type`` and the total matching ``where``, in one
    round trip (the total rides on every row; an empty page still brings it). ``total`` is a
    cheaper query answering the same count as a column ``n``, where the caller has one."""
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
    async with db.connection() as conn:
        found = await fetch_all(conn, query, {**params, **page_bounds(limit, offset)})
    return Page(items=[struct_from_row(struct_type, row) for row in found if row[key]],
                total=int(found[0]["total_count"]), limit=limit, offset=offset)
