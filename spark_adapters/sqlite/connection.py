"""The store's two connections to one SQLite file, and the boundary where sqlite3 errors stop.

Writes run on one dedicated writer thread with its own connection, in ``BEGIN IMMEDIATE``
transactions: two processes on one file queue for the write lock at the start of a transaction
instead of failing half-way through it, and the queueing (up to ``busy_timeout``) happens off
the event loop, so another process holding the lock never stalls it.

A write marked ``quick`` (a few rows: a run stored, claimed or finished) asked for while the
writer thread is idle runs at once on the event loop instead, on the same connection, which
the thread is then not using: a hop to the thread and back cost about six times the write
itself (a task insert commits in 15 µs; the hop took 100 µs on a 2-core machine, more while
the loop held the GIL), and a lone run makes two (stored claimed, then finished). It never
waits there: its ``BEGIN IMMEDIATE`` runs with ``busy_timeout`` 0, and when another process
holds the write lock it goes to the thread, which may wait. The writer connection does not
checkpoint the WAL as it commits (that copies pages and syncs the file, milliseconds the loop
must not block for): the thread checkpoints once ``CHECKPOINT_COMMITS`` commits have
accumulated.

Writes asked for while the writer is busy are committed together (group commit): the writer
takes every write queued so far into one transaction, each inside its own savepoint, so a
write that fails is undone alone and the others still commit; each caller is answered once the
transaction that holds its write has committed. Under load most of a write's cost was its own
``BEGIN``/``COMMIT`` and the hops between the event loop and the thread; a batch pays them once.

Reads run inline on the event loop, on a second, read-only connection: in WAL mode a reader
never waits for a writer, and a thread hop would cost more than most reads. That connection's
``busy_timeout`` is 0, so a read cannot block the loop either; in the rare cases where SQLite
still answers busy (WAL recovery after a crash, a file not in WAL mode), the read is retried on
the writer thread, where waiting is harmless. A page and its total are read in one deferred
transaction, so they come from one snapshot.

``:memory:`` is one database per connection, so there the writer connection serves reads too.
"""

import asyncio
import collections
import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from spark_core.errors import ConflictError, NotFoundError, SparkError, StoreUnavailableError

T = TypeVar("T")

MEMORY = ":memory:"
SQLITE_MAX_INTEGER = 2**63 - 1
"""The largest integer SQLite stores; larger Python ints cannot be bound as parameters."""
WRITE_BUSY_TIMEOUT_MS = 5000
"""How long a write waits for another process's write lock before giving up."""
MAX_BATCH = 64
"""The most writes committed in one transaction (bounds how long the first of them waits)."""
CHECKPOINT_COMMITS = 500
"""Commits between two WAL checkpoints by the writer thread. SQLite's own automatic
checkpoint, off on the writer connection, comes at 1,000 pages, about 120 runs' writes; a
checkpoint copies each page once however often it changed and syncs the file twice, so
checkpointing the hot pages of many commits at once costs less per commit: at 16 concurrent
runs the writer thread spent 100-112 us of CPU a run at 100 commits, 41-50 at 400, 25-35 at
1,000. The WAL then grows to about 500 commits' pages (some 20 MB under a run load) before
SQLite reuses it from the start."""
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_PRIVATE_FILE = 0o600
_PRIVATE_DIRECTORY = 0o700


def connect(path: str | Path, *, busy_timeout_ms: int,
            read_only: bool = False) -> sqlite3.Connection:
    """A connection with Spark's settings: WAL, foreign keys, driver autocommit mode.

    A ``read_only`` connection never creates the file (which ``prepare_file`` makes private).
    """
    if read_only and str(path) != MEMORY:
        target, uri = Path(path).resolve().as_uri() + "?mode=rw", True
    else:
        target, uri = str(path), False
    conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None, uri=uri)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if read_only:
            conn.execute("PRAGMA query_only = ON")
        else:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        # Python's str.casefold, so "name contains" is case-insensitive beyond ASCII.
        conn.create_function("spark_casefold", 1, _casefold, deterministic=True)
    except BaseException:
        conn.close()
        raise
    return conn


def _casefold(value: str | None) -> str | None:
    return None if value is None else value.casefold()


