"""``FakeStore``: the ``Store`` port in memory, with the semantics of the SQLite and PostgreSQL
stores, plus the hooks a unit test needs to make the database misbehave.

The contract suite in ``tests/contract`` runs against it and every real store, so this fake
cannot drift. Its repositories share one ``_State``; each method runs without awaiting, so it is
one transaction, as the ports require.
"""

import asyncio
import builtins
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import msgspec

from spark_core.errors import (
    ConflictError,
    InvalidStateError,
    NotFoundError,
    StaleTargetError,
    StaleWriteError,
    StoreUnavailableError,
)
from spark_core.fires import FireCounters, FireOutcome, FireRecord
from spark_core.fires import count as count_fires
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
    end_last_attempt,
)
from spark_core.ports import (
    Clock,
    DueSchedules,
    FireLedger,
    IdKind,
    NextDue,
    NodeRegistry,
    RunTarget,
    ScheduleFilter,
    SchedulePatch,
    ScheduleRepository,
    SourceFilter,
    SourcePatch,
    SourceRepository,
    Store,
    TaskFilter,
    TaskOutcome,
    TaskQueue,
    TaskRepository,
    WakeUp,
    WakeUpFeed,
    WakeUpKind,
    WorkflowFilter,
    WorkflowPatch,
    WorkflowRepository,
    patch_fields,
)

S = TypeVar("S", bound=msgspec.Struct)
T = TypeVar("T")

SCHEMA_VERSION = 1


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


def _oldest_first(task: Task) -> tuple[datetime, str]:
    return task.created_at, task.id


ZERO = timedelta()


class _Lease(msgspec.Struct, kw_only=True):
    """Who runs a task, until when by the store's clock, and at which attempt."""

    owner: str
    until: datetime
    attempt: int


class _State:
    """Everything the fake store holds, shared by its repositories."""

    def __init__(self, clock: Clock, feed: "FakeWakeUpFeed") -> None:
        self.clock = clock
        self.feed = feed
        self.sources: dict[str, Source] = {}
        self.source_keys: dict[str, str | None] = {}
        self.workflows: dict[str, Workflow] = {}
        self.catalogue = 0
        """Raised by every change to a workflow or a source (the stores' catalogue version)."""
        self.schedules: dict[str, Schedule] = {}
        self.tasks: dict[str, Task] = {}
        self.leases: dict[str, _Lease] = {}
        self.fires: dict[tuple[str, datetime], FireRecord] = {}
        self.watched_ends: list[TaskId] = []
        """The tasks ``watch_end`` was asked for, in order."""
        self.broken = False
        self.failures = 0
        self.closed = False

    def enter(self) -> None:
        """Start an operation, failing it the way an unreachable database would."""
        if self.closed:
            raise StoreUnavailableError("The store is closed")
        if self.broken:
            raise StoreUnavailableError("The database does not answer (FakeStore.broken)")
        if self.failures:
            self.failures -= 1
            raise StoreUnavailableError("The database does not answer (FakeStore.fail_next)")

    def now(self) -> datetime:
        """The store's clock, which judges dueness and leases."""
        return _utc(self.clock.now())

    def source(self, source_id: str) -> Source:
        if source_id not in self.sources:
            raise NotFoundError(f"Source {source_id} not found")
        return self.sources[source_id]

    def workflow(self, workflow_id: str) -> Workflow:
        if workflow_id not in self.workflows:
            raise NotFoundError(f"Workflow {workflow_id} not found")
        return self.workflows[workflow_id]

    def schedule(self, schedule_id: str) -> Schedule:
        if schedule_id not in self.schedules:
            raise NotFoundError(f"Schedule {schedule_id} not found")
        return self.schedules[schedule_id]

    def task(self, task_id: str) -> Task:
        if task_id not in self.tasks:
            raise NotFoundError(f"Task {task_id} not found")
        return self.tasks[task_id]

    def insert_task(self, task: Task, *, hinted: bool = True) -> Task:
        self.workflow(task.workflow_id)
        if task.id in self.tasks:
            raise ConflictError(f"Task {task.id} already exists")
        if self.occasion_taken(task):
            raise ConflictError(
                f"Schedule {task.schedule_id} already has a task for {task.scheduled_for}")
        self.tasks[task.id] = _stored(task)
        if hinted and task.status is TaskStatus.PENDING:
            self.feed.publish(WakeUp(kind=WakeUpKind.WORK, id=task.id))
        return self.tasks[task.id]

    def drop_orphan_fires(self) -> None:
        """Fire records go with their schedule (the real stores cascade)."""
        self.fires = {key: record for key, record in self.fires.items()
                      if key[0] in self.schedules}

    def occasion_taken(self, task: Task) -> bool:
        """Whether a task of the same schedule for the same time exists (a unique key)."""
        if task.schedule_id is None or task.scheduled_for is None:
            return False
        scheduled_for = _utc(task.scheduled_for)
        return any(t.schedule_id == task.schedule_id and t.scheduled_for == scheduled_for
                   for t in self.tasks.values())

    def delete_workflow(self, workflow_id: str) -> WorkflowDeletion:
        self.workflow(workflow_id)
        schedules = [s.id for s in self.schedules.values() if s.workflow_id == workflow_id]
        tasks = [t.id for t in self.tasks.values() if t.workflow_id == workflow_id]
        for schedule_id in schedules:
            del self.schedules[schedule_id]
        for task_id in tasks:
            del self.tasks[task_id]
            self.leases.pop(task_id, None)
        del self.workflows[workflow_id]
        self.catalogue += 1
        self.drop_orphan_fires()
        return WorkflowDeletion(workflow_id=WorkflowId(workflow_id),
                                schedules_deleted=len(schedules), tasks_deleted=len(tasks))

    def finish(self, task: Task, outcome: TaskOutcome) -> None:
        """Write an attempt's outcome and clear its lease."""
        self.tasks[task.id] = _stored(outcome.applied_to(task))
        del self.leases[task.id]
        if outcome.status.is_final:
            self.feed.publish(WakeUp(kind=WakeUpKind.FINISHED, id=task.id))
        elif outcome.next_retry_at is None:
            self.feed.publish(WakeUp(kind=WakeUpKind.WORK, id=task.id))

    def running_at(self, task_id: str, attempt: int) -> _Lease | None:
        """The lease of a task still running at ``attempt``, if any."""
        task, lease = self.tasks.get(task_id), self.leases.get(task_id)
        if task is None or lease is None or task.status is not TaskStatus.RUNNING:
            return None
        return lease if lease.attempt == attempt else None


