"""The connection pool, the store's clock, and translation of psycopg errors at the boundary.

Every repository borrows connections from one ``Database``. Connections are in autocommit
mode: a single statement is its own transaction, and methods that need more than one statement
open ``transaction()``. No psycopg exception leaves this package: ``translate_errors`` turns
them into ``SparkError`` subclasses, with messages that never contain the password.
"""

import asyncio
import contextlib
import time
import urllib.parse
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any

import psycopg
import psycopg.conninfo
import psycopg.errors
from psycopg import pq
from psycopg.pq.abc import PGresult
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from spark_adapters.postgres.rounds import Rounds
from spark_core.errors import ConflictError, NotFoundError, SparkError, StoreUnavailableError
from spark_core.ports import Clock

Conn = psycopg.AsyncConnection[DictRow]

CONNECT_TIMEOUT = 5
"""Seconds to wait for a new connection before calling the database unreachable."""
POOL_WAIT_SECONDS = 5.0
"""Seconds a caller waits for a pooled connection before the database counts as unreachable."""
RECONNECT_SECONDS = 2.0
"""Seconds the pool retries replacing a lost connection before leaving it to new demand."""
SNAPSHOT_SECONDS = 5.0
"""Seconds a list waits for the database's snapshot before calling the database unreachable."""
FRESH_SECONDS = 1.0
"""A connection given back this recently is handed out again without a liveness check."""

BIGINT_MAX = 2**63 - 1
"""The largest ``LIMIT`` or ``OFFSET`` PostgreSQL accepts."""

NOW = "coalesce(%(now)s::timestamptz, now())"
"""The store's clock in SQL: the fake clock's time when a test gives one, else the database's."""


def describe(url: str) -> str:
    """``url`` as ``postgresql://user@host:port/db``: safe to print, never the password."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://(unreadable URL)"
    user = parts.get("user")
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    dbname = parts.get("dbname") or user or ""
    at = f"{user}@" if user else ""
    return f"postgresql://{at}{host}:{port}/{dbname}"


def _secrets(url: str) -> list[str]:
    """Every spelling of the password in ``url`` a message could echo."""
    found: list[str] = []
    try:
        password = psycopg.conninfo.conninfo_to_dict(url).get("password")
    except psycopg.Error:
        password = urllib.parse.urlsplit(url).password
    if password:
        found += [str(password), urllib.parse.quote(str(password), safe="")]
    return [url, *found]


def scrub(message: str, url: str) -> str:
    """``message`` with the URL and its password blanked out."""
    for secret in sorted(_secrets(url), key=len, reverse=True):
        if secret:
            message = message.replace(secret, "***")
    return message


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


@contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Turn any psycopg (or pool) exception raised inside the block into a ``SparkError``."""
    try:
        yield
    except psycopg.errors.UniqueViolation as exc:
        raise ConflictError(
            f"The record conflicts with an existing one ({_constraint(exc)})") from exc
    except psycopg.errors.ForeignKeyViolation as exc:
        raise NotFoundError(f"A referenced record does not exist ({_constraint(exc)})") from exc
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise StoreUnavailableError(
            f"PostgreSQL at {describe(url)} is unavailable: {scrub(_reason(exc), url)}"
        ) from exc
    except psycopg.Error as exc:
        raise SparkError(
            f"The database could not complete the operation: {scrub(_reason(exc), url)}"
        ) from exc


def _constraint(exc: psycopg.Error) -> str:
    return exc.diag.constraint_name or "constraint"


def page_bounds(limit: int, offset: int) -> dict[str, int]:
    """``LIMIT``/``OFFSET`` parameters clamped to what PostgreSQL accepts (such a page is empty
    anyway); a negative value counts as zero."""
    return {"limit": min(max(limit, 0), BIGINT_MAX), "offset": min(max(offset, 0), BIGINT_MAX)}


class _Freshness:
    """Remembers when each pooled connection was last given back, to check only stale ones."""

    def __init__(self) -> None:
        self._returned: weakref.WeakKeyDictionary[Conn, float] = weakref.WeakKeyDictionary()

    def returned(self, conn: Conn) -> None:
        """``conn`` is going back to the pool after working a moment ago.

        Noted by ``Database`` as it gives the connection back, not by a ``reset`` hook of
        the pool: with a hook, psycopg_pool hands every returned connection to its worker
        task, one more task switch per statement, and the connection is not borrowable
        until that task has run."""
        self._returned[conn] = time.monotonic()

    async def check(self, conn: Conn) -> None:
        """The pool's ``check`` hook: raise if a connection idle for a while is dead."""
        returned = self._returned.get(conn)
        if returned is not None and time.monotonic() - returned < FRESH_SECONDS:
            return
        await AsyncConnectionPool.check_connection(conn)


