"""Live updates: task status changes pushed to the dashboard over Server-Sent Events.

One ``TaskFeed`` per process polls the store (the truth, whichever node changed the task)
for tasks updated since its last look, once a second and only while someone listens, and fans
each change out to every open stream as ``{"id", "status", "updated_at"}``. The pages then
fetch the changed row or panel as server-rendered HTML. ``close`` ends every stream at once: a
server that is stopping must not wait for browsers to hang up.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import msgspec

from spark_core.errors import SparkError
from spark_core.facade import Spark
from spark_core.ports import TaskFilter

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
LOOK_BACK = timedelta(seconds=2)
"""Tasks are read again this far back: a commit can land with an older ``updated_at``."""
KEEPALIVE_SECONDS = 15.0
BATCH = 200
QUEUE_SIZE = 500


class TaskChange(msgspec.Struct, frozen=True, kw_only=True):
    """A task that was created or changed."""

    id: str
    status: str
    updated_at: datetime


class Closed(msgspec.Struct, frozen=True):
    """Sent to every stream when the feed closes."""


class TaskFeed:
    """Fans task changes out to the open event streams."""

    def __init__(self, *, poll_seconds: float = POLL_SECONDS) -> None:
        self._poll_seconds = poll_seconds
        self._listeners: set[asyncio.Queue[TaskChange | Closed]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def listeners(self) -> int:
        """How many streams are open."""
        return len(self._listeners)

    async def stream(
        self, spark: Spark, *, keepalive: float = KEEPALIVE_SECONDS
    ) -> AsyncIterator[TaskChange | None]:
        """Changes as they happen, ``None`` every ``keepalive`` seconds of quiet, until the
        feed closes (or the consumer stops iterating)."""
        if self._closed:
            return
        queue: asyncio.Queue[TaskChange | Closed] = asyncio.Queue(QUEUE_SIZE)
        self._listeners.add(queue)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(spark), name="spark-ui-feed")
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), keepalive)
                except TimeoutError:
                    yield None
                    continue
                if isinstance(item, Closed):
                    return
                yield item
        finally:
            self._listeners.discard(queue)

    def close(self) -> None:
        """End every stream now and refuse new ones (the server is stopping)."""
        self._closed = True
        for queue in list(self._listeners):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(Closed())
        if self._poller is not None:
            self._poller.cancel()

    async def _poll(self, spark: Spark) -> None:
        since = datetime.now(UTC)
        seen: dict[str, datetime] = {}
        while self._listeners and not self._closed:
            await asyncio.sleep(self._poll_seconds)
            try:
                page = await spark.tasks.list(TaskFilter(updated_after=since - LOOK_BACK),
                                              limit=BATCH)
            except SparkError as exc:  # the store is away: the next look tries again
                logger.warning("Dashboard feed could not read tasks: %s", exc)
                continue
            for task in reversed(page.items):
                if seen.get(task.id) == task.updated_at:
                    continue
                seen[task.id] = task.updated_at
                self._publish(TaskChange(id=task.id, status=task.status,
                                         updated_at=task.updated_at))
            if page.items:
                since = max(since, *(task.updated_at for task in page.items))
            seen = {tid: at for tid, at in seen.items() if at >= since - LOOK_BACK}

    def _publish(self, change: TaskChange) -> None:
        for queue in list(self._listeners):
            try:
                queue.put_nowait(change)
            except asyncio.QueueFull:  # a stalled browser: it reloads when it reconnects
                self._listeners.discard(queue)
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(Closed())