class FakeSourceRepository(SourceRepository):
    """Sources in a dict; sealed keys beside them."""

    def __init__(self, state: _State) -> None:
        self._state = state

    async def add(self, source: Source, *, sealed_key: str | None) -> Source:
        """Insert; ``ConflictError`` if a source with the same URL exists."""
        self._state.enter()
        self._check_url_free(source.id, source.url)
        if source.id in self._state.sources:
            raise ConflictError(f"Source {source.id} already exists")
        self._state.sources[source.id] = _stored(source)
        self._state.source_keys[source.id] = sealed_key
        self._state.catalogue += 1
        return self._state.sources[source.id]

    async def get(self, source_id: SourceId) -> Source:
        """One source by id."""
        self._state.enter()
        return self._state.source(source_id)

    async def find_by_url(self, url: str) -> Source | None:
        """The source with this URL, if any."""
        self._state.enter()
        return next((s for s in self._state.sources.values() if s.url == url), None)

    async def update(self, source_id: SourceId, patch: SourcePatch) -> Source:
        """Set the patch's fields; a new URL is written to the source's workflows too."""
        self._state.enter()
        source = self._state.source(source_id)
        fields = patch_fields(patch)
        sealed_key = fields.pop("sealed_key", msgspec.UNSET)
        if "url" in fields:
            self._check_url_free(source_id, fields["url"])
            for workflow in list(self._state.workflows.values()):
                if workflow.source_id == source_id:
                    self._state.workflows[workflow.id] = msgspec.structs.replace(
                        workflow, source=fields["url"])
        self._state.sources[source_id] = _stored(msgspec.structs.replace(source, **fields))
        if sealed_key is not msgspec.UNSET:
            self._state.source_keys[source_id] = sealed_key
        self._state.catalogue += 1
        return self._state.sources[source_id]

    async def get_key(self, source_id: SourceId) -> str | None:
        """The sealed API key of a source."""
        self._state.enter()
        self._state.source(source_id)
        return self._state.source_keys[source_id]

    async def delete(self, source_id: SourceId) -> SourceDeletion:
        """Delete a source with its workflows, their schedules and tasks."""
        self._state.enter()
        self._state.source(source_id)
        schedules = tasks = 0
        workflow_ids = [w.id for w in self._state.workflows.values() if w.source_id == source_id]
        for workflow_id in workflow_ids:
            deletion = self._state.delete_workflow(workflow_id)
            schedules += deletion.schedules_deleted
            tasks += deletion.tasks_deleted
        del self._state.sources[source_id], self._state.source_keys[source_id]
        self._state.catalogue += 1
        return SourceDeletion(source_id=source_id, workflows_deleted=len(workflow_ids),
                              schedules_deleted=schedules, tasks_deleted=tasks)

    async def list(self, filters: SourceFilter, *, limit: int, offset: int) -> Page[Source]:
        """Sources ordered by creation time."""
        self._state.enter()
        matching = [
            s for s in self._state.sources.values()
            if filters.status in (None, s.status)
            and filters.source_type in (None, s.source_type)
        ]
        return _page(matching, lambda s: (s.created_at, s.id), limit=limit, offset=offset)

    def _check_url_free(self, source_id: str, url: str) -> None:
        for other in self._state.sources.values():
            if other.url == url and other.id != source_id:
                raise ConflictError(f"A source with URL {url} already exists")