def prepare_file(path: Path) -> None:
    """Create the database's directory (0700) and file (0600) if missing.

    SQLite gives the ``-wal`` and ``-shm`` files the database file's mode, so they are private
    too: they hold users' task inputs and outputs.
    """
    if not path.parent.exists():
        path.parent.mkdir(mode=_PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, _PRIVATE_FILE)
    os.close(descriptor)


def is_busy(exc: sqlite3.Error) -> bool:
    """True when SQLite refused because another connection holds a lock."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


@contextmanager
def translate_errors(*, missing: str | None = None, conflict: str | None = None) -> Iterator[None]:
    """Turn any ``sqlite3`` exception raised inside the block into a ``SparkError``.

    ``missing`` and ``conflict`` replace the generic messages for a broken foreign key and a
    broken unique constraint.
    """
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "FOREIGN KEY" in str(exc):
            raise NotFoundError(missing or "A referenced record does not exist") from exc
        message = conflict or f"The record conflicts with an existing one ({exc})"
        raise ConflictError(message) from exc
    except sqlite3.Error as exc:
        if is_busy(exc):
            raise StoreUnavailableError(
                f"The database is locked by another process for too long ({exc})"
            ) from exc
        raise SparkError(f"The database could not complete the operation ({exc})") from exc


def _run(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T],
         begin: str | None) -> T:
    """``work(conn)``, inside ``begin`` … ``COMMIT`` when ``begin`` is given."""
    if begin is None:
        return work(conn)
    conn.execute(begin)
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        # An error may already have ended the transaction inside SQLite.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


class _WriteLockHeld(Exception):
    """A quick write found the write lock held by another process (it did nothing)."""


class _Write:
    """One queued write: its work, and where its answer goes on the event loop."""

    __slots__ = ("future", "loop", "work")

    def __init__(self, work: Callable[[sqlite3.Connection], Any],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.work = work
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()


def _settle(answers: list[tuple["_Write", Any, BaseException | None]]) -> None:
    """On the event loop: hand each write its result or its error."""
    for write, result, error in answers:
        if write.future.done():  # the caller was cancelled meanwhile
            continue
        if error is None:
            write.future.set_result(result)
        else:
            write.future.set_exception(error)


def _undo_savepoint(conn: sqlite3.Connection) -> None:
    """Undo a failed write's savepoint; if even that fails, end the whole transaction, so
    that nothing of the failed write can be committed with the batch (the writes done before
    it are then committed again by the caller)."""
    if not conn.in_transaction:
        return
    try:
        conn.execute("ROLLBACK TO spark_write")
        conn.execute("RELEASE spark_write")
    except sqlite3.Error:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


class Database:
    """One SQLite file seen through a writer thread and an inline read connection."""

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self.memory = str(path) == MEMORY
        self.commits = 0
        """Write transactions committed through this store (the in-memory wake-up signal)."""
        self._executor: ThreadPoolExecutor | None = None
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._queued: collections.deque[_Write] = collections.deque()
        self._queue_lock = threading.Lock()
        self._draining = False
        """True while the writer connection is in use: a drain of the queued writes submitted
        to the writer thread, or a quick write running on the event loop."""
        self._thread_jobs = 0
        """``on_writer`` calls submitted to the writer thread and not yet done."""
        self._wait_ms = WRITE_BUSY_TIMEOUT_MS
        """The writer connection's ``busy_timeout`` now (0 while quick writes use it)."""
        self._checkpointed_at = 0
        """``commits`` when the writer thread last checkpointed the WAL."""

    @property
    def is_open(self) -> bool:
        """True between ``open`` and ``close``."""
        return self._executor is not None

    async def open(self) -> None:
        """Open both connections; ``StoreUnavailableError`` saying why if it cannot."""
        if self.is_open:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spark-sqlite-writer")
        loop = asyncio.get_running_loop()
        try:
            if not self.memory:
                prepare_file(Path(self.path))
            self._writer = await loop.run_in_executor(
                executor, functools.partial(connect, self.path,
                                            busy_timeout_ms=WRITE_BUSY_TIMEOUT_MS))
            self._wait_ms = WRITE_BUSY_TIMEOUT_MS
            if not self.memory:
                # The writer thread checkpoints (see the module docstring).
                self._writer.execute("PRAGMA wal_autocheckpoint = 0")
                # busy_timeout 0: a read must never block the event loop (see module docstring).
                self._reader = connect(self.path, busy_timeout_ms=0, read_only=True)
        except (OSError, sqlite3.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            await self._close_connections(executor, loop)
            raise StoreUnavailableError(
                f"Cannot open the database at {self.path} ({reason})"
            ) from exc
        self._executor = executor

    async def close(self) -> None:
        """Close both connections after the writes already queued; later calls fail."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await self._close_connections(executor, asyncio.get_running_loop())

    async def _close_connections(self, executor: ThreadPoolExecutor,
                                 loop: asyncio.AbstractEventLoop) -> None:
        writer, self._writer = self._writer, None
        reader, self._reader = self._reader, None
        try:
            if writer is not None:
                await loop.run_in_executor(executor, writer.close)
        finally:
            executor.shutdown(wait=False)
            if reader is not None:
                reader.close()

    async def write(self, work: Callable[[sqlite3.Connection], T], *, quick: bool = False) -> T:
        """``work`` in a ``BEGIN IMMEDIATE`` transaction on the writer thread, committed before
        this returns; writes queued meanwhile share the transaction, each in its own savepoint
        (all or nothing per write, sqlite3 errors translated as ``on_writer`` does).

        A ``quick`` write (a few rows) runs on the event loop instead when the writer thread is
        idle and no other process holds the write lock (see the module docstring)."""
        executor, writer = self._executor, self._writer
        if executor is None or writer is None:
            raise StoreUnavailableError(f"The database at {self.path} is not open")
        if quick and not self.memory:
            with self._queue_lock:
                here = not self._draining and not self._thread_jobs
                self._draining = self._draining or here
            if here:
                try:
                    return self._write_here(writer, work)
                except _WriteLockHeld:
                    pass  # by another process: the writer thread waits for it
                finally:
                    self._stop_using(executor, writer)
        queued = _Write(work, asyncio.get_running_loop())
        with self._queue_lock:
            self._queued.append(queued)
            submit = not self._draining
            self._draining = True
        if submit:
            try:
                executor.submit(self._drain, writer)
            except RuntimeError as exc:  # closed meanwhile: the executor takes no more work
                closed = StoreUnavailableError(f"The database at {self.path} is not open")
                self._fail_queued(closed, keep=queued)
                raise closed from exc
        result: T = await queued.future
        return result

    def _write_here(self, conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
        """A quick write on the caller's thread, committed; ``_WriteLockHeld`` when another
        process holds the write lock (``_run`` rolled back: nothing was done)."""
        self._wait_for_locks(conn, 0)
        try:
            result = _run(conn, work, "BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            if is_busy(exc):
                raise _WriteLockHeld from exc
            with translate_errors():
                raise
        self.commits += 1
        return result

    def _stop_using(self, executor: ThreadPoolExecutor, conn: sqlite3.Connection) -> None:
        """After a quick write: hand the writer connection back, to the writer thread if
        writes were queued meanwhile (by another thread) or a checkpoint is due."""
        with self._queue_lock:
            wanted = bool(self._queued) or self._checkpoint_due()
            self._draining = wanted
        if wanted:
            try:
                executor.submit(self._drain, conn)
            except RuntimeError:  # closed meanwhile: answer whoever queued
                self._fail_queued(StoreUnavailableError(
                    f"The database at {self.path} is not open"))

    def _checkpoint_due(self) -> bool:
        return not self.memory and self.commits - self._checkpointed_at >= CHECKPOINT_COMMITS

    def _wait_for_locks(self, conn: sqlite3.Connection, milliseconds: int) -> None:
        """Set the writer connection's ``busy_timeout`` (by whoever is using it now)."""
        if self._wait_ms != milliseconds:
            conn.execute(f"PRAGMA busy_timeout = {int(milliseconds)}")
            self._wait_ms = milliseconds

    def _drain(self, conn: sqlite3.Connection) -> None:
        """On the writer thread: commit the queued writes, a batch per transaction, until
        none is left; then checkpoint the WAL if that is due."""
        try:
            self._wait_for_locks(conn, WRITE_BUSY_TIMEOUT_MS)
            self._drain_batches(conn)
        except BaseException as exc:  # a bug here must not leave every later write waiting
            self._fail_queued(exc)
            raise

    def _fail_queued(self, error: BaseException, *, keep: _Write | None = None) -> None:
        """Answer every queued write (but ``keep``, whose caller hears it otherwise) with
        ``error``, and leave the queue empty with no drain under way."""
        with self._queue_lock:
            stranded = [write for write in self._queued if write is not keep]
            self._queued.clear()
            self._draining = False
        for write in stranded:
            answer: tuple[_Write, Any, BaseException | None] = (write, None, error)
            with suppress(RuntimeError):  # its loop closed meanwhile
                write.loop.call_soon_threadsafe(_settle, [answer])

    def _drain_batches(self, conn: sqlite3.Connection) -> None:
        while True:
            with self._queue_lock:
                batch = [self._queued.popleft()
                         for _ in range(min(MAX_BATCH, len(self._queued)))]
                checkpoint = not batch and self._checkpoint_due()
                if not batch and not checkpoint:
                    self._draining = False
                    return
            if checkpoint:
                self._checkpoint(conn)
                continue
            try:
                answers, retry = self._commit_batch(conn, batch)
            except BaseException as exc:  # every caller must hear of it
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                answers, retry = [(write, None, exc) for write in batch], []
            if retry:
                with self._queue_lock:
                    self._queued.extendleft(reversed(retry))
            by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
            for answer in answers:
                by_loop.setdefault(answer[0].loop, []).append(answer)
            for loop, settled in by_loop.items():
                with suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(_settle, settled)

    def _commit_batch(
        self, conn: sqlite3.Connection, batch: list[_Write]
    ) -> tuple[list[tuple[_Write, Any, BaseException | None]], list[_Write]]:
        """One transaction for ``batch``: the answers to give, and the writes to queue again
        (done before a failure that ended the whole transaction, so not committed). When
        ``BEGIN IMMEDIATE`` gives up waiting for another process's lock, every write of the
        batch fails with it, after one wait of ``WRITE_BUSY_TIMEOUT_MS``."""
        if len(batch) == 1:  # alone, the transaction is its savepoint
            return [self._commit_alone(conn, batch[0])], []
        try:
            with translate_errors():
                conn.execute("BEGIN IMMEDIATE")
        except SparkError as exc:
            return [(write, None, exc) for write in batch], []
        done: list[tuple[_Write, Any]] = []
        failed: list[tuple[_Write, Any, BaseException | None]] = []
        for position, write in enumerate(batch):
            try:
                with translate_errors():
                    conn.execute("SAVEPOINT spark_write")
                    try:
                        result = write.work(conn)
                    except BaseException:
                        _undo_savepoint(conn)
                        raise
                    conn.execute("RELEASE spark_write")
            except BaseException as exc:  # handed to its caller
                failed.append((write, None, exc))
                if not conn.in_transaction:  # SQLite (or _undo_savepoint) ended it all
                    retry = [earlier for earlier, _ in done] + batch[position + 1:]
                    return failed, retry
                continue
            done.append((write, result))
        try:
            with translate_errors():
                conn.execute("COMMIT")
        except SparkError as exc:
            if conn.in_transaction:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            return [*failed, *((write, None, exc) for write, _ in done)], []
        self.commits += 1
        return [*failed, *((write, result, None) for write, result in done)], []

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        """Copy the WAL's committed pages into the database file (``PASSIVE``: it waits for
        no lock and leaves what readers still use); a failure is left to the next one."""
        self._checkpointed_at = self.commits
        with suppress(sqlite3.Error):
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _commit_alone(self, conn: sqlite3.Connection,
                      write: _Write) -> tuple[_Write, Any, BaseException | None]:
        """A batch of one write: its own ``BEGIN IMMEDIATE`` … ``COMMIT``, no savepoint."""
        try:
            with translate_errors():
                result = _run(conn, write.work, "BEGIN IMMEDIATE")
        except BaseException as exc:  # handed to its caller
            return write, None, exc
        self.commits += 1
        return write, result, None

    async def read(self, work: Callable[[sqlite3.Connection], T], *,
                   snapshot: bool = False) -> T:
        """``work`` on the read connection, inline; in one transaction if ``snapshot``."""
        begin = "BEGIN" if snapshot else None
        reader = self._reader
        if reader is None:
            return await self.on_writer(_run, work, begin)
        with translate_errors():
            try:
                return _run(reader, work, begin)
            except sqlite3.Error as exc:
                if not is_busy(exc):
                    raise
        # Busy: wait for the lock where waiting is harmless.
        return await self.on_writer(_run, work, begin)

    async def on_writer(self, work: Callable[..., T], *args: Any) -> T:
        """``work(writer_connection, *args)`` on the writer thread, sqlite3 errors translated."""
        executor, writer = self._executor, self._writer
        if executor is None or writer is None:
            raise StoreUnavailableError(f"The database at {self.path} is not open")

        def guarded() -> T:
            try:
                with translate_errors():
                    self._wait_for_locks(writer, WRITE_BUSY_TIMEOUT_MS)
                    return work(writer, *args)
            finally:
                with self._queue_lock:
                    self._thread_jobs -= 1

        with self._queue_lock:  # no quick write uses the connection until this is done
            self._thread_jobs += 1
        try:
            future = asyncio.get_running_loop().run_in_executor(executor, guarded)
        except RuntimeError as exc:  # closed meanwhile: the executor takes no more work
            with self._queue_lock:
                self._thread_jobs -= 1
            raise StoreUnavailableError(f"The database at {self.path} is not open") from exc
        return await future

    def change_token(self) -> tuple[int, int] | None:
        """A value that changes whenever a write commits to the database, by this store or
        any other connection or process: the read connection's ``PRAGMA data_version`` with
        this store's commit count (``spark_adapters.read_memo``); ``None`` when closed or
        when SQLite cannot answer now (then nothing is reused)."""
        if not self.is_open:
            return None
        reader = self._reader
        if reader is None:  # :memory: is this store's alone: its own commits are all
            return 0, self.commits
        try:
            return int(reader.execute("PRAGMA data_version").fetchone()[0]), self.commits
        except sqlite3.Error:
            return None

    async def ping(self) -> bool:
        """True when the database answers ``SELECT 1``; never raises."""
        try:
            return bool(await self.read(lambda conn: scalar(conn, "SELECT 1")) == 1)
        except Exception:  # any failure means "not healthy", which is the answer
            return False

    async def trace(self, callback: Callable[[str], None] | None) -> None:
        """Have both connections report every statement they run (diagnostics and tests)."""
        if self._reader is not None:
            self._reader.set_trace_callback(callback)
        await self.on_writer(lambda conn: conn.set_trace_callback(callback))


def rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """All rows of a query as dicts, fetched at once (no cursor outlives its transaction)."""
    cursor = conn.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def scalar(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    """The first column of the first row of a query, or ``None`` when it has no rows."""
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def where_equal(**columns: object) -> tuple[str, list[Any]]:
    """A ``WHERE`` clause matching each column whose value is not ``None`` (or none at all)."""
    used = {name: value for name, value in columns.items() if value is not None}
    if not used:
        return "", []
    clause = " AND ".join(f"{name} = ?" for name in used)
    return f"WHERE {clause}", list(used.values())


def placeholders(values: Sequence[object]) -> str:
    """``?, ?, …``: one parameter per value, for an ``IN (…)`` list."""
    return ", ".join("?" for _ in values)


def select_page(conn: sqlite3.Connection, *, table: str, columns: str, where: str,
                params: list[Any], order_by: str, limit: int,
                offset: int) -> tuple[list[dict[str, Any]], int]:
    """One page of a table's rows and the total count matching ``where``.

    ``limit`` and ``offset`` beyond SQLite's largest integer are clamped to it (such a page
    is empty anyway); passed as they are, they would raise ``OverflowError``.
    """
    total = int(scalar(conn, f"SELECT count(*) FROM {table} {where}", params))  # noqa: S608
    page = rows(
        conn,
        f"SELECT {columns} FROM {table} {where} ORDER BY {order_by} LIMIT ? OFFSET ?",  # noqa: S608
        [*params, min(limit, SQLITE_MAX_INTEGER), min(offset, SQLITE_MAX_INTEGER)],
    )
    return page, total


def insert_statement(table: str, row: dict[str, Any]) -> tuple[str, list[Any]]:
    """An ``INSERT … RETURNING *`` of ``row`` (column names are ours, values are parameters)."""
    columns = ", ".join(row)
    values = placeholders(list(row))
    sql = f"INSERT INTO {table} ({columns}) VALUES ({values}) RETURNING *"  # noqa: S608
    return sql, list(row.values())


def set_clause(columns: dict[str, Any]) -> tuple[str, list[Any]]:
    """``a = ?, b = ?`` for an ``UPDATE`` of ``columns``, with their values."""
    return ", ".join(f"{name} = ?" for name in columns), list(columns.values())
