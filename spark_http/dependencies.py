"""What handlers receive: the services from ``app.state`` and the validated page.

Handlers name these by parameter (``sources: Sources``); the markers make that explicit.
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
from spark_http.schemas import Pagination

DEFAULT_LIMIT = 50
MAX_LIMIT = 100

SparkFacade = NamedDependency[Spark]
Sources = NamedDependency[SourceService]
Workflows = NamedDependency[WorkflowService]
Tasks = NamedDependency[TaskService]
Schedules = NamedDependency[ScheduleService]
Fires = NamedDependency[FireService]
Page = NamedDependency[Pagination]


def provide_spark(state: State) -> Spark:
    """The facade the lifespan built."""
    spark: Spark = state.spark
    return spark


def provide_sources(spark: SparkFacade) -> SourceService:
    """The source use cases."""
    return spark.sources


def provide_workflows(spark: SparkFacade) -> WorkflowService:
    """The workflow use cases."""
    return spark.workflows


def provide_tasks(spark: SparkFacade) -> TaskService:
    """The task use cases."""
    return spark.tasks


def provide_schedules(spark: SparkFacade) -> ScheduleService:
    """The schedule use cases."""
    return spark.schedules


def provide_fires(spark: SparkFacade) -> FireService:
    """The fire-ledger use cases."""
    return spark.fires


def provide_pagination(
    limit: Annotated[
        int, QueryParameter(ge=1, le=MAX_LIMIT, description="Items per page (1-100)")
    ] = DEFAULT_LIMIT,
    offset: Annotated[int, QueryParameter(ge=0, description="Items to skip")] = 0,
) -> Pagination:
    """The page a list request asks for, validated (a 400 names the field)."""
    return Pagination(limit=limit, offset=offset)


DEPENDENCIES = {
    "spark": Provide(provide_spark, sync_to_thread=False),
    "sources": Provide(provide_sources, sync_to_thread=False),
    "workflows": Provide(provide_workflows, sync_to_thread=False),
    "tasks": Provide(provide_tasks, sync_to_thread=False),
    "schedules": Provide(provide_schedules, sync_to_thread=False),
    "fires": Provide(provide_fires, sync_to_thread=False),
    "pagination": Provide(provide_pagination, sync_to_thread=False),
}
