"""``SqliteWakeUpFeed``: hints that the database changed, from ``PRAGMA data_version``, and the
precise hints of this process's own writes.

SQLite has no notifications between processes, but a connection's ``data_version`` changes
whenever another connection (another process, or this store's writer) commits. The feed polls
it on a connection of its own every 0.2 s, a cheap read of shared memory, and hints ``WORK``
and ``SCHEDULES`` on a change: the consumers re-read the store, which stays the truth. Which
task was cancelled or finished is not known that way, so another process's cancel reaches a
runner through its lease renewal (``poll_seconds``).

The repositories of this store ``publish`` what their writes mean (new work, a schedule change,
a cancel, a finished task, with its id) to this process's listeners as soon as the write
commits. An in-memory store has one connection, so there the feed watches the store's commit
count instead of ``data_version``.
"""

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterator

from spark_adapters.sqlite.connection import Database, connect
from spark_core.ports import WakeUp, WakeUpFeed, WakeUpKind

_log = logging.getLogger(__name__)
WORK = WakeUp(kind=WakeUpKind.WORK)
SCHEDULES = WakeUp(kind=WakeUpKind.SCHEDULES)
_CHANGED = (WORK, SCHEDULES)
INTERVAL_SECONDS = 0.2
"""How often the feed looks for a change."""
POLL_SECONDS = 1.0
"""How often consumers poll the store as a backstop."""


class SqliteWakeUpFeed(WakeUpFeed):
    """The ``WakeUpFeed`` port on ``PRAGMA data_version``."""

    def __init__(self, database: Database, *, interval: float = INTERVAL_SECONDS) -> None:
        self._database = database
        self._interval = interval
        self._listeners: list[Callable[[WakeUp], None]] = []

    @property
    def poll_seconds(self) -> float:
        """How often consumers should poll the store as a backstop."""
        return POLL_SECONDS

    async def listen(self, deliver: Callable[[WakeUp], None]) -> None:
        """Deliver ``WORK`` and ``SCHEDULES`` at start, after every reconnection and whenever
        the database changed, until cancelled; and what this process's writes publish."""
        self._listeners.append(deliver)
        try:
            await self._watch_changes(deliver)
        finally:
            self._listeners.remove(deliver)

    def publish(self, *wake_ups: WakeUp) -> None:
        """Hand ``wake_ups`` to this process's listeners now (called after a commit).

        A listener that raises is logged and skipped: the write it reports has committed.
        """
        for deliver in list(self._listeners):
            for wake_up in wake_ups:
                try:
                    deliver(wake_up)
                except Exception:
                    _log.exception("A wake-up listener failed on %s", wake_up)

    async def _watch_changes(self, deliver: Callable[[WakeUp], None]) -> None:
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


def finished(task_id: str) -> WakeUp:
    """The hint that a task reached a final status."""
    return WakeUp(kind=WakeUpKind.FINISHED, id=task_id)


def cancelled(task_id: str) -> tuple[WakeUp, WakeUp]:
    """The hints of a cancel: to its runner, and to whoever waits for it to finish."""
    return WakeUp(kind=WakeUpKind.CANCEL, id=task_id), finished(task_id)
