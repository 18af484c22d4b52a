"""``SqliteStore``: the ``Store`` port on one SQLite file, the embedded default.

WAL mode lets readers work while one writer commits; ``BEGIN IMMEDIATE`` on every write makes
N processes on the same file queue for the write lock (``busy_timeout``) rather than fail, and
the queueing happens on a writer thread, never on the event loop (see ``connection``). The
repositories live one per module; this class joins them to one ``Database`` and one clock.
"""

import sqlite3
from pathlib import Path

from spark_adapters.clock import SystemClock
from spark_adapters.sqlite.connection import MEMORY, Database
from spark_adapters.sqlite.fires import SqliteFireLedger
from spark_adapters.sqlite.migrations import LATEST_VERSION
from spark_adapters.sqlite.migrations import migrate as migrate_database
from spark_adapters.sqlite.migrations import schema_version as read_schema_version
from spark_adapters.sqlite.nodes import SqliteNodeRegistry
from spark_adapters.sqlite.queue import SqliteTaskQueue
from spark_adapters.sqlite.schedules import SqliteScheduleRepository
from spark_adapters.sqlite.sources import SqliteSourceRepository
from spark_adapters.sqlite.tasks import SqliteTaskRepository
from spark_adapters.sqlite.wakeups import SqliteWakeUpFeed
from spark_adapters.sqlite.workflows import SqliteWorkflowRepository
from spark_core.errors import StoreUnavailableError
from spark_core.ports import Clock, IdKind, Store

ID_TABLES = {IdKind.SOURCE: "sources", IdKind.WORKFLOW: "workflows",
             IdKind.SCHEDULE: "schedules", IdKind.TASK: "tasks"}


class SqliteStore(Store):
    """Spark's state in a SQLite file (or ``":memory:"``), judged by ``clock`` (UTC by default).

    Example::

        store = SqliteStore(".spark/spark.db")
        await store.open()
        await store.migrate()
        page = await store.workflows.list(WorkflowFilter(q="support"), limit=50, offset=0)
        await store.close()
    """

    def __init__(self, path: str | Path, *, clock: Clock | None = None) -> None:
        self.path = path
        self.clock: Clock = clock or SystemClock()
        self.database = Database(path)
        self.wakeups = SqliteWakeUpFeed(self.database)
        self.sources = SqliteSourceRepository(self.database)
        self.workflows = SqliteWorkflowRepository(self.database)
        self.schedules = SqliteScheduleRepository(self.database, clock=self.clock,
                                                  hints=self.wakeups)
        self.fires = SqliteFireLedger(self.database)
        self.tasks = SqliteTaskRepository(self.database, clock=self.clock, hints=self.wakeups)
        self.queue = SqliteTaskQueue(self.database, clock=self.clock, hints=self.wakeups)
        self.nodes = SqliteNodeRegistry(None if str(path) == MEMORY else path)

    @property
    def description(self) -> str:
        """The database file's path (``:memory:`` for an in-memory store)."""
        return str(self.path)

    async def open(self) -> None:
        """Open the file, creating it (and its directory) privately if missing;
        ``StoreUnavailableError`` saying why if it cannot."""
        await self.database.open()

    async def migrate(self) -> int:
        """Bring the database up to this code's schema version, once even when N processes
        start together; returns that version. ``StoreUnavailableError`` if the database is
        newer than this code."""
        return await self.database.on_writer(self._migrate)

    def _migrate(self, conn: sqlite3.Connection) -> int:
        version = read_schema_version(conn)
        if version > LATEST_VERSION:
            raise StoreUnavailableError(
                f"The database at {self.path} has schema version {version}, newer than this "
                f"Spark understands ({LATEST_VERSION}); upgrade Spark"
            )
        return migrate_database(conn)

    async def schema_version(self) -> int:
        """The schema version of the open database."""
        return await self.database.read(read_schema_version)

    async def ping(self) -> bool:
        """True when the database answers a trivial query now; never raises."""
        return await self.database.ping()

    async def ids_with_prefix(self, kind: IdKind, prefix: str, *, limit: int) -> list[str]:
        """Up to ``limit`` ids of ``kind`` starting with ``prefix``, in id order: a range
        on the primary key, as every id character sorts below ``~``."""
        table = ID_TABLES[kind]
        query = f"SELECT id FROM {table} WHERE id >= ? AND id < ? ORDER BY id LIMIT ?"  # noqa: S608 - a constant table name; values are parameters
        rows = await self.database.read(
            lambda conn: conn.execute(query, (prefix, prefix + "~", limit)).fetchall())
        return [str(row[0]) for row in rows]

    async def close(self) -> None:
        """Release the node locks and both connections; the store cannot be used afterwards."""
        self.nodes.close()
        await self.database.close()
