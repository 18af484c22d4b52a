"""Live updates: task status changes pushed to the dashboard over Server-Sent Events.

One ``TaskFeed`` per process polls the store (the truth, whichever node changed the task)
once a second, only while someone listens, and fans each change out to every open stream as
``{"id", "status", "updated_at"}``. A look reads only what can have changed, on the store's
indexes: tasks created since the last look, the pending and running ones, and those that were
pending or running last time (a read by id each); its cost follows the work under way, not the
100,000 finished tasks a store may hold. The pages then
fetch the changed row or panel as server-rendered HTML. ``close`` ends every stream at once: a
server that is stopping must not wait for browsers to hang up.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import msgspec

from spark_core.errors import NotFoundError, SparkError
from spark_core.facade import Spark
from spark_core.models import Task, TaskId, TaskStatus
from spark_core.ports import TaskFilter

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
LOOK_BACK = timedelta(seconds=2)
"""Tasks created this far before the last look are read again: a commit can land late, and
another node's clock may differ a little."""
KEEPALIVE_SECONDS = 15.0
STREAM_SECONDS = 60.0
"""A stream ends after this long and the browser reconnects (3 s later) and catches up: an
ASGI server that waits for open responses before it stops (plain uvicorn does) then waits at
most this long for a dashboard left open. ``spark serve`` ends them at once."""
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

    def __init__(self, *, poll_seconds: float = POLL_SECONDS,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._poll_seconds = poll_seconds
        self._now = now
        self._listeners: set[asyncio.Queue[TaskChange | Closed]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def listeners(self) -> int:
        """How many streams are open."""
        return len(self._listeners)

    async def stream(
        self, spark: Spark, *, keepalive: float = KEEPALIVE_SECONDS,
        lifetime: float = STREAM_SECONDS,
    ) -> AsyncIterator[TaskChange | None]:
        """Changes as they happen, ``None`` every ``keepalive`` seconds of quiet, until the
        feed closes, ``lifetime`` seconds have passed, or the consumer stops iterating."""
        if self._closed:
            return
        queue: asyncio.Queue[TaskChange | Closed] = asyncio.Queue(QUEUE_SIZE)
        self._listeners.add(queue)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(spark), name="spark-ui-feed")
        loop = asyncio.get_running_loop()
        ends = loop.time() + lifetime
        try:
            while True:
                left = ends - loop.time()
                if left <= 0:
                    return
                try:
                    item = await asyncio.wait_for(queue.get(), min(keepalive, left))
                except TimeoutError:
                    if loop.time() < ends:
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
        previous = self._now()  # when the last look began
        seen: dict[str, tuple[str, datetime]] = {}
        active: set[str] = set()
        while self._listeners and not self._closed:
            await asyncio.sleep(self._poll_seconds)
            looking = self._now()
            try:
                tasks = await self._look(spark, since=previous, active=active)
            except SparkError as exc:  # the store is away: the next look tries again
                logger.warning("Dashboard feed could not read tasks: %s", exc)
                continue
            for task in sorted(tasks, key=lambda task: task.updated_at):
                state = (task.status.value, task.updated_at)
                known = seen.get(task.id)
                # Seen for the first time, it is news only if it changed since the last look.
                if known != state and (known is not None
                                       or task.updated_at >= previous - LOOK_BACK):
                    self._publish(TaskChange(id=task.id, status=task.status,
                                             updated_at=task.updated_at))
                seen[task.id] = state
            active = {task.id for task in tasks if not task.status.is_final}
            current = {task.id for task in tasks}
            seen = {tid: state for tid, state in seen.items() if tid in current}
            previous = looking

    @staticmethod
    async def _look(spark: Spark, *, since: datetime, active: set[str]) -> list[Task]:
        """The tasks whose status may have changed since the last look, read on indexes
        (never a scan of every task): those created since then, those pending or running
        now, and those that were pending or running at the last look and are no longer."""
        created = await spark.tasks.list(TaskFilter(created_after=since - LOOK_BACK),
                                         limit=BATCH)
        running = await spark.tasks.list(TaskFilter(status=TaskStatus.RUNNING), limit=BATCH)
        pending = await spark.tasks.list(TaskFilter(status=TaskStatus.PENDING), limit=BATCH)
        found: dict[str, Task] = {task.id: task for page in (created, running, pending)
                                  for task in page.items}
        for task_id in [tid for tid in active if tid not in found][:BATCH]:
            with contextlib.suppress(NotFoundError):  # deleted meanwhile
                found[task_id] = await spark.tasks.get(TaskId(task_id))
        return list(found.values())

    def _publish(self, change: TaskChange) -> None:
        for queue in list(self._listeners):
            try:
                queue.put_nowait(change)
            except asyncio.QueueFull:  # a stalled browser: it reloads when it reconnects
                self._listeners.discard(queue)
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(Closed())
