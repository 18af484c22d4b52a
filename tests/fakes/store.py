"""``FakeStore``: the ``Store`` port in memory, with the same semantics as ``SqliteStore``.

The contract suite in ``tests/contract`` runs against both, so this fake cannot drift.
"""

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

from spark_core.errors import ConflictError, InvalidStateError, NotFoundError
from spark_core.models import (
    Page,
    Schedule,
    ScheduleId,
    ScheduleStatus,
    Source,
    SourceDeletion,
    SourceId,
    Task,
    TaskId,
    TaskStatus,
    Workflow,
    WorkflowDeletion,
    WorkflowId,
    WorkflowSummary,
)
from spark_core.ports import ScheduleFilter, SourceFilter, Store, TaskFilter, WorkflowFilter

S = TypeVar("S", bound=msgspec.Struct)
T = TypeVar("T")


def _stored(item: S) -> S:
    """A detached copy with every datetime in UTC, as a real store hands rows back."""
    copy = msgspec.json.decode(msgspec.json.encode(item), type=type(item))
    changes = {
        name: _utc(value) for name, value in msgspec.structs.asdict(item).items()
        if isinstance(value, datetime)
    }
    return msgspec.structs.replace(copy, **changes)


def _utc(value: datetime) -> datetime:
    return (value.replace(tzinfo=UTC) if value.tzinfo is None else value).astimezone(UTC)


def _page(items: Iterable[T], key: Callable[[T], Any], *, limit: int, offset: int,
          reverse: bool = False) -> Page[T]:
    ordered = sorted(items, key=key, reverse=reverse)
    return Page(items=ordered[offset:offset + limit], total=len(ordered), limit=limit,
                offset=offset)


