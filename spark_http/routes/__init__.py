"""One controller per resource."""

from spark_http.routes.health import HealthController, InfoController
from spark_http.routes.metrics import MetricsController
from spark_http.routes.schedules import ScheduleController
from spark_http.routes.sources import SourceController
from spark_http.routes.tasks import TaskController
from spark_http.routes.workflows import WorkflowController

CONTROLLERS = [
    HealthController,
    InfoController,
    SourceController,
    WorkflowController,
    ScheduleController,
    TaskController,
    MetricsController,
]

__all__ = ["CONTROLLERS"]
