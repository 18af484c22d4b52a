"""The ``Spark`` facade: every use case behind one object, for entrypoints and library use.

The services (``spark.sources``, ``spark.workflows``, ``spark.tasks``, ``spark.schedules``) hold
every operation; the awaitable shortcuts on the facade cover what a program does most: add a
source, sync a flow, run it and wait for the answer, schedule it, list its tasks.
"""

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from spark_core.errors import ValidationError
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
from spark_core.ports import Clock, SecretBox, SourceConnector, Store, TaskFilter
from spark_core.scheduler import Scheduler
from spark_core.services.schedules import ScheduleFields, ScheduleService
from spark_core.services.sources import SourceService
from spark_core.services.tasks import DEFAULT_MAX_RETRIES, TaskService
from spark_core.services.workflows import RemoteListing, WorkflowService
from spark_core.signals import TaskSignals
from spark_core.worker import Worker


class Spark:
    """Sources, workflows, tasks and schedules, plus the worker and scheduler that run them.

    Build it through ``spark_adapters.container`` (or by hand with your own adapters); call
    ``start()`` to run scheduled and queued work in the current event loop and ``stop()`` to
    finish it cleanly.
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
    ) -> None:
        self.sources = sources
        self.workflows = workflows
        self.tasks = tasks
        self.schedules = schedules
        self.worker = worker
        self.scheduler = scheduler
        self.store = store

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
    ) -> "Spark":
        """Wire every service, the worker and the scheduler over your own adapters."""
        signals = TaskSignals()
        sources = SourceService(store=store, connector=connector, secrets=secrets, clock=clock)
        workflows = WorkflowService(store=store, sources=sources, clock=clock)
        schedules = ScheduleService(
            store=store, workflows=workflows, clock=clock, signals=signals
        )
        return cls(
            sources=sources,
            workflows=workflows,
            tasks=TaskService(store=store, workflows=workflows, clock=clock, signals=signals),
            schedules=schedules,
            worker=Worker(
                store=store, sources=sources, clock=clock, signals=signals,
                concurrency=concurrency, default_timeout=default_timeout,
            ),
            scheduler=Scheduler(store=store, schedules=schedules, clock=clock, signals=signals),
            store=store,
        )

    async def start(self, *, scheduler: bool = True) -> None:
        """Start the worker (and, by default, the scheduler) as background tasks."""
        await self.worker.start()
        if scheduler:
            await self.scheduler.start()

    async def stop(self, *, grace: float = 10.0) -> None:
        """Stop firing schedules, let runs in flight finish for ``grace`` seconds, interrupt
        the rest."""
        await self.scheduler.stop()
        await self.worker.stop(grace)

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
        """The state of each part: ``database``, ``scheduler`` and ``worker``."""
        return {
            "database": "ok" if self.store.is_healthy() else "error",
            "scheduler": "running" if self.scheduler.running else "stopped",
            "worker": "running" if self.worker.running else "stopped",
        }

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
        return self.schedules.create(
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
        return self.tasks.list(filters, limit=limit, offset=offset)
