"""Small builders of SQL statements from our own column names, values always as parameters."""

from typing import Any, LiteralString

from psycopg import sql

from spark_adapters.postgres.rows import param


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
