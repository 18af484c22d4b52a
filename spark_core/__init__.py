"""Spark's core: the domain, its ports and use cases. Pure Python; knows no technology.

The public names below are the library API: ``Spark`` (the facade), the domain types, the ports
an adapter implements, and the errors. Names are imported on first use, so that importing one
core module (as the CLI does) stays cheap.
"""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spark_core.errors import (
        ConflictError,
        InvalidScheduleError,
        InvalidStateError,
        NotFoundError,
        RemoteNotFoundError,
        RemoteRunError,
        RunTimeoutError,
        SourceError,
        SourceProtocolError,
        SourceRejectedError,
        SourceUnavailableError,
        SourceValidationError,
        SparkError,
        TaskCancelledError,
        UnknownSourceTypeError,
        ValidationError,
    )
    from spark_core.facade import Spark
    from spark_core.models import (
        CatchupPolicy,
        FlowType,
        OverlapPolicy,
        Page,
        RemoteFlow,
        RunRequest,
        RunResult,
        Schedule,
        ScheduleId,
        ScheduleStatus,
        ScheduleType,
        Source,
        SourceDeletion,
        SourceId,
        SourceStatus,
        SourceType,
        Task,
        TaskId,
        TaskStatus,
        Workflow,
        WorkflowDeletion,
        WorkflowId,
        WorkflowSummary,
    )
    from spark_core.ports import (
        Clock,
        ScheduleFilter,
        SecretBox,
        SourceConnector,
        SourceFilter,
        Store,
        TaskFilter,
        WorkflowFilter,
        WorkflowSource,
    )
    from spark_core.scheduler import Scheduler
    from spark_core.services.schedules import ScheduleChanges, ScheduleFields, ScheduleService
    from spark_core.services.sources import SourceChanges, SourceService
    from spark_core.services.tasks import TaskService
    from spark_core.services.workflows import RemoteListing, WorkflowService
    from spark_core.signals import TaskSignals
    from spark_core.worker import RetryPolicy, Worker

__all__ = [
    "CatchupPolicy",
    "Clock",
    "ConflictError",
    "FlowType",
    "InvalidScheduleError",
    "InvalidStateError",
    "NotFoundError",
    "OverlapPolicy",
    "Page",
    "RemoteFlow",
    "RemoteListing",
    "RemoteNotFoundError",
    "RemoteRunError",
    "RetryPolicy",
    "RunRequest",
    "RunResult",
    "RunTimeoutError",
    "Schedule",
    "ScheduleChanges",
    "ScheduleFields",
    "ScheduleFilter",
    "ScheduleId",
    "ScheduleService",
    "ScheduleStatus",
    "ScheduleType",
    "Scheduler",
    "SecretBox",
    "Source",
    "SourceChanges",
    "SourceConnector",
    "SourceDeletion",
    "SourceError",
    "SourceFilter",
    "SourceId",
    "SourceProtocolError",
    "SourceRejectedError",
    "SourceService",
    "SourceStatus",
    "SourceType",
    "SourceUnavailableError",
    "SourceValidationError",
    "Spark",
    "SparkError",
    "Store",
    "Task",
    "TaskCancelledError",
    "TaskFilter",
    "TaskId",
    "TaskService",
    "TaskSignals",
    "TaskStatus",
    "UnknownSourceTypeError",
    "ValidationError",
    "Worker",
    "Workflow",
    "WorkflowDeletion",
    "WorkflowFilter",
    "WorkflowId",
    "WorkflowService",
    "WorkflowSource",
    "WorkflowSummary",
]

_HOMES = {
    "CatchupPolicy": "models",
    "Clock": "ports",
    "ConflictError": "errors",
    "FlowType": "models",
    "InvalidScheduleError": "errors",
    "InvalidStateError": "errors",
    "NotFoundError": "errors",
    "OverlapPolicy": "models",
    "Page": "models",
    "RemoteFlow": "models",
    "RemoteListing": "services.workflows",
    "RemoteNotFoundError": "errors",
    "RemoteRunError": "errors",
    "RetryPolicy": "worker",
    "RunRequest": "models",
    "RunResult": "models",
    "RunTimeoutError": "errors",
    "Schedule": "models",
    "ScheduleChanges": "services.schedules",
    "ScheduleFields": "services.schedules",
    "ScheduleFilter": "ports",
    "ScheduleId": "models",
    "ScheduleService": "services.schedules",
    "ScheduleStatus": "models",
    "ScheduleType": "models",
    "Scheduler": "scheduler",
    "SecretBox": "ports",
    "Source": "models",
    "SourceChanges": "services.sources",
    "SourceConnector": "ports",
    "SourceDeletion": "models",
    "SourceError": "errors",
    "SourceFilter": "ports",
    "SourceId": "models",
    "SourceProtocolError": "errors",
    "SourceRejectedError": "errors",
    "SourceService": "services.sources",
    "SourceStatus": "models",
    "SourceType": "models",
    "SourceUnavailableError": "errors",
    "SourceValidationError": "errors",
    "Spark": "facade",
    "SparkError": "errors",
    "Store": "ports",
    "Task": "models",
    "TaskCancelledError": "errors",
    "TaskFilter": "ports",
    "TaskId": "models",
    "TaskService": "services.tasks",
    "TaskSignals": "signals",
    "TaskStatus": "models",
    "UnknownSourceTypeError": "errors",
    "ValidationError": "errors",
    "Worker": "worker",
    "Workflow": "models",
    "WorkflowDeletion": "models",
    "WorkflowFilter": "ports",
    "WorkflowId": "models",
    "WorkflowService": "services.workflows",
    "WorkflowSource": "ports",
    "WorkflowSummary": "models",
}


def __getattr__(name: str) -> object:
    """Import a public name from its module on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
