"""One SQLite connection shared by the store, with explicit transactions and error translation.

Writes run in ``BEGIN IMMEDIATE`` so two processes on one file serialise on the write lock at
the start of a transaction instead of failing half-way through it. Reads run in a deferred
transaction so a page and its total come from one snapshot. A lock serialises threads, because
a transaction belongs to the connection, not to the thread that opened it.
"""

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from spark_core.errors import ConflictError, NotFoundError, SparkError

MEMORY = ":memory:"
SQLITE_MAX_INTEGER = 2**63 - 1
"""The largest integer SQLite stores; larger Python ints cannot be bound as parameters."""


def open_database(path: str | Path) -> sqlite_utils.Database:
    """Open (creating if needed) the database file at ``path`` with Spark's connection settings."""
    if str(path) != MEMORY:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        # Python's str.casefold, so "name contains" is case-insensitive beyond ASCII.
        conn.create_function("spark_casefold", 1, _casefold, deterministic=True)
    except BaseException:
        conn.close()
        raise
    return sqlite_utils.Database(conn)


def _casefold(value: str | None) -> str | None:
    return None if value is None else value.casefold()


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn any ``sqlite3`` exception raised inside the block into a ``SparkError``."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "FOREIGN KEY" in str(exc):
            raise NotFoundError("A referenced record does not exist") from exc
        raise ConflictError(f"The record conflicts with an existing one ({exc})") from exc
    except sqlite3.Error as exc:
        raise SparkError(f"The database could not complete the operation ({exc})") from exc


class Connection:
    """The store's connection: transactions, locking and a few query helpers."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self._lock = threading.RLock()

    @contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        """A ``BEGIN IMMEDIATE`` transaction, committed on success and rolled back on error."""
        with self._transaction("BEGIN IMMEDIATE") as db:
            yield db

    @contextmanager
    def read(self) -> Iterator[sqlite_utils.Database]:
        """A deferred transaction: every query inside sees the same snapshot."""
        with self._transaction("BEGIN") as db:
            yield db

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the connection for work that manages its own transaction (migrations)."""
        with self._lock:
            yield

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite_utils.Database]:
        with self._lock, translate_errors():
            if self.db.conn.in_transaction:  # nested call from another store method
                yield self.db
                return
            self.db.conn.execute(begin)
            try:
                yield self.db
                self.db.conn.execute("COMMIT")
            except BaseException:
                # An error may already have ended the transaction inside SQLite.
                if self.db.conn.in_transaction:
                    self.db.conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close the connection; the store cannot be used afterwards."""
        with self._lock, translate_errors():
            self.db.close()


def rows(db: sqlite_utils.Database, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """All rows of a query as dicts, fetched at once (no cursor outlives its transaction).

    Uses ``execute`` (traced like any statement): sqlite-utils' ``query`` guards every read
    with a savepoint, three statements where one does, and store calls are in a transaction.
    """
    cursor = db.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def scalar(db: sqlite_utils.Database, sql: str, params: Sequence[Any] = ()) -> Any:
    """The first column of the first row of a query, or ``None`` when it has no rows."""
    row = db.execute(sql, params).fetchone()
    return None if row is None else row[0]


def where_equal(**columns: object) -> tuple[str, list[Any]]:
    """A ``WHERE`` clause matching each column whose value is not ``None`` (or none at all)."""
    used = {name: value for name, value in columns.items() if value is not None}
    if not used:
        return "", []
    clause = " AND ".join(f"{name} = ?" for name in used)
    return f"WHERE {clause}", list(used.values())


def select_page(db: sqlite_utils.Database, *, table: str, columns: str, where: str,
                params: list[Any], order_by: str, limit: int,
                offset: int) -> tuple[list[dict[str, Any]], int]:
    """One page of a table's rows and the total count matching ``where``.

    ``limit`` and ``offset`` beyond SQLite's largest integer are clamped to it (such a page
    is empty anyway); passed as they are, they would raise ``OverflowError``.
    """
    total = int(scalar(db, f"SELECT count(*) FROM {table} {where}", params))  # noqa: S608
    page = rows(
        db,
        f"SELECT {columns} FROM {table} {where} ORDER BY {order_by} LIMIT ? OFFSET ?",  # noqa: S608
        [*params, min(limit, SQLITE_MAX_INTEGER), min(offset, SQLITE_MAX_INTEGER)],
    )
    return page, total


def insert_statement(table: str, row: dict[str, Any]) -> tuple[str, list[Any]]:
    """An ``INSERT`` of ``row`` (column names are ours, values are parameters)."""
    columns = ", ".join(row)
    placeholders = ", ".join("?" for _ in row)
    return f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", list(row.values())  # noqa: S608


def update_statement(table: str, row: dict[str, Any]) -> tuple[str, list[Any]]:
    """An ``UPDATE`` of every column in ``row`` for the row with ``row["id"]``."""
    columns = [name for name in row if name != "id"]
    assignments = ", ".join(f"{name} = ?" for name in columns)
    sql = f"UPDATE {table} SET {assignments} WHERE id = ?"  # noqa: S608
    return sql, [*(row[name] for name in columns), row["id"]]