class Database:
    """The pool every repository borrows from, with the store's clock and its settings."""

    def __init__(self, url: str, *, pool_size: int, poll_only: bool,
                 clock: Clock | None) -> None:
        self.url = url
        self.description = describe(url)
        self.poll_only = poll_only
        self.clock = clock
        self.connect_kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": CONNECT_TIMEOUT,
        }
        if poll_only:  # transaction poolers (PgBouncer) cannot keep prepared statements
            self.connect_kwargs["prepare_threshold"] = None
        self._freshness = _Freshness()
        self.snapshots = SnapshotTokens(self)
        """The current snapshot for list reads (``spark_adapters.read_memo``)."""
        self.pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            open=False,
            # A request waits at most this long for a connection (then a clear 503), and a
            # lost connection's replacement is retried briefly, then grown afresh on demand:
            # the pool's own back-off (1, 2, 4, 8… s) would keep a node down long after the
            # database came back.
            timeout=POOL_WAIT_SECONDS,
            reconnect_timeout=RECONNECT_SECONDS,
            # A connection that sat idle may have been killed (a restart, a partition): it is
            # checked with one trivial round trip before it is handed out, and replaced if
            # dead, instead of failing the caller once. One back from use within the last
            # second is handed out unchecked: under load that is every borrow.
            check=self._freshness.check,
            connection_class=psycopg.AsyncConnection[DictRow],
            kwargs={**self.connect_kwargs, "row_factory": dict_row},
            name="spark",
        )

    def now(self) -> datetime | None:
        """The ``now`` parameter of every dueness or lease predicate (``None``: the DB's)."""
        return None if self.clock is None else self.clock.now()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """A pooled autocommit connection; errors inside are translated."""
        with translate_errors(self.url):
            async with self.pool.connection() as conn:
                yield conn
                self._freshness.returned(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """A pooled connection inside one transaction, committed on success."""
        with translate_errors(self.url):
            async with self.pool.connection() as conn:
                async with conn.transaction():
                    yield conn
                self._freshness.returned(conn)

    async def connect(self) -> Conn:
        """A new connection outside the pool (for listening and node locks)."""
        with translate_errors(self.url):
            return await self.connect_raw()

    async def connect_raw(self) -> Conn:
        """``connect`` with psycopg's own errors (``open`` words them itself)."""
        return await psycopg.AsyncConnection.connect(
            self.url, **self.connect_kwargs, row_factory=dict_row)


async def fetch_all(conn: Conn, query: Any, params: Any = None) -> list[dict[str, Any]]:
    """Every row of one query."""
    cursor = await conn.execute(query, params)
    return await cursor.fetchall()


async def fetch_one(conn: Conn, query: Any, params: Any = None) -> dict[str, Any] | None:
    """The first row of one query, or ``None``."""
    cursor = await conn.execute(query, params)
    return await cursor.fetchone()


def _settle(waiting: asyncio.Future[None]) -> None:
    if not waiting.done():
        waiting.set_result(None)


class _NoAnswer(psycopg.OperationalError):
    """The database did not answer a snapshot query in time."""


JOIN_PASSES = 2
"""Passes of the event loop a snapshot round waits for after one that served several lists:
in the first the loop reads the requests that have arrived, in the second their handlers run
and ask for the snapshot. A/B at 16 connections: one pass 7,783 -> 8,216 list requests/s on
PostgreSQL, two 8,577 -> 8,851; a caller alone does not wait."""


class SnapshotTokens:
    """The database's current snapshot (``xmin:xmax:xip``) as a change token, read once per
    round for every caller waiting on it.

    Each caller is answered by a query that *started after it asked*: callers arriving while
    a query is under way wait for the next round, which starts once that query ends, so no
    commit acknowledged before a caller asked can be missing from its token. Under
    concurrency one query serves a whole round of callers instead of one each.

    The rounds have a connection of their own beside the pool (opened on first use): borrowing
    one from the pool and giving it back cost as much as the query itself (218 against 118 µs
    a round, measured one caller at a time). A connection that fails is replaced and the
    query asked once more on the new one, so a database restart costs no list an error; a
    round not answered within ``SNAPSHOT_SECONDS`` fails its callers with
    ``StoreUnavailableError`` instead of holding every list.

    The rounds are ``Rounds``: a caller cancelled while it waits is cancelled alone.

    One query, asked over and over, is sent through psycopg's libpq layer (``pgconn``) with
    the connection's socket watched by the event loop for as long as it is open: psycopg's
    cursor waits register and remove a reader per query and keep a cursor's bookkeeping, which
    made a round cost ~100 µs of CPU against ~26 (one caller at a time, uvloop). The query is
    prepared once per connection, unless a transaction pooler forbids prepared statements.
    """

    _QUERY = b"SELECT pg_current_snapshot()::text AS token"
    _PREPARED = b"spark_snapshot_token"

    def __init__(self, db: Database) -> None:
        self._db = db
        self._rounds: Rounds[None, str] = Rounds(self._round, name="spark-pg-snapshots",
                                                 join_passes=JOIN_PASSES)
        self._conn: Conn | None = None
        self._fd: int | None = None
        """The socket watched for answers while ``_conn`` is usable."""
        self._answer: asyncio.Future[PGresult] | None = None
        """What the round under way waits for."""
        self._prepared = not db.poll_only

    async def current(self) -> str:
        """The snapshot of a query started after this call."""
        return await self._rounds.submit(None)

    async def close(self) -> None:
        """Stop the rounds and close their connection (callers waiting get an error)."""
        await self._rounds.close()
        await self._drop()

    async def _round(self, callers: list[None]) -> list[str]:
        """One query's token for every caller of the round."""
        try:
            token = await self._query()
        except asyncio.CancelledError:
            await self._drop()  # it may be half-way through a query
            raise
        return [token] * len(callers)

    async def _query(self) -> str:
        reused = self._fd is not None
        try:
            return await self._query_once()
        except StoreUnavailableError as exc:
            if not reused or isinstance(exc.__cause__, _NoAnswer):
                raise
            return await self._query_once()  # the kept connection had died: a new one

    async def _query_once(self) -> str:
        try:
            with translate_errors(self._db.url):
                conn = (self._conn if self._conn is not None and self._fd is not None
                        else await self._open())
                pgconn = conn.pgconn
                if self._prepared:
                    result = await self._exchange(
                        conn, lambda: pgconn.send_query_prepared(self._PREPARED, None))
                else:
                    result = await self._exchange(
                        conn, lambda: pgconn.send_query_params(self._QUERY, None))
                if result.status != pq.ExecStatus.TUPLES_OK:
                    raise psycopg.errors.error_from_result(result)
        except SparkError:  # whatever the session's state now, the next round starts afresh
            await self._drop()
            raise
        value = result.get_value(0, 0) if result.ntuples else None
        return "" if value is None else value.decode()

    async def _open(self) -> Conn:
        """A new connection, its socket watched and the query prepared on it."""
        await self._drop()
        conn = self._conn = await self._db.connect_raw()
        try:
            self._fd = conn.pgconn.socket
            asyncio.get_running_loop().add_reader(self._fd, self._readable, conn)
            if self._prepared:
                pgconn = conn.pgconn
                result = await self._exchange(
                    conn, lambda: pgconn.send_prepare(self._PREPARED, self._QUERY))
                if result.status != pq.ExecStatus.COMMAND_OK:
                    raise psycopg.errors.error_from_result(result)
        except BaseException:
            await self._drop()
            raise
        return conn

    async def _exchange(self, conn: Conn, send: Callable[[], None]) -> PGresult:
        """Send one command with ``send`` and wait for its result (read by ``_readable``)."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[PGresult] = loop.create_future()
        self._answer = answer
        try:
            send()
            while conn.pgconn.flush():  # the socket's buffer is full: wait until it drains
                writable: asyncio.Future[None] = loop.create_future()
                assert self._fd is not None
                loop.add_writer(self._fd, _settle, writable)
                try:
                    await writable
                finally:
                    loop.remove_writer(self._fd)
            try:
                async with asyncio.timeout(SNAPSHOT_SECONDS):
                    return await answer
            except TimeoutError as exc:
                raise _NoAnswer(
                    f"no answer to a snapshot query within {SNAPSHOT_SECONDS:g} s") from exc
        finally:
            self._answer = None

    def _readable(self, conn: Conn) -> None:
        """The socket has data: the awaited result once complete, or the connection lost."""
        answer = self._answer
        pgconn = conn.pgconn
        try:
            pgconn.consume_input()
            if answer is None or answer.done() or pgconn.is_busy():
                return  # nothing asked (a notice, say), or the result still coming
            result = pgconn.get_result()
            while pgconn.get_result() is not None:
                pass
        except psycopg.Error as exc:  # closed by the server, or the network
            self._unwatch()
            if answer is not None and not answer.done():
                answer.set_exception(exc)
            return
        if result is None:
            answer.set_exception(psycopg.OperationalError("no result to a snapshot query"))
        else:
            answer.set_result(result)

    def _unwatch(self) -> None:
        """Stop watching the socket; the next round opens a new connection."""
        fd, self._fd = self._fd, None
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)

    async def _drop(self) -> None:
        self._unwatch()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.close()
