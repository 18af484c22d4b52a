"""What handlers receive: the services from ``app.state`` and the validated page.

Handlers name these by parameter (``sources: Sources``); the markers make that explicit. Each
service is provided by a function of no parameters reading the app's own state, and the page
bounds are plain query parameters (``Limit``, ``Offset``): Litestar resolves dependencies of
the same depth concurrently, in a task group, which cost a list request about a quarter of
its time in the profile, and a provider taking ``state`` has it copied into a new ``State``
on every request (a tenth of a kept list page's time).
"""

from typing import Annotated

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter

from spark_core.facade import Spark
from spark_core.services.fires import FireService
from spark_core.services.schedules import ScheduleService
from spark_core.services.sources import SourceService
from spark_core.services.tasks import TaskService
from spark_core.services.workflows import WorkflowService

DEFAULT_LIMIT = 50
MAX_LIMIT = 100

SparkFacade = NamedDependency[Spark]
Sources = NamedDependency[SourceService]
Workflows = NamedDependency[WorkflowService]
Tasks = NamedDependency[TaskService]
Schedules = NamedDependency[ScheduleService]
Fires = NamedDependency[FireService]
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description="Items per page (1-100)")]
"""The ``limit`` query parameter of a list (default ``DEFAULT_LIMIT``)."""
Offset = Annotated[int, QueryParameter(ge=0, description="Items to skip")]
"""The ``offset`` query parameter of a list (default 0)."""


def dependencies(state: State) -> dict[str, Provide]:
    """The providers of an app whose state is ``state``: the facade its lifespan (or the
    embedding program) put there, and its use cases."""

    def provide_spark() -> Spark:
        """The facade."""
        spark: Spark = state.spark
        return spark

    def provide_sources() -> SourceService:
        """The source use cases."""
        return provide_spark().sources

    def provide_workflows() -> WorkflowService:
        """The workflow use cases."""
        return provide_spark().workflows

    def provide_tasks() -> TaskService:
        """The task use cases."""
        return provide_spark().tasks

    def provide_schedules() -> ScheduleService:
        """The schedule use cases."""
        return provide_spark().schedules

    def provide_fires() -> FireService:
        """The fire-ledger use cases."""
        return provide_spark().fires

    return {
        "spark": Provide(provide_spark, sync_to_thread=False),
        "sources": Provide(provide_sources, sync_to_thread=False),
        "workflows": Provide(provide_workflows, sync_to_thread=False),
        "tasks": Provide(provide_tasks, sync_to_thread=False),
        "schedules": Provide(provide_schedules, sync_to_thread=False),
        "fires": Provide(provide_fires, sync_to_thread=False),
    }
