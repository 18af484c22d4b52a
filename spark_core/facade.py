"""The ``Spark`` facade: every use case behind one object, for entrypoints and library use."""

from spark_core.ports import Store
from spark_core.scheduler import Scheduler
from spark_core.services.schedules import ScheduleService
from spark_core.services.sources import SourceService
from spark_core.services.tasks import TaskService
from spark_core.services.workflows import WorkflowService
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

    def health(self) -> dict[str, str]:
        """The state of each part: ``database``, ``scheduler`` and ``worker``."""
        return {
            "database": "ok" if self.store.is_healthy() else "error",
            "scheduler": "running" if self.scheduler.running else "stopped",
            "worker": "running" if self.worker.running else "stopped",
        }