class FakeStore(Store):
    """Spark's state in dicts of Structs; every method behaves like the SQLite store's."""

    def __init__(self) -> None:
        self.sources: dict[str, Source] = {}
        self.source_keys: dict[str, str | None] = {}
        self.workflows: dict[str, Workflow] = {}
        self.schedules: dict[str, Schedule] = {}
        self.tasks: dict[str, Task] = {}
        self.leases: dict[str, tuple[str, datetime]] = {}

    # -- sources -----------------------------------------------------------------------------
    def add_source(self, source: Source, *, sealed_key: str | None) -> Source:
        """Insert; ``ConflictError`` if a source with the same URL exists."""
        self._check_url_free(source)
        if source.id in self.sources:
            raise ConflictError(f"Source {source.id} already exists")
        self.sources[source.id] = _stored(source)
        self.source_keys[source.id] = sealed_key
        return self.sources[source.id]

    def get_source(self, source_id: SourceId) -> Source:
        """One source by id."""
        if source_id not in self.sources:
            raise NotFoundError(f"Source {source_id} not found")
        return self.sources[source_id]

    def find_source_by_url(self, url: str) -> Source | None:
        """The source with this URL, if any."""
        return next((s for s in self.sources.values() if s.url == url), None)

    def list_sources(self, filters: SourceFilter, *, limit: int, offset: int) -> Page[Source]:
        """Sources ordered by creation time."""
        matching = [
            s for s in self.sources.values()
            if filters.status in (None, s.status)
            and filters.source_type in (None, s.source_type)
        ]
        return _page(matching, lambda s: (s.created_at, s.id), limit=limit, offset=offset)

    def update_source(self, source: Source, *, sealed_key: str | None = None,
                      replace_key: bool = False) -> Source:
        """Overwrite a source; its sealed key changes only when ``replace_key`` is true."""
        self.get_source(source.id)
        self._check_url_free(source)
        self.sources[source.id] = _stored(source)
        if replace_key:
            self.source_keys[source.id] = sealed_key
        return self.sources[source.id]

    def get_source_key(self, source_id: SourceId) -> str | None:
        """The sealed API key of a source."""
        self.get_source(source_id)
        return self.source_keys[source_id]

    def delete_source(self, source_id: SourceId) -> SourceDeletion:
        """Delete a source with its workflows, their schedules and tasks."""
        self.get_source(source_id)
        schedules = tasks = 0
        workflow_ids = [w.id for w in self.workflows.values() if w.source_id == source_id]
        for workflow_id in workflow_ids:
            deletion = self.delete_workflow(workflow_id)
            schedules += deletion.schedules_deleted
            tasks += deletion.tasks_deleted
        del self.sources[source_id], self.source_keys[source_id]
        return SourceDeletion(source_id=source_id, workflows_deleted=len(workflow_ids),
                              schedules_deleted=schedules, tasks_deleted=tasks)

    def _check_url_free(self, source: Source) -> None:
        for other in self.sources.values():
            if other.url == source.url and other.id != source.id:
                raise ConflictError(f"A source with URL {source.url} already exists")

    # -- workflows ---------------------------------------------------------------------------
    def upsert_workflow(self, workflow: Workflow) -> Workflow:
        """Insert, or update in place the one with the same (source_id, remote_flow_id)."""
        self.get_source(workflow.source_id)
        for existing in self.workflows.values():
            if (existing.source_id, existing.remote_flow_id) == (workflow.source_id,
                                                                 workflow.remote_flow_id):
                workflow = msgspec.structs.replace(workflow, id=existing.id,
                                                   created_at=existing.created_at)
                break
        self.workflows[workflow.id] = _stored(workflow)
        return self.workflows[workflow.id]

    def get_workflow(self, workflow_id: WorkflowId) -> Workflow:
        """One workflow by local id."""
        if workflow_id not in self.workflows:
            raise NotFoundError(f"Workflow {workflow_id} not found")
        return self.workflows[workflow_id]

    def find_workflow(self, id_or_remote_id: str) -> Workflow | None:
        """A workflow by local id, else by remote flow id (first by creation time)."""
        if id_or_remote_id in self.workflows:
            return self.workflows[id_or_remote_id]
        matching = [w for w in self.workflows.values() if w.remote_flow_id == id_or_remote_id]
        return min(matching, key=lambda w: (w.created_at, w.id), default=None)

    def list_workflows(self, filters: WorkflowFilter, *, limit: int,
                       offset: int) -> Page[WorkflowSummary]:
        """Workflows by name with ``latest_run`` and task counts."""
        matching = [
            w for w in self.workflows.values()
            if filters.source_id in (None, w.source_id)
            and filters.source_url in (None, w.source)
            and filters.flow_type in (None, w.flow_type)
            and (filters.q is None or filters.q.casefold() in w.name.casefold())
        ]
        page = _page(matching, lambda w: (w.name, w.id), limit=limit, offset=offset)
        return Page(items=[self._summary(w) for w in page.items], total=page.total,
                    limit=limit, offset=offset)

    def _summary(self, workflow: Workflow) -> WorkflowSummary:
        tasks = [t for t in self.tasks.values() if t.workflow_id == workflow.id]
        newest = max(tasks, key=lambda t: (t.created_at, t.id), default=None)
        return WorkflowSummary(
            workflow=workflow,
            latest_run="NEW" if newest is None else newest.status.value.upper(),
            task_count=len(tasks),
            failed_task_count=sum(t.status is TaskStatus.FAILED for t in tasks),
        )

    def delete_workflow(self, workflow_id: WorkflowId) -> WorkflowDeletion:
        """Delete a workflow with its schedules and tasks."""
        self.get_workflow(workflow_id)
        schedules = [s.id for s in self.schedules.values() if s.workflow_id == workflow_id]
        tasks = [t.id for t in self.tasks.values() if t.workflow_id == workflow_id]
        for schedule_id in schedules:
            del self.schedules[schedule_id]
        for task_id in tasks:
            del self.tasks[task_id]
            self.leases.pop(task_id, None)
        del self.workflows[workflow_id]
        return WorkflowDeletion(workflow_id=workflow_id, schedules_deleted=len(schedules),
                                tasks_deleted=len(tasks))

    # -- schedules ---------------------------------------------------------------------------
    def add_schedule(self, schedule: Schedule) -> Schedule:
        """Insert; ``NotFoundError`` if its workflow does not exist."""
        self.get_workflow(schedule.workflow_id)
        if schedule.id in self.schedules:
            raise ConflictError(f"Schedule {schedule.id} already exists")
        self.schedules[schedule.id] = _stored(schedule)
        return self.schedules[schedule.id]

    def get_schedule(self, schedule_id: ScheduleId) -> Schedule:
        """One schedule by id."""
        if schedule_id not in self.schedules:
            raise NotFoundError(f"Schedule {schedule_id} not found")
        return self.schedules[schedule_id]

    def list_schedules(self, filters: ScheduleFilter, *, limit: int,
                       offset: int) -> Page[Schedule]:
        """Schedules ordered by creation time."""
        matching = [
            s for s in self.schedules.values()
            if filters.workflow_id in (None, s.workflow_id) and filters.status in (None, s.status)
        ]
        return _page(matching, lambda s: (s.created_at, s.id), limit=limit, offset=offset)

    def update_schedule(self, schedule: Schedule) -> Schedule:
        """Overwrite a schedule (whatever its ``next_run_at``)."""
        self.get_schedule(schedule.id)
        self.get_workflow(schedule.workflow_id)
        self.schedules[schedule.id] = _stored(schedule)
        return self.schedules[schedule.id]

    def delete_schedule(self, schedule_id: ScheduleId) -> None:
        """Delete a schedule; its tasks stay."""
        self.get_schedule(schedule_id)
        del self.schedules[schedule_id]

    def due_schedules(self, now: datetime, *, limit: int) -> list[Schedule]:
        """Active schedules whose ``next_run_at`` <= ``now``, earliest first."""
        due = [s for s in self._active_schedules()
               if s.next_run_at is not None and s.next_run_at <= now]
        return sorted(due, key=lambda s: (s.next_run_at, s.id))[:limit]

    def next_due_at(self) -> datetime | None:
        """The earliest ``next_run_at`` of any active schedule."""
        times = [s.next_run_at for s in self._active_schedules() if s.next_run_at is not None]
        return min(times, default=None)

    def _active_schedules(self) -> list[Schedule]:
        return [s for s in self.schedules.values()
                if s.status is ScheduleStatus.ACTIVE and s.next_run_at is not None]

    def fire_schedule(self, schedule: Schedule, *, expected_next_run_at: datetime,
                      tasks: Sequence[Task]) -> bool:
        """Overwrite ``schedule`` and insert ``tasks`` only if ``next_run_at`` is unchanged."""
        stored = self.schedules.get(schedule.id)
        if stored is None or stored.next_run_at != expected_next_run_at:
            return False
        for task in tasks:
            if task.id in self.tasks:
                raise ConflictError(f"Task {task.id} already exists")
        self.schedules[schedule.id] = _stored(schedule)
        for task in tasks:
            self.tasks[task.id] = _stored(task)
        return True

    def count_active_tasks(self, schedule_id: ScheduleId) -> tuple[int, int]:
        """(pending, running) task counts of a schedule."""
        statuses = [t.status for t in self.tasks.values() if t.schedule_id == schedule_id]
        return statuses.count(TaskStatus.PENDING), statuses.count(TaskStatus.RUNNING)

    # -- tasks -------------------------------------------------------------------------------
    def add_task(self, task: Task) -> Task:
        """Insert; ``NotFoundError`` if its workflow does not exist."""
        self.get_workflow(task.workflow_id)
        if task.id in self.tasks:
            raise ConflictError(f"Task {task.id} already exists")
        self.tasks[task.id] = _stored(task)
        return self.tasks[task.id]

    def get_task(self, task_id: TaskId) -> Task:
        """One task by id, with ``output_raw``."""
        if task_id not in self.tasks:
            raise NotFoundError(f"Task {task_id} not found")
        return self.tasks[task_id]

    def list_tasks(self, filters: TaskFilter, *, limit: int, offset: int) -> Page[Task]:
        """Tasks newest first, without ``output_raw``."""
        matching = [
            msgspec.structs.replace(t, output_raw=None) for t in self.tasks.values()
            if filters.workflow_id in (None, t.workflow_id)
            and filters.schedule_id in (None, t.schedule_id)
            and filters.status in (None, t.status)
        ]
        return _page(matching, lambda t: (t.created_at, t.id), limit=limit, offset=offset,
                     reverse=True)

    def update_task(self, task: Task) -> Task:
        """Overwrite a task; a lease it holds is kept."""
        self.get_task(task.id)
        self.get_workflow(task.workflow_id)
        self.tasks[task.id] = _stored(task)
        return self.tasks[task.id]

    def delete_task(self, task_id: TaskId) -> None:
        """Delete a task."""
        self.get_task(task_id)
        del self.tasks[task_id]
        self.leases.pop(task_id, None)

    def claim_tasks(self, now: datetime, *, owner: str, lease_until: datetime,
                    limit: int, task_ids: Sequence[TaskId] | None = None) -> list[Task]:
        """Move up to ``limit`` runnable tasks to ``running`` under ``owner``'s lease."""
        runnable = sorted(
            (t for t in self.tasks.values() if t.status is TaskStatus.PENDING
             and (t.next_retry_at is None or t.next_retry_at <= now)
             and (task_ids is None or t.id in task_ids)),
            key=lambda t: (t.created_at, t.id),
        )[:limit]
        claimed = []
        for task in runnable:
            running = _stored(msgspec.structs.replace(
                task, status=TaskStatus.RUNNING, started_at=now, tries=task.tries + 1,
                updated_at=now,
            ))
            self.tasks[task.id] = running
            self.leases[task.id] = (owner, _utc(lease_until))
            claimed.append(running)
        return claimed

    def renew_leases(self, owner: str, lease_until: datetime) -> list[TaskId]:
        """Extend ``owner``'s leases; returns the ids of the running tasks it still holds."""
        held = sorted(
            (t for t in self.tasks.values() if t.status is TaskStatus.RUNNING
             and self.leases.get(t.id, ("", None))[0] == owner),
            key=lambda t: (t.created_at, t.id),
        )
        for task in held:
            self.leases[task.id] = (owner, _utc(lease_until))
        return [task.id for task in held]

    def expired_leases(self, now: datetime) -> list[Task]:
        """Running tasks whose lease ran out before ``now``, oldest first."""
        expired = [
            t for t in self.tasks.values()
            if t.status is TaskStatus.RUNNING and t.id in self.leases
            and self.leases[t.id][1] < now
        ]
        return sorted(expired, key=lambda t: (t.created_at, t.id))

    def cancel_task(self, task_id: TaskId, now: datetime) -> Task:
        """Move a pending or running task to ``cancelled``; ``InvalidStateError`` if final."""
        task = self.get_task(task_id)
        if task.status.is_final:
            raise InvalidStateError(f"Task {task_id} already finished ({task.status})")
        self.tasks[task_id] = _stored(msgspec.structs.replace(
            task, status=TaskStatus.CANCELLED, finished_at=now, updated_at=now,
        ))
        self.leases.pop(task_id, None)
        return self.tasks[task_id]

    def release_task(self, task: Task, *, owner: str | None) -> bool:
        """Overwrite a running task held by ``owner`` (or, if ``None``, whose lease had expired
        by ``task.updated_at``), clearing the lease."""
        stored = self.tasks.get(task.id)
        if stored is None or stored.status is not TaskStatus.RUNNING:
            return False
        holder, expires = self.leases.get(task.id, ("", None))
        if owner is not None and holder != owner:
            return False
        if owner is None and (expires is None or expires >= _utc(task.updated_at)):
            return False
        self.tasks[task.id] = _stored(task)
        self.leases.pop(task.id, None)
        return True

    def is_healthy(self) -> bool:
        """Always true: memory does not go away."""
        return True
