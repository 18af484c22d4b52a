"""Builders for the contract suite: records at minutes after ``T0``, added through the ports."""

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from spark_core.models import (
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
    new_id,
)
from spark_core.ports import SchedulePatch, Store, TaskOutcome

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LEASE = 300.0


def at(minutes: float) -> datetime:
    """``T0`` plus ``minutes``."""
    return T0 + timedelta(minutes=minutes)


def assert_utc(item: msgspec.Struct) -> None:
    """Every datetime field of ``item`` is timezone-aware UTC."""
    for name, value in msgspec.structs.asdict(item).items():
        if isinstance(value, datetime):
            assert value.utcoffset() == timedelta(0), f"{name} is {value!r}"


async def make_source(store: Store, *, url: str = "http://langflow.local", created: float = 0,
                      sealed_key: str | None = "sealed", **changes: Any) -> Source:
    """Add a source created ``created`` minutes after ``T0``."""
    source = Source(id=SourceId(new_id()), name="LangFlow", source_type="langflow", url=url,
                    created_at=at(created), updated_at=at(created))
    return await store.sources.add(msgspec.structs.replace(source, **changes),
                                   sealed_key=sealed_key)


async def make_workflow(store: Store, source: Source, *, remote_id: str = "flow-1",
                        name: str = "Flow", created: float = 0, **changes: Any) -> Workflow:
    """Upsert a workflow of ``source``."""
    workflow = Workflow(id=WorkflowId(new_id()), source_id=source.id, source=source.url,
                        remote_flow_id=remote_id, name=name, flow_type="langflow",
                        created_at=at(created), updated_at=at(created))
    return await store.workflows.upsert(msgspec.structs.replace(workflow, **changes))


async def a_workflow(store: Store) -> Workflow:
    """A workflow on a fresh source."""
    return await make_workflow(store, await make_source(store))


def new_schedule(workflow: Workflow, *, next_run: float | None = 10, created: float = 0,
                 **changes: Any) -> Schedule:
    """A schedule of ``workflow`` (not yet stored) next due ``next_run`` minutes after ``T0``."""
    schedule = Schedule(id=ScheduleId(new_id()), workflow_id=workflow.id,
                        schedule_type=ScheduleType.INTERVAL, schedule_expr="10m",
                        next_run_at=None if next_run is None else at(next_run), start_at=T0,
                        created_at=at(created), updated_at=at(created))
    return msgspec.structs.replace(schedule, **changes)


async def make_schedule(store: Store, workflow: Workflow, **kwargs: Any) -> Schedule:
    """Add a schedule of ``workflow``."""
    return await store.schedules.add(new_schedule(workflow, **kwargs))


def fired(minutes: float, *, next_run: float | None) -> SchedulePatch:
    """The patch a scheduler writes when firing the occasion at ``minutes``."""
    return SchedulePatch(updated_at=at(minutes), last_run_at=at(minutes),
                         next_run_at=None if next_run is None else at(next_run))


def new_task(workflow: Workflow, *, created: float = 0, **changes: Any) -> Task:
    """A pending task of ``workflow`` (not yet stored) created ``created`` minutes after ``T0``."""
    task = Task(id=TaskId(new_id()), workflow_id=workflow.id, input_data="hello",
                created_at=at(created), updated_at=at(created))
    return msgspec.structs.replace(task, **changes)


async def make_task(store: Store, workflow: Workflow, **kwargs: Any) -> Task:
    """Add a task of ``workflow``."""
    return await store.tasks.add(new_task(workflow, **kwargs))


def outcome(status: TaskStatus, minutes: float, **changes: Any) -> TaskOutcome:
    """An attempt's outcome written at ``minutes``; final statuses are stamped finished."""
    finished = at(minutes) if status.is_final else None
    return msgspec.structs.replace(
        TaskOutcome(status=status, finished_at=finished, updated_at=at(minutes)), **changes)