class FakeWorkflowRepository(WorkflowRepository):
    """Workflows in a dict; summaries computed from the tasks on every list."""

    def __init__(self, state: _State) -> None:
        self._state = state

    async def upsert(self, workflow: Workflow) -> Workflow:
        """Insert, or update in place the one with the same (source_id, remote_flow_id)."""
        self._state.enter()
        self._state.source(workflow.source_id)
        for existing in self._state.workflows.values():
            if (existing.source_id, existing.remote_flow_id) == (workflow.source_id,
                                                                 workflow.remote_flow_id):
                workflow = msgspec.structs.replace(workflow, id=existing.id,
                                                   created_at=existing.created_at,
                                                   max_concurrency=existing.max_concurrency,
                                                   webhook_url=existing.webhook_url)
                break
        self._state.workflows[workflow.id] = _stored(workflow)
        self._state.catalogue += 1
        return self._state.workflows[workflow.id]

    async def get(self, workflow_id: WorkflowId) -> Workflow:
        """One workflow by local id."""
        self._state.enter()
        return self._state.workflow(workflow_id)

    async def update(self, workflow_id: WorkflowId, patch: WorkflowPatch) -> Workflow:
        """Store the local settings the patch sets, with its ``updated_at``."""
        self._state.enter()
        workflow = msgspec.structs.replace(self._state.workflow(workflow_id),
                                           **patch_fields(patch))
        self._state.workflows[workflow_id] = _stored(workflow)
        self._state.catalogue += 1
        return self._state.workflows[workflow_id]

    async def run_target(self, id_or_remote_id: str, *,
                         remembered: bool = False) -> RunTarget:
        """The workflow by local or remote id (without its definition), its source and the
        source's sealed key, at the catalogue's version (read afresh, remembered or not)."""
        workflow = await self.find(id_or_remote_id, definition=False)
        if workflow is None:
            raise NotFoundError(f"Workflow {id_or_remote_id} not found")
        return RunTarget(workflow=workflow, source=self._state.source(workflow.source_id),
                         sealed_key=self._state.source_keys.get(workflow.source_id),
                         catalogue=self._state.catalogue)

    async def find(self, id_or_remote_id: str, *, definition: bool = True) -> Workflow | None:
        """A workflow by local id, else by remote flow id (first by creation time), without
        its ``data`` unless ``definition``."""
        self._state.enter()
        workflows = self._state.workflows
        found = workflows.get(WorkflowId(id_or_remote_id))
        if found is None:
            matching = [w for w in workflows.values() if w.remote_flow_id == id_or_remote_id]
            found = min(matching, key=lambda w: (w.created_at, w.id), default=None)
        if found is None or definition:
            return found
        return msgspec.structs.replace(found, data=None)

    async def delete(self, workflow_id: WorkflowId) -> WorkflowDeletion:
        """Delete a workflow with its schedules and tasks."""
        self._state.enter()
        return self._state.delete_workflow(workflow_id)

    async def list(self, filters: WorkflowFilter, *, limit: int,
                   offset: int) -> Page[WorkflowSummary]:
        """Workflows by name with ``latest_run`` and task counts."""
        self._state.enter()
        matching = [
            w for w in self._state.workflows.values()
            if filters.source_id in (None, w.source_id)
            and filters.source_url in (None, w.source)
            and filters.flow_type in (None, w.flow_type)
            and (filters.q is None or filters.q.casefold() in w.name.casefold())
        ]
        page = _page(matching, lambda w: (w.name, w.id), limit=limit, offset=offset)
        return Page(items=[self._summary(w) for w in page.items], total=page.total,
                    limit=limit, offset=offset)

    def _summary(self, workflow: Workflow) -> WorkflowSummary:
        tasks = [t for t in self._state.tasks.values() if t.workflow_id == workflow.id]
        newest = max(tasks, key=_oldest_first, default=None)
        return WorkflowSummary(
            workflow=workflow,
            latest_run="NEW" if newest is None else newest.status.value.upper(),
            task_count=len(tasks),
            failed_task_count=sum(t.status is TaskStatus.FAILED for t in tasks),
        )


