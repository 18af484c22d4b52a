"""``PostgresWakeUpFeed``: hints between processes over LISTEN/NOTIFY on this schema's channel.

Writers publish with ``spark_notify`` inside their own transaction (see the repositories). The
listener holds one autocommit connection of its own, outside the pool: LISTEN, deliver the
catch-up hints, then wait for notifications, checking the connection with ``SELECT 1`` whenever
it has been quiet. When the connection breaks it reconnects with jittered backoff and delivers
the catch-up hints again, since anything sent meanwhile is lost.
"""

import asyncio
import logging
import random
from collections.abc import Callable

import msgspec
import psycopg
from psycopg import sql

from spark_adapters.postgres.connection import Conn, Database, fetch_one
from spark_core.cancellation import raise_if_cancelled
from spark_core.errors import SparkError
from spark_core.ports import WakeUp, WakeUpKind

logger = logging.getLogger(__name__)

HEALTHY_POLL_SECONDS = 5.0
"""The backstop poll while notifications arrive."""

UNHEALTHY_POLL_SECONDS = 1.0
"""The backstop poll while the listener is down, or when there is none (poll-only mode)."""

_decoder = msgspec.json.Decoder(WakeUp)

_CATCH_UP = (WakeUp(kind=WakeUpKind.WORK), WakeUp(kind=WakeUpKind.SCHEDULES))


class PostgresWakeUpFeed:
    """The ``WakeUpFeed`` port on LISTEN/NOTIFY."""

    def __init__(self, db: Database, *, quiet_seconds: float = 10.0,
                 max_backoff_seconds: float = 5.0) -> None:
        self._db = db
        self._quiet_seconds = quiet_seconds
        self._max_backoff = max_backoff_seconds
        self._healthy = False

    @property
    def poll_seconds(self) -> float:
        """5 s while the listener is connected, 1 s otherwise (or without a listener)."""
        if self._healthy and not self._db.poll_only:
            return HEALTHY_POLL_SECONDS
        return UNHEALTHY_POLL_SECONDS

    @property
    def healthy(self) -> bool:
        """Whether a listener is connected and listening right now."""
        return self._healthy

    async def listen(self, deliver: Callable[[WakeUp], None]) -> None:
        """Deliver hints until cancelled, reconnecting by itself; after every (re)connection
        deliver one ``WORK`` and one ``SCHEDULES`` hint first."""
        if self._db.poll_only:  # a transaction pooler cannot hold LISTEN; consumers poll
            await asyncio.Event().wait()
        failures = 0
        while True:
            try:
                await self._listen_once(deliver)
            except (psycopg.Error, SparkError, OSError) as exc:
                raise_if_cancelled()
                failures = 1 if self._healthy else failures + 1
                self._healthy = False
                delay = min(self._max_backoff, 0.05 * 2 ** min(failures, 10))
                delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security
                logger.warning("Wake-up listener lost its connection (%s); retrying in %.2fs",
                               type(exc).__name__, delay)
                await asyncio.sleep(delay)
            finally:
                self._healthy = False

    async def _listen_once(self, deliver: Callable[[WakeUp], None]) -> None:
        conn = await self._db.connect()
        try:
            row = await fetch_one(conn, "SELECT spark_channel() AS channel")
            channel = str(row["channel"]) if row else ""
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self._healthy = True
            for hint in _CATCH_UP:
                deliver(hint)
            await self._receive(conn, deliver)
        finally:
            await conn.close()

    async def _receive(self, conn: Conn, deliver: Callable[[WakeUp], None]) -> None:
        while True:
            async for notify in conn.notifies(timeout=self._quiet_seconds):
                try:
                    hint = _decoder.decode(notify.payload)
                except msgspec.ValidationError:
                    logger.warning("Ignoring a malformed wake-up: %r", notify.payload)
                    continue
                deliver(hint)
            # Quiet for a while: make sure the connection is still there.
            await asyncio.wait_for(conn.execute("SELECT 1"), timeout=self._quiet_seconds)
