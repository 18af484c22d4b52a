"""``SqliteWakeUpFeed``: hints that the database changed, from ``PRAGMA data_version``.

SQLite has no notifications between processes, but a connection's ``data_version`` changes
whenever another connection (another process, or this store's writer) commits. The feed polls
it on a connection of its own every 0.2 s, a cheap read of shared memory, and hints ``WORK``
and ``SCHEDULES`` on a change: the consumers re-read the store, which stays the truth.

An in-memory store has one connection, so there the feed watches the store's commit count.
"""

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator

from spark_adapters.sqlite.connection import Database, connect
from spark_core.ports import WakeUp, WakeUpFeed, WakeUpKind

_CHANGED = (WakeUp(kind=WakeUpKind.WORK), WakeUp(kind=WakeUpKind.SCHEDULES))
INTERVAL_SECONDS = 0.2
"""How often the feed looks for a change."""
POLL_SECONDS = 1.0
"""How often consumers poll the store as a backstop."""


class SqliteWakeUpFeed(WakeUpFeed):
    """The ``WakeUpFeed`` port on ``PRAGMA data_version``."""

    def __init__(self, database: Database, *, interval: float = INTERVAL_SECONDS) -> None:
        self._database = database
        self._interval = interval

    @property
    def poll_seconds(self) -> float:
        """How often consumers should poll the store as a backstop."""
        return POLL_SECONDS

    async def listen(self, deliver: Callable[[WakeUp], None]) -> None:
        """Deliver ``WORK`` and ``SCHEDULES`` at start, after every reconnection and whenever
        the database changed, until cancelled."""
        while True:
            try:
                with self._watch() as version:
                    seen = version()
                    _deliver_all(deliver)
                    while True:
                        await asyncio.sleep(self._interval)
                        current = version()
                        if current != seen:
                            seen = current
                            _deliver_all(deliver)
            except sqlite3.Error:
                # The file went away or is unreadable for now: reconnect after a pause.
                await asyncio.sleep(self._interval)

    @contextlib.contextmanager
    def _watch(self) -> Iterator[Callable[[], int]]:
        """A function answering a number that changes whenever the database does."""
        if self._database.memory:
            yield lambda: self._database.commits
            return
        conn = connect(self._database.path, busy_timeout_ms=0, read_only=True)
        try:
            yield lambda: int(conn.execute("PRAGMA data_version").fetchone()[0])
        finally:
            conn.close()


def _deliver_all(deliver: Callable[[WakeUp], None]) -> None:
    for wake_up in _CHANGED:
        deliver(wake_up)