class FakeScheduleRepository(ScheduleRepository):
    """Schedules in a dict, versioned for compare-and-set."""

    def __init__(self, state: _State) -> None:
        self._state = state

    async def add(self, schedule: Schedule) -> Schedule:
        """Insert at version 1; ``NotFoundError`` if its workflow does not exist."""
        self._state.enter()
        self._state.workflow(schedule.workflow_id)
        if schedule.id in self._state.schedules:
            raise ConflictError(f"Schedule {schedule.id} already exists")
        self._check_key_free(schedule.key, schedule.id)
        self._state.schedules[schedule.id] = _stored(msgspec.structs.replace(schedule, version=1))
        self._state.feed.publish(WakeUp(kind=WakeUpKind.SCHEDULES, id=schedule.id))
        return self._state.schedules[schedule.id]

    async def get(self, schedule_id: ScheduleId) -> Schedule:
        """One schedule by id."""
        self._state.enter()
        return self._state.schedule(schedule_id)

    async def update(self, schedule_id: ScheduleId, patch: SchedulePatch, *,
                     expected_version: int) -> Schedule:
        """Set the patch's fields if the schedule is still at ``expected_version``."""
        self._state.enter()
        schedule = self._state.schedule(schedule_id)
        if schedule.version != expected_version:
            raise StaleWriteError(
                f"Schedule {schedule_id} changed meanwhile (version {schedule.version}, "
                f"expected {expected_version})")
        fields = patch_fields(patch)
        if "workflow_id" in fields:
            self._state.workflow(fields["workflow_id"])
        self._check_key_free(fields.get("key"), schedule_id)
        self._write(schedule, fields)
        return self._state.schedules[schedule_id]

    async def delete(self, schedule_id: ScheduleId) -> None:
        """Delete a schedule; its tasks stay."""
        self._state.enter()
        self._state.schedule(schedule_id)
        del self._state.schedules[schedule_id]
        self._state.drop_orphan_fires()
        self._state.feed.publish(WakeUp(kind=WakeUpKind.SCHEDULES, id=schedule_id))

    async def due(self, *, limit: int) -> DueSchedules:
        """Active schedules whose ``next_run_at`` <= the store's now, earliest first."""
        self._state.enter()
        now = self._state.now()
        due = [s for s in self._active() if s.next_run_at is not None and s.next_run_at <= now]
        due.sort(key=lambda s: (s.next_run_at, s.id))
        return DueSchedules(now=now, schedules=due[:limit])

    async def next_due(self) -> NextDue:
        """The earliest ``next_run_at`` of any active schedule, with the store's now."""
        self._state.enter()
        times = [s.next_run_at for s in self._active() if s.next_run_at is not None]
        return NextDue(now=self._state.now(), at=min(times, default=None))

    async def fire(self, schedule_id: ScheduleId, patch: SchedulePatch, *,
                   expected_version: int, tasks: Sequence[Task],
                   fires: Sequence[FireRecord] = ()) -> bool:
        """Write the patch, insert ``tasks`` and write ``fires`` (replacing a record of the
        same time) only if the version is unchanged."""
        self._state.enter()
        schedule = self._state.schedules.get(schedule_id)
        if schedule is None or schedule.version != expected_version:
            return False
        for task in tasks:
            self._state.workflow(task.workflow_id)
            if task.id in self._state.tasks:
                raise ConflictError(f"Task {task.id} already exists")
        self._write(schedule, patch_fields(patch))
        for task in tasks:
            if not self._state.occasion_taken(task):
                self._state.insert_task(task)
        for record in fires:
            stored = _stored(record)
            self._state.fires[(schedule_id, stored.nominal_time)] = stored
        return True

    async def count_active_tasks(self, schedule_id: ScheduleId) -> tuple[int, int]:
        """(pending, running) task counts of a schedule."""
        self._state.enter()
        statuses = [t.status for t in self._state.tasks.values() if t.schedule_id == schedule_id]
        return statuses.count(TaskStatus.PENDING), statuses.count(TaskStatus.RUNNING)

    async def list(self, filters: ScheduleFilter, *, limit: int,
                   offset: int) -> Page[Schedule]:
        """Schedules ordered by creation time."""
        self._state.enter()
        matching = [
            s for s in self._state.schedules.values()
            if filters.workflow_id in (None, s.workflow_id) and filters.status in (None, s.status)
            and filters.key in (None, s.key)
        ]
        return _page(matching, lambda s: (s.created_at, s.id), limit=limit, offset=offset)

    def _check_key_free(self, key: str | None, schedule_id: ScheduleId) -> None:
        """``ConflictError`` if another schedule holds ``key`` (the stores' unique index)."""
        if key is not None and any(s.key == key and s.id != schedule_id
                                   for s in self._state.schedules.values()):
            raise ConflictError(f"A schedule with key {key!r} already exists")

    def _write(self, schedule: Schedule, fields: dict[str, Any]) -> None:
        self._state.schedules[schedule.id] = _stored(
            msgspec.structs.replace(schedule, **fields, version=schedule.version + 1))
        self._state.feed.publish(WakeUp(kind=WakeUpKind.SCHEDULES, id=schedule.id))

    def _active(self) -> builtins.list[Schedule]:
        return [s for s in self._state.schedules.values()
                if s.status is ScheduleStatus.ACTIVE and s.next_run_at is not None]


