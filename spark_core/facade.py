"""The ``Spark`` facade: every use case behind one object, for entrypoints and library use.

The services (``spark.sources``, ``spark.workflows``, ``spark.tasks``, ``spark.schedules``, and
``spark.fires`` for the fire ledger) hold every operation; the awaitable shortcuts on the
facade cover what a program does most: add a source, sync a flow, run it and wait for the
answer, schedule it, list its tasks.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

from spark_core.cancellation import cancel_and_wait, raise_if_cancelled
from spark_core.errors import SparkError, ValidationError
from spark_core.models import (
    CatchupPolicy,
    OverlapPolicy,
    Page,
    Schedule,
    ScheduleId,
    ScheduleType,
    Source,
    SourceId,
    Task,
    TaskId,
    TaskStatus,
    Workflow,
    WorkflowId,
)
from spark_core.ports import (
    Clock,
    Metrics,
    Notifier,
    SecretBox,
    SourceConnector,
    Store,
    TaskFilter,
)
from spark_core.scheduler import Scheduler
from spark_core.services.fires import DEFAULT_RETENTION, FireService
from spark_core.services.ids import IdService
from spark_core.services.schedules import ScheduleFields, ScheduleService
from spark_core.services.sources import SourceService
from spark_core.services.tasks import DEFAULT_MAX_RETRIES, TaskService
from spark_core.services.workflows import RemoteListing, WorkflowService
from spark_core.signals import TaskSignals
from spark_core.worker import RetryPolicy, Worker

logger = logging.getLogger(__name__)

HEALTH_SECONDS = 1.0
DEFAULT_TASK_RETENTION = timedelta(days=30)
PRUNE_SECONDS = 3600.0
"""How often finished tasks and fire-ledger records past their retention are pruned."""


class Spark:
    """Sources, workflows, tasks and schedules, plus the worker and scheduler that run them.

    Build it with ``Spark.from_ports`` (the container does the same for the configured
    adapters); call ``start()`` to run scheduled and queued work in the current event loop and
    ``stop()`` to finish it cleanly.
    """

    def __init__(
        self,
        *,
        sources: SourceService,
        workflows: WorkflowService,
        tasks: TaskService,
        schedules: ScheduleService,
        worker: Worker,
        scheduler: Scheduler,
        store: Store,
        signals: TaskSignals,
        fires: FireService,
        task_retention: timedelta | None = DEFAULT_TASK_RETENTION,
    ) -> None:
        self.sources = sources
        self.workflows = workflows
        self.tasks = tasks
        self.schedules = schedules
        self.fires = fires
        self.worker = worker
        self.scheduler = scheduler
        self.store = store
        self.ids = IdService(store=store)
        self._signals = signals
        self._database_ok = True
        self._background: list[asyncio.Task[None]] = []
        self.task_retention = task_retention

    @classmethod
    def from_ports(
        cls,
        *,
        store: Store,
        connector: SourceConnector,
        secrets: SecretBox,
        clock: Clock,
        concurrency: int = 16,
        default_timeout: float = 300.0,
        lease_seconds: float = 30.0,
        retry: RetryPolicy | None = None,
        task_retention: timedelta | None = DEFAULT_TASK_RETENTION,
        metrics: Metrics | None = None,
        fire_retention: timedelta = DEFAULT_RETENTION,
        notifier: Notifier | None = None,
    ) -> "Spark":
        """Wire every service, the worker and the scheduler over an opened ``store`` and the
        other ports: the one composition path (the container calls it too). ``metrics``
        receives what the worker and scheduler do; the fire ledger keeps ``fire_retention``;
        ``notifier`` hears of failed and recovered runs."""
        signals = TaskSignals()
        fires = FireService(
            fires=store.fires, schedules=store.schedules, tasks=store.tasks,
            workflows=store.workflows, sources=store.sources, clock=clock,
            retention=fire_retention,
        )
        sources = SourceService(
            sources=store.sources, connector=connector, secrets=secrets, clock=clock
        )
        workflows = WorkflowService(
            workflows=store.workflows, source_records=store.sources, sources=sources,
            clock=clock,
        )
        schedules = ScheduleService(
            schedules=store.schedules, tasks=store.tasks, workflows=workflows, clock=clock,
            signals=signals, fires=fires,
        )
        return cls(
            sources=sources,
            workflows=workflows,
            tasks=TaskService(
                tasks=store.tasks, workflows=workflows, clock=clock, signals=signals
            ),
            schedules=schedules,
            worker=Worker(
                store=store, sources=sources, clock=clock, signals=signals,
                concurrency=concurrency, default_timeout=default_timeout,
                lease_seconds=lease_seconds, retry=retry, metrics=metrics, notifier=notifier,
            ),
            scheduler=Scheduler(store=store, schedules=schedules, clock=clock, signals=signals,
                                metrics=metrics),
            store=store,
            signals=signals,
            task_retention=task_retention,
            fires=fires,
        )

    async def start(self, *, scheduler: bool = True, worker: bool = True) -> None:
        """Listen for other processes' hints, watch the database's health and start the
        worker (and, by default, the scheduler) as background tasks."""
        if not self._background:
            self._background = [
                asyncio.create_task(self._relay_wakeups(), name="spark-wakeups"),
                asyncio.create_task(self._watch_health(), name="spark-health"),
            ]
        if worker:
            await self.worker.start()
            if self.task_retention:
                self._start_background("spark-task-pruning", self._prune_tasks)
        if scheduler:
            await self.scheduler.start()
            self._start_background("spark-fire-pruning", self._prune_fires)

    def _start_background(self, name: str, work: Callable[[], Awaitable[int]]) -> None:
        """Run ``work`` now and every ``PRUNE_SECONDS`` in a background task called ``name``
        (once, however often ``start`` is called)."""
        if not any(task.get_name() == name for task in self._background):
            self._background.append(
                asyncio.create_task(self._every(name, work), name=name))

    @staticmethod
    async def _every(name: str, work: Callable[[], Awaitable[int]]) -> None:
        while True:
            try:
                done = await work()
                if done:
                    logger.info("%s: pruned %d records past their retention", name, done)
            except SparkError as exc:  # the store is away: the next round tries again
                raise_if_cancelled()
                logger.warning("%s failed: %s", name, exc)
            await asyncio.sleep(PRUNE_SECONDS)

    async def stop(self, *, grace: float = 10.0) -> None:
        """Stop firing schedules, let runs in flight finish for ``grace`` seconds, interrupt
        the rest."""
        await self.scheduler.stop()
        await self.worker.stop(grace)
        await cancel_and_wait(self._background)
        self._background = []

    def hurry(self) -> None:
        """Cut short the grace period of a ``stop`` under way: runs in flight are interrupted
        now (they are retried later if they have retries left)."""
        self.worker.hurry()

    @contextlib.asynccontextmanager
    async def running(
        self, *, scheduler: bool = True, grace: float = 10.0
    ) -> AsyncIterator["Spark"]:
        """Run the worker (and scheduler) for the duration of an ``async with`` block."""
        await self.start(scheduler=scheduler)
        try:
            yield self
        finally:
            await self.stop(grace=grace)

    def health(self) -> dict[str, str]:
        """The state of each part: ``database``, ``scheduler`` and ``worker``, from what this
        process already knows (the database is pinged in the background once a second)."""
        return {
            "database": "ok" if self._database_ok else "error",
            "scheduler": "running" if self.scheduler.running else "stopped",
            "worker": "running" if self.worker.running else "stopped",
        }

    async def _relay_wakeups(self) -> None:
        while True:
            try:
                await self.store.wakeups.listen(self._signals.deliver)
                return
            except SparkError as exc:  # the feed reconnects itself; this is a last resort
                raise_if_cancelled()
                logger.warning("Wake-up feed stopped (%s); restarting it", exc)
                await asyncio.sleep(1.0)

    async def _prune_fires(self) -> int:
        """Drop fire-ledger records past their retention."""
        return await self.fires.prune()

    async def _prune_tasks(self) -> int:
        """Drop finished tasks older than ``task_retention`` (judged by the store's clock)."""
        return await self.tasks.prune(older_than=self.task_retention) if self.task_retention else 0

    async def _watch_health(self) -> None:
        while True:
            ok = await self.store.ping()
            raise_if_cancelled()
            if ok != self._database_ok:
                log = logger.info if ok else logger.warning
                log("Database %s", "reachable again" if ok else "unreachable")
            self._database_ok = ok
            await asyncio.sleep(HEALTH_SECONDS)

    # -- shortcuts for library use -----------------------------------------------------------
    async def add_source(
        self,
        *,
        name: str,
        source_type: str,
        url: str,
        api_key: str | None = None,
        verify_tls: bool = True,
    ) -> Source:
        """Validate a server (health, version, key) and add it as a source."""
        return await self.sources.add(
            name=name, source_type=source_type, url=url, api_key=api_key, verify_tls=verify_tls
        )

    async def remote_flows(self, source_id: SourceId | None = None) -> list[RemoteListing]:
        """What one source (or every active source) offers to sync."""
        return await self.workflows.list_remote(source_id=source_id)

    async def sync(self, flow_id: str, *, source_id: SourceId | None = None) -> Workflow:
        """Copy a remote flow into the catalogue (again: update it in place)."""
        return await self.workflows.sync(flow_id, source_id=source_id)

    async def run(
        self,
        workflow_id: WorkflowId | str,
        input_data: str = "",
        *,
        wait: bool = True,
        timeout: float | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        tweaks: dict[str, Any] | None = None,
    ) -> Task:
        """Run a workflow through the worker; with ``wait``, return the finished task.

        The worker must be running (``start()`` or ``running()``), here or in another process
        on the same store. ``timeout`` limits the remote run, not the wait.
        """
        return await self.tasks.run(
            workflow_id,
            input_data=input_data,
            wait=wait,
            timeout=timeout,
            max_retries=max_retries,
            tweaks=tweaks,
        )

    async def wait(self, task_id: TaskId, *, timeout: float | None = None) -> Task:
        """The task once it is final, or as it stands after ``timeout`` seconds."""
        return await self.tasks.wait(task_id, timeout=timeout)

    async def schedule(
        self,
        workflow_id: WorkflowId | str,
        *,
        cron: str | None = None,
        every: str | None = None,
        at: str | None = None,
        input_value: str = "",
        timezone: str = "UTC",
        overlap_policy: OverlapPolicy = OverlapPolicy.SKIP,
        catchup_policy: CatchupPolicy = CatchupPolicy.LATEST,
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout: float | None = None,
    ) -> Schedule:
        """Run a workflow by itself: on a ``cron`` expression, ``every`` interval (``30s``,
        ``1h30m``) or once ``at`` an ISO-8601 time (or ``now``); give exactly one."""
        given = [
            (kind, expr)
            for kind, expr in (
                (ScheduleType.CRON, cron),
                (ScheduleType.INTERVAL, every),
                (ScheduleType.ONE_TIME, at),
            )
            if expr is not None
        ]
        if len(given) != 1:
            raise ValidationError(
                "Give exactly one of cron, every or at",
                errors=[("schedule_expr", "give exactly one of cron, every or at")],
            )
        schedule_type, schedule_expr = given[0]
        return await self.schedules.create(
            ScheduleFields(
                workflow_id=workflow_id,
                schedule_type=schedule_type,
                schedule_expr=schedule_expr,
                input_value=input_value,
                timezone=timezone,
                overlap_policy=overlap_policy,
                catchup_policy=catchup_policy,
                max_retries=max_retries,
                timeout=timeout,
            )
        )

    async def list_tasks(
        self,
        *,
        workflow_id: WorkflowId | None = None,
        schedule_id: ScheduleId | None = None,
        status: TaskStatus | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[Task]:
        """Tasks, newest first, optionally of one workflow, schedule or status."""
        filters = TaskFilter(workflow_id=workflow_id, schedule_id=schedule_id, status=status)
        return await self.tasks.list(filters, limit=limit, offset=offset)
