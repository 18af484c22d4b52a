"""``PostgresNodeRegistry``: which Spark processes are alive, by the locks their sessions hold.

A process registers by taking a session advisory lock on a key for its owner, on a connection
of its own kept open, then writing a ``spark_nodes`` row. The lock lives exactly as long as that
session, so a row whose lock no session holds belongs to a process that is provably gone.
Behind a transaction pooler session locks mean nothing, so ``dead`` then answers no one.
"""

import contextlib
import logging
import os
import socket

from spark_adapters.postgres.connection import Conn, Database, fetch_all, translate_errors

logger = logging.getLogger(__name__)

_KEY = "hashtextextended('spark:node:' || current_schema() || ':' || %(owner)s, 0)"

_REGISTER = (
    "INSERT INTO spark_nodes (owner, host, pid, lock_key) "
    "VALUES (%(owner)s, %(host)s, %(pid)s, " + _KEY + ") "
    "ON CONFLICT (owner) DO UPDATE SET host = excluded.host, pid = excluded.pid, "
    "lock_key = excluded.lock_key, started_at = now()"
)

# pg_locks shows a one-bigint advisory key as its high half in classid, its low half in objid.
_DEAD = """
    DELETE FROM spark_nodes n
    WHERE NOT EXISTS (
        SELECT 1 FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND ((l.classid::bigint << 32) | l.objid::bigint) = n.lock_key
    )
    RETURNING owner
"""


class PostgresNodeRegistry:
    """The ``NodeRegistry`` port on ``spark_nodes`` and session advisory locks."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._sessions: dict[str, Conn] = {}

    async def register(self, owner: str) -> None:
        """Announce this process as ``owner`` for as long as the store stays open."""
        params = {"owner": owner, "host": socket.gethostname(), "pid": os.getpid()}
        if self._db.poll_only:
            async with self._db.connection() as conn:
                await conn.execute(_REGISTER, params)
            return
        if owner in self._sessions:
            await self.unregister(owner)
        conn = await self._db.connect()
        try:
            with translate_errors(self._db.url):
                # The lock first: a row without its lock would look dead to a peer.
                await conn.execute("SELECT pg_advisory_lock(" + _KEY + ")", params)
                await conn.execute(_REGISTER, params)
        except BaseException:
            await conn.close()
            raise
        self._sessions[owner] = conn

    async def unregister(self, owner: str) -> None:
        """Withdraw ``owner`` (a clean stop): release its lock and delete its row."""
        conn = self._sessions.pop(owner, None)
        if conn is not None:
            await conn.close()  # ends the session, which releases the lock
        async with self._db.connection() as pooled:
            await pooled.execute("DELETE FROM spark_nodes WHERE owner = %s", [owner])

    async def dead(self) -> list[str]:
        """Owners whose registering session is gone; their rows are removed as they are named.

        First this process checks its own registering sessions and takes back any it lost
        (a dropped connection, a terminated backend), so that it is named dead for at most one
        check interval. Behind a transaction pooler (``poll_only``) nothing is ever known dead.
        """
        if self._db.poll_only:
            return []
        await self._keep_registered()
        async with self._db.connection() as conn:
            found = await fetch_all(conn, _DEAD)
        mine = set(self._sessions)
        return sorted(str(row["owner"]) for row in found if row["owner"] not in mine)

    async def _keep_registered(self) -> None:
        for owner, conn in list(self._sessions.items()):
            try:
                await conn.execute("SELECT 1")
            except Exception:  # any failure means the session is gone
                logger.warning("Node session of %s was lost; registering again", owner)
                self._sessions.pop(owner, None)
                with contextlib.suppress(Exception):
                    await conn.close()
                await self.register(owner)

    async def close(self) -> None:
        """Drop every registering session (the store is closing; the rows stay until a peer
        notices the locks are gone, or the next ``unregister``)."""
        sessions, self._sessions = list(self._sessions.values()), {}
        for conn in sessions:
            await conn.close()