class FakeFireLedger(FireLedger):
    """Fire records in a dict keyed (schedule_id, nominal_time)."""

    def __init__(self, state: _State) -> None:
        self._state = state

    async def record(self, records: Sequence[FireRecord]) -> int:
        """Insert the records whose key is free and whose schedule exists."""
        self._state.enter()
        written = 0
        for record in map(_stored, records):
            key = (record.schedule_id, record.nominal_time)
            if record.schedule_id in self._state.schedules and key not in self._state.fires:
                self._state.fires[key] = record
                written += 1
        return written

    async def list(self, schedule_id: ScheduleId, *, outcome: FireOutcome | None = None,
                   until: datetime | None = None, limit: int,
                   offset: int) -> Page[FireRecord]:
        """A schedule's records, newest nominal time first."""
        self._state.enter()
        matching = [
            r for r in self._state.fires.values()
            if r.schedule_id == schedule_id and outcome in (None, r.outcome)
            and (until is None or r.nominal_time <= _utc(until))
        ]
        return _page(matching, lambda r: r.nominal_time, limit=limit, offset=offset,
                     reverse=True)

    async def counters(self, schedule_ids: Sequence[ScheduleId]
                       ) -> dict[ScheduleId, FireCounters]:
        """Each schedule's counters."""
        self._state.enter()
        by_schedule: dict[ScheduleId, list[FireRecord]] = {}
        for record in self._state.fires.values():
            if record.schedule_id in schedule_ids:
                by_schedule.setdefault(record.schedule_id, []).append(record)
        return {sid: count_fires(records) for sid, records in by_schedule.items()}

    async def prune(self, *, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` records decided before ``before``."""
        self._state.enter()
        old = [key for key, r in self._state.fires.items() if r.decided_at < _utc(before)]
        for key in old[:limit]:
            del self._state.fires[key]
        return len(old[:limit])


class FakeTaskRepository(TaskRepository):
    """Tasks in a dict."""

    def __init__(self, state: _State) -> None:
        self._state = state

    async def add(self, task: Task) -> Task:
        """Insert; ``NotFoundError`` if its workflow does not exist."""
        self._state.enter()
        return self._state.insert_task(task)

    async def get(self, task_id: TaskId) -> Task:
        """One task by id, with ``output_raw``."""
        self._state.enter()
        return self._state.task(task_id)

    async def watch_end(self, task_id: TaskId) -> bool:
        """Noted in ``watched_ends`` (this in-process store hints every end anyway);
        ``False`` when the task has ended or does not exist."""
        self._state.enter()
        self._state.watched_ends.append(task_id)
        task = self._state.tasks.get(task_id)
        return task is not None and not task.status.is_final

    async def cancel(self, task_id: TaskId, *, now: datetime) -> Task:
        """Move a pending or running task to ``cancelled``; ``InvalidStateError`` if final."""
        self._state.enter()
        task = self._state.task(task_id)
        if task.status.is_final:
            raise InvalidStateError(f"Task {task_id} already finished ({task.status})")
        attempts = task.attempts
        if task.status is TaskStatus.RUNNING:
            attempts = end_last_attempt(attempts, now, "cancelled")
        self._state.tasks[task_id] = _stored(msgspec.structs.replace(
            task, status=TaskStatus.CANCELLED, finished_at=now, updated_at=now,
            attempts=attempts,
        ))
        self._state.leases.pop(task_id, None)
        self._state.feed.publish(WakeUp(kind=WakeUpKind.CANCEL, id=task_id))
        self._state.feed.publish(WakeUp(kind=WakeUpKind.FINISHED, id=task_id))
        return self._state.tasks[task_id]

    async def delete(self, task_id: TaskId) -> None:
        """Delete a task."""
        self._state.enter()
        self._state.task(task_id)
        del self._state.tasks[task_id]
        self._state.leases.pop(task_id, None)

    async def list(self, filters: TaskFilter, *, limit: int, offset: int) -> Page[Task]:
        """Tasks newest first, without ``output_raw``."""
        self._state.enter()
        matching = [
            msgspec.structs.replace(t, output_raw=None, attempts=[])
            for t in self._state.tasks.values()
            if filters.workflow_id in (None, t.workflow_id)
            and filters.schedule_id in (None, t.schedule_id)
            and filters.status in (None, t.status)
            and (filters.q is None or any(
                filters.q.casefold() in (text or "").casefold()
                for text in (t.input_data, t.output_data, t.error)))
            and (filters.created_after is None or t.created_at >= filters.created_after)
            and (filters.created_before is None or t.created_at < filters.created_before)
            and (filters.updated_after is None or t.updated_at >= filters.updated_after)
        ]
        return _page(matching, _oldest_first, limit=limit, offset=offset, reverse=True)

    async def count_by_status(
        self, *, created_after: datetime | None = None
    ) -> dict[TaskStatus, int]:
        """Tasks by status, created at or after ``created_after`` when given."""
        self._state.enter()
        counts: dict[TaskStatus, int] = {}
        for task in self._state.tasks.values():
            if created_after is None or task.created_at >= created_after:
                counts[task.status] = counts.get(task.status, 0) + 1
        return counts

    async def prune(self, *, before: datetime | None = None,
                    older_than: timedelta | None = None, limit: int) -> int:
        """Delete up to ``limit`` finished tasks that finished before the cutoff."""
        self._state.enter()
        if (before is None) == (older_than is None):
            raise ValueError("Give exactly one of before and older_than")
        cutoff = before if before is not None else self._state.now() - (older_than or ZERO)
        gone = sorted(
            (t for t in self._state.tasks.values() if t.status.is_final
             and t.finished_at is not None and t.finished_at < cutoff),
            key=lambda t: t.finished_at or cutoff,
        )[:max(limit, 0)]
        for task in gone:
            del self._state.tasks[task.id]
        return len(gone)


class FakeTaskQueue(TaskQueue):
    """Leases beside the tasks, judged by the store's clock; expired means ``until < now``."""

    def __init__(self, state: _State) -> None:
        self._state = state

    async def claim(self, *, owner: str, limit: int, lease_seconds: float,
                    task_ids: Sequence[TaskId] | None = None) -> list[Task]:
        """Move up to ``limit`` runnable tasks to ``running`` under ``owner``'s lease."""
        self._state.enter()
        return self._claim_now(owner=owner, limit=limit, lease_seconds=lease_seconds,
                               task_ids=task_ids)

    async def add_claimed(self, task: Task, *, owner: str, lease_seconds: float,
                          target: RunTarget | None = None) -> Task:
        """Insert ``task`` and claim it for ``owner`` at once when it is runnable within its
        workflow's limit; the task as stored (hinted as work only when left pending).
        ``StaleTargetError`` when ``target`` was read before the catalogue's last change."""
        self._state.enter()
        if target is not None and target.catalogue not in (None, self._state.catalogue):
            raise StaleTargetError(f"The catalogue changed since workflow "
                                   f"{target.workflow.id}'s run target was read")
        added = self._state.insert_task(task, hinted=False)
        claimed = self._claim_now(owner=owner, limit=1, lease_seconds=lease_seconds,
                                  task_ids=[task.id])
        if claimed:
            return claimed[0]
        self._state.feed.publish(WakeUp(kind=WakeUpKind.WORK, id=task.id))
        return added

    def _claim_now(self, *, owner: str, limit: int, lease_seconds: float,
                   task_ids: Sequence[TaskId] | None) -> list[Task]:
        if limit <= 0:
            return []
        now = self._state.now()
        candidates = sorted(
            (t for t in self._state.tasks.values() if t.status is TaskStatus.PENDING
             and (t.next_retry_at is None or t.next_retry_at <= now)
             and (task_ids is None or t.id in task_ids)),
            key=_oldest_first,
        )
        free = self._free_slots()
        runnable = []
        for task in candidates:
            if len(runnable) == limit:
                break
            if task.workflow_id in free:
                if free[task.workflow_id] <= 0:
                    continue
                free[task.workflow_id] -= 1
            runnable.append(task)
        claimed = []
        for task in runnable:
            running = _stored(task.claimed_at(now))
            self._state.tasks[task.id] = running
            self._state.leases[task.id] = _Lease(
                owner=owner, until=now + timedelta(seconds=lease_seconds), attempt=running.tries)
            claimed.append(running)
        return claimed

    def _free_slots(self) -> dict[WorkflowId, int]:
        """Per limited workflow, how many more of its tasks may run now."""
        free = {w.id: w.max_concurrency for w in self._state.workflows.values()
                if w.max_concurrency is not None}
        for task in self._state.tasks.values():
            if task.status is TaskStatus.RUNNING and task.workflow_id in free:
                free[task.workflow_id] -= 1
        return free

    async def renew(self, *, owner: str, lease_seconds: float,
                    task_ids: Sequence[TaskId]) -> list[TaskId]:
        """Extend ``owner``'s unexpired leases on ``task_ids``; returns the ids it still
        holds."""
        self._state.enter()
        now = self._state.now()
        held = []
        for task in sorted(self._state.tasks.values(), key=_oldest_first):
            if task.id not in task_ids:
                continue
            lease = self._state.leases.get(task.id)
            if (task.status is TaskStatus.RUNNING and lease is not None and lease.owner == owner
                    and lease.until >= now):
                lease.until = now + timedelta(seconds=lease_seconds)
                held.append(task.id)
        return held

    async def held(self, *, owner: str, task_ids: Sequence[TaskId]) -> list[TaskId]:
        """Which of ``task_ids`` are still running under ``owner``'s unexpired lease."""
        self._state.enter()
        now, leases = self._state.now(), self._state.leases
        return [
            task_id for task_id in task_ids
            if task_id in leases and leases[task_id].owner == owner
            and leases[task_id].until >= now
            and self._state.tasks[task_id].status is TaskStatus.RUNNING
        ]

    async def release(self, task: Task, outcome: TaskOutcome, *, owner: str) -> Task | None:
        """Write an attempt's outcome if ``task`` still runs under ``owner`` at its attempt;
        the task as written (this store's row, which the contract checks is what the port
        promises), or ``None``."""
        self._state.enter()
        lease = self._state.running_at(task.id, task.tries)
        if lease is None or lease.owner != owner:
            return None
        self._state.finish(self._state.tasks[task.id], outcome)
        return self._state.tasks[task.id]

    async def expired(self, *, limit: int, owners: Sequence[str] = ()) -> list[Task]:
        """Running tasks whose lease ran out, or whose owner is one of ``owners``."""
        self._state.enter()
        now = self._state.now()
        expired = [
            t for t in self._state.tasks.values()
            if t.status is TaskStatus.RUNNING and t.id in self._state.leases
            and self._abandoned(self._state.leases[t.id], now, owners)
        ]
        return sorted(expired, key=_oldest_first)[:limit]

    async def recover(self, task_id: TaskId, outcome: TaskOutcome, *, attempt: int,
                      owners: Sequence[str] = ()) -> bool:
        """Write an abandoned attempt's outcome unless the task was re-claimed meanwhile."""
        self._state.enter()
        lease = self._state.running_at(task_id, attempt)
        if lease is None or not self._abandoned(lease, self._state.now(), owners):
            return False
        self._state.finish(self._state.tasks[task_id], outcome)
        return True

    @staticmethod
    def _abandoned(lease: _Lease, now: datetime, owners: Sequence[str]) -> bool:
        return lease.until < now or lease.owner in owners


class FakeNodeRegistry(NodeRegistry):
    """Registered owners; a test declares one gone with ``mark_dead``."""

    def __init__(self, state: _State) -> None:
        self._state = state
        self.registered: set[str] = set()
        self._dead: set[str] = set()

    async def register(self, owner: str) -> None:
        """Announce ``owner`` as alive."""
        self._state.enter()
        self.registered.add(owner)
        self._dead.discard(owner)

    async def unregister(self, owner: str) -> None:
        """Withdraw ``owner``."""
        self._state.enter()
        self.registered.discard(owner)
        self._dead.discard(owner)

    async def dead(self) -> list[str]:
        """Registered owners a test has marked dead, sorted."""
        self._state.enter()
        return sorted(self.registered & self._dead)

    def mark_dead(self, owner: str) -> None:
        """Test hook: the process registered as ``owner`` is gone (its session ended)."""
        self.registered.add(owner)
        self._dead.add(owner)


class FakeWakeUpFeed(WakeUpFeed):
    """Hints delivered in-process to every listener; ``published`` records them all."""

    def __init__(self, *, poll_seconds: float = 1.0) -> None:
        self.published: list[WakeUp] = []
        self.muted = False
        self._poll_seconds = poll_seconds
        self._listeners: list[asyncio.Queue[WakeUp]] = []

    @property
    def poll_seconds(self) -> float:
        """How often consumers should poll as a backstop (settable by a test)."""
        return self._poll_seconds

    @poll_seconds.setter
    def poll_seconds(self, value: float) -> None:
        self._poll_seconds = value

    def publish(self, wakeup: WakeUp) -> None:
        """Deliver ``wakeup`` to every listener, unless ``muted`` (a hint lost on the way)."""
        self.published.append(wakeup)
        if not self.muted:
            for queue in self._listeners:
                queue.put_nowait(wakeup)

    def reconnect(self) -> None:
        """Test hook: every listener reconnects and, having maybe missed hints, hears
        ``WORK`` and ``SCHEDULES``."""
        for queue in self._listeners:
            for kind in (WakeUpKind.WORK, WakeUpKind.SCHEDULES):
                queue.put_nowait(WakeUp(kind=kind))

    @property
    def listeners(self) -> int:
        """How many ``listen`` calls are running."""
        return len(self._listeners)

    async def listen(self, deliver: Callable[[WakeUp], None]) -> None:
        """Deliver ``WORK`` and ``SCHEDULES``, then every published hint, until cancelled."""
        queue: asyncio.Queue[WakeUp] = asyncio.Queue()
        for kind in (WakeUpKind.WORK, WakeUpKind.SCHEDULES):
            queue.put_nowait(WakeUp(kind=kind))
        self._listeners.append(queue)
        try:
            while True:
                deliver(await queue.get())
        finally:
            self._listeners.remove(queue)


class FakeStore(Store):
    """Spark's state in dicts of Structs, judged by ``clock``; see the module docstring.

    Test hooks: ``broken = True`` makes every operation raise ``StoreUnavailableError`` (and
    ``ping`` answer false) until set back; ``fail_next(n)`` fails only the next ``n``;
    ``nodes.mark_dead(owner)``; ``wakeups.publish``, ``wakeups.muted`` and ``wakeups.reconnect``.
    It works without ``open`` (memory is always there) but not after ``close``.
    """

    def __init__(self, clock: Clock) -> None:
        self.wakeups: FakeWakeUpFeed = FakeWakeUpFeed()
        self._state = _State(clock, self.wakeups)
        self.sources: FakeSourceRepository = FakeSourceRepository(self._state)
        self.workflows: FakeWorkflowRepository = FakeWorkflowRepository(self._state)
        self.schedules: FakeScheduleRepository = FakeScheduleRepository(self._state)
        self.fires: FakeFireLedger = FakeFireLedger(self._state)
        self.tasks: FakeTaskRepository = FakeTaskRepository(self._state)
        self.queue: FakeTaskQueue = FakeTaskQueue(self._state)
        self.nodes: FakeNodeRegistry = FakeNodeRegistry(self._state)
        self.opened = False

    @property
    def description(self) -> str:
        """Where the data lives: nowhere but this process."""
        return "memory"

    @property
    def broken(self) -> bool:
        """Whether the database is gone (every operation fails) until set back to false."""
        return self._state.broken

    @broken.setter
    def broken(self, value: bool) -> None:
        self._state.broken = value

    @property
    def watched_ends(self) -> list[TaskId]:
        """The tasks ``tasks.watch_end`` was asked for, in order."""
        return self._state.watched_ends

    def fail_next(self, count: int = 1) -> None:
        """Make the next ``count`` operations fail with ``StoreUnavailableError``."""
        self._state.failures = count

    async def open(self) -> None:
        """Connect (nothing to do but the failure hooks)."""
        self._state.closed = False
        self._state.enter()
        self.opened = True

    async def migrate(self) -> int:
        """Nothing to migrate; the fake's schema version."""
        self._state.enter()
        return SCHEMA_VERSION

    async def ping(self) -> bool:
        """False while the fake is broken, closed or failing its next operation."""
        try:
            self._state.enter()
        except StoreUnavailableError:
            return False
        return True

    async def ids_with_prefix(self, kind: IdKind, prefix: str, *, limit: int) -> list[str]:
        """Up to ``limit`` ids of ``kind`` starting with ``prefix``, in id order."""
        self._state.enter()
        held = {IdKind.SOURCE: self._state.sources, IdKind.WORKFLOW: self._state.workflows,
                IdKind.SCHEDULE: self._state.schedules, IdKind.TASK: self._state.tasks}[kind]
        return sorted(key for key in held if key.startswith(prefix))[:limit]

    async def close(self) -> None:
        """After this, every operation fails."""
        self._state.closed = True
        self.opened = False
