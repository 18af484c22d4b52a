"""``PostgresStore``: the ``Store`` port on PostgreSQL, for one process or N coordinating ones."""

import asyncio

import psycopg
from psycopg import sql

from spark_adapters.postgres.connection import (
    CONNECT_TIMEOUT,
    Database,
    fetch_all,
    scrub,
    translate_errors,
)
from spark_adapters.postgres.fires import PostgresFireLedger
from spark_adapters.postgres.migrations import migrate
from spark_adapters.postgres.nodes import PostgresNodeRegistry
from spark_adapters.postgres.queue import PostgresTaskQueue
from spark_adapters.postgres.schedules import PostgresScheduleRepository
from spark_adapters.postgres.sources import PostgresSourceRepository
from spark_adapters.postgres.tasks import PostgresTaskRepository
from spark_adapters.postgres.wakeups import PostgresWakeUpFeed
from spark_adapters.postgres.workflows import PostgresWorkflowRepository
from spark_core.errors import StoreUnavailableError
from spark_core.ports import (
    Clock,
    FireLedger,
    IdKind,
    NodeRegistry,
    ScheduleRepository,
    SourceRepository,
    TaskQueue,
    TaskRepository,
    WakeUpFeed,
    WorkflowRepository,
)

ID_TABLES = {IdKind.SOURCE: "sources", IdKind.WORKFLOW: "workflows",
             IdKind.SCHEDULE: "schedules", IdKind.TASK: "tasks"}

PING_SECONDS = 2.0
"""How long ``ping`` waits for ``SELECT 1`` before calling the database down."""


class PostgresStore:
    """Spark's state in a PostgreSQL schema (the URL's ``search_path``).

    ``poll_only`` suits transaction poolers such as PgBouncer: no prepared statements, no
    LISTEN, no session locks. ``clock`` (tests) replaces the database's ``now()`` in every
    dueness and lease predicate.
    """

    def __init__(self, url: str, *, pool_size: int = 10, poll_only: bool = False,
                 clock: Clock | None = None) -> None:
        self._db = Database(url, pool_size=pool_size, poll_only=poll_only, clock=clock)
        # Typed as the ports: the Store protocol's attributes are invariant.
        self.sources: SourceRepository = PostgresSourceRepository(self._db)
        self.workflows: WorkflowRepository = PostgresWorkflowRepository(self._db)
        self.schedules: ScheduleRepository = PostgresScheduleRepository(self._db)
        self.fires: FireLedger = PostgresFireLedger(self._db)
        self.tasks: TaskRepository = PostgresTaskRepository(self._db)
        self.queue: TaskQueue = PostgresTaskQueue(self._db)
        self._nodes = PostgresNodeRegistry(self._db)
        self.nodes: NodeRegistry = self._nodes
        self.wakeups: WakeUpFeed = PostgresWakeUpFeed(self._db)

    @property
    def description(self) -> str:
        """The database's URL without its password."""
        return self._db.description

    async def open(self) -> None:
        """Connect; ``StoreUnavailableError`` with the reason if the database cannot be reached
        within a few seconds."""
        try:
            # One direct connection first: its error says why (refused, unknown host, bad
            # password) where the pool would only report a timeout.
            probe = await asyncio.wait_for(self._db.connect_raw(), timeout=CONNECT_TIMEOUT + 1)
            await probe.close()
            await self._db.pool.open(wait=True, timeout=CONNECT_TIMEOUT * 2)
        except (psycopg.Error, OSError) as exc:
            await self._db.pool.close()
            reason = " ".join((str(exc).strip() or type(exc).__name__).split())
            raise StoreUnavailableError(
                f"Cannot connect to PostgreSQL at {self.description}: "
                f"{scrub(reason, self._db.url)}") from exc

    async def migrate(self) -> int:
        """Bring the schema up to date, once even when N processes start together; return the
        version reached. ``StoreUnavailableError`` if the database is newer than this code."""
        return await migrate(self._db)

    async def ping(self) -> bool:
        """True when the database answers ``SELECT 1`` within a short time."""
        try:
            async with asyncio.timeout(PING_SECONDS), self._db.connection() as conn:
                await conn.execute("SELECT 1")
        except Exception:  # a health check answers, never raises (timeouts included)
            return False
        return True

    async def ids_with_prefix(self, kind: IdKind, prefix: str, *, limit: int) -> list[str]:
        """Up to ``limit`` ids of ``kind`` starting with ``prefix``, in id order: a range on
        the primary key (``COLLATE "C"``), as every id character sorts below ``~``."""
        query = sql.SQL(
            "SELECT id FROM {table} WHERE id >= %(low)s AND id < %(high)s ORDER BY id "
            "LIMIT %(limit)s"
        ).format(table=sql.Identifier(ID_TABLES[kind]))
        async with self._db.connection() as conn:
            rows = await fetch_all(conn, query, {"low": prefix, "high": prefix + "~",
                                                 "limit": limit})
        return [str(row["id"]) for row in rows]

    async def close(self) -> None:
        """Release every connection; the store cannot be used afterwards."""
        with translate_errors(self._db.url):
            await self._nodes.close()
            await self._db.snapshots.close()
            await self._db.pool.close()
