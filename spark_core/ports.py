"""The ports the core needs, named for their role. Adapters implement them; tests fake them.

The store is synchronous on purpose: the embedded store is SQLite on local disk, where one short
transaction costs microseconds, far less than a hop to a thread pool. Every method is one
transaction. Methods that change a row return the row as stored.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import msgspec

from spark_core.models import (
    Page,
    RemoteFlow,
    RunRequest,
    RunResult,
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


class Clock(Protocol):
    """Tells the time and waits; a settable fake makes scheduling tests exact and instant."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time (may be woken early by cancellation)."""
        ...


class SecretBox(Protocol):
    """Seals secrets (source API keys) for storage at rest and opens them again."""

    def seal(self, plaintext: str) -> str:
        """Encrypt ``plaintext`` into an opaque printable token."""
        ...

    def open(self, token: str) -> str:
        """Decrypt a token made by ``seal``; raises ``SparkError`` if it was tampered with."""
        ...


class WorkflowSource(Protocol):
    """One remote server (LangFlow, Hive, …) seen through the operations Spark needs."""

    async def check(self) -> dict[str, Any]:
        """Health, then version, then an authenticated listing; returns the version info.

        Raises ``SourceUnavailableError`` (unreachable, unhealthy) or ``SourceRejectedError``
        (the key is refused).
        """
        ...

    async def list_flows(self) -> list[RemoteFlow]:
        """Every runnable the source offers (components excluded)."""
        ...

    async def get_flow(self, remote_id: str) -> RemoteFlow:
        """One runnable with its full definition; ``RemoteNotFoundError`` if unknown."""
        ...

    async def run(self, request: RunRequest) -> RunResult:
        """Run once and return the answer; raises a ``SourceError`` subclass on failure."""
        ...


class SourceConnector(Protocol):
    """Builds a ``WorkflowSource`` for a source record and its (opened) API key."""

    def source_types(self) -> Sequence[str]:
        """The source types this connector can build clients for."""
        ...

    def connect(self, source: Source, api_key: str | None) -> WorkflowSource:
        """A client for ``source``; ``UnknownSourceTypeError`` if its type is not supported."""
        ...


class SourceFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Filters for listing sources."""

    status: str | None = None
    source_type: str | None = None


class WorkflowFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Filters for listing workflows; ``q`` matches names case-insensitively."""

    source_id: SourceId | None = None
    source_url: str | None = None
    flow_type: str | None = None
    q: str | None = None


class ScheduleFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Filters for listing schedules."""

    workflow_id: WorkflowId | None = None
    status: ScheduleStatus | None = None


class TaskFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Filters for listing tasks (always newest first)."""

    workflow_id: WorkflowId | None = None
    schedule_id: ScheduleId | None = None
    status: TaskStatus | None = None


class Store(Protocol):
    """Durable state. Every method is one transaction; unknown ids raise ``NotFoundError``."""

    # -- sources -----------------------------------------------------------------------------
    def add_source(self, source: Source, *, sealed_key: str | None) -> Source:
        """Insert; ``ConflictError`` if a source with the same URL exists."""
        ...

    def get_source(self, source_id: SourceId) -> Source:
        """One source by id."""
        ...

    def find_source_by_url(self, url: str) -> Source | None:
        """The source with this (normalised) URL, if any."""
        ...

    def list_sources(self, filters: SourceFilter, *, limit: int, offset: int) -> Page[Source]:
        """Sources ordered by creation time."""
        ...

    def update_source(self, source: Source, *, sealed_key: str | None = None,
                      replace_key: bool = False) -> Source:
        """Overwrite a source; its sealed key changes only when ``replace_key`` is true.

        ``ConflictError`` if the new URL belongs to another source.
        """
        ...

    def get_source_key(self, source_id: SourceId) -> str | None:
        """The sealed API key of a source (``None`` if it has none)."""
        ...

    def delete_source(self, source_id: SourceId) -> SourceDeletion:
        """Delete a source with its workflows, their schedules and tasks."""
        ...

    # -- workflows ---------------------------------------------------------------------------
    def upsert_workflow(self, workflow: Workflow) -> Workflow:
        """Insert, or update in place the one with the same (source_id, remote_flow_id).

        On update the stored row keeps its ``id`` and ``created_at``.
        """
        ...

    def get_workflow(self, workflow_id: WorkflowId) -> Workflow:
        """One workflow by local id."""
        ...

    def find_workflow(self, id_or_remote_id: str) -> Workflow | None:
        """A workflow by local id, else by remote flow id (first by creation time)."""
        ...

    def list_workflows(self, filters: WorkflowFilter, *, limit: int,
                       offset: int) -> Page[WorkflowSummary]:
        """Workflows by name with ``latest_run`` and task counts, computed in one query."""
        ...

    def delete_workflow(self, workflow_id: WorkflowId) -> WorkflowDeletion:
        """Delete a workflow with its schedules and tasks."""
        ...

    # -- schedules ---------------------------------------------------------------------------
    def add_schedule(self, schedule: Schedule) -> Schedule:
        """Insert; ``NotFoundError`` if its workflow does not exist."""
        ...

    def get_schedule(self, schedule_id: ScheduleId) -> Schedule:
        """One schedule by id."""
        ...

    def list_schedules(self, filters: ScheduleFilter, *, limit: int,
                       offset: int) -> Page[Schedule]:
        """Schedules ordered by creation time."""
        ...

    def update_schedule(self, schedule: Schedule) -> Schedule:
        """Overwrite a schedule (whatever its ``next_run_at``)."""
        ...

    def delete_schedule(self, schedule_id: ScheduleId) -> None:
        """Delete a schedule; its tasks stay, with ``schedule_id`` kept for history."""
        ...

    def due_schedules(self, now: datetime, *, limit: int) -> list[Schedule]:
        """Active schedules whose ``next_run_at`` <= ``now``, earliest first (index-backed)."""
        ...

    def next_due_at(self) -> datetime | None:
        """The earliest ``next_run_at`` of any active schedule."""
        ...

    def fire_schedule(self, schedule: Schedule, *, expected_next_run_at: datetime,
                      tasks: Sequence[Task]) -> bool:
        """Atomically: if the stored schedule still has ``expected_next_run_at``, overwrite it
        with ``schedule`` and insert ``tasks``; else change nothing.

        Returns whether this caller won. This compare-and-set is what keeps two schedulers on one
        store from firing the same (schedule, time) twice.
        """
        ...

    def count_active_tasks(self, schedule_id: ScheduleId) -> tuple[int, int]:
        """(pending, running) task counts of a schedule, for its overlap policy."""
        ...

    # -- tasks -------------------------------------------------------------------------------
    def add_task(self, task: Task) -> Task:
        """Insert; ``NotFoundError`` if its workflow does not exist."""
        ...

    def get_task(self, task_id: TaskId) -> Task:
        """One task by id, with ``output_raw``."""
        ...

    def list_tasks(self, filters: TaskFilter, *, limit: int, offset: int) -> Page[Task]:
        """Tasks newest first (``created_at`` descending), without ``output_raw``."""
        ...

    def update_task(self, task: Task) -> Task:
        """Overwrite a task."""
        ...

    def delete_task(self, task_id: TaskId) -> None:
        """Delete a task."""
        ...

    def claim_tasks(self, now: datetime, *, owner: str, lease_until: datetime,
                    limit: int, task_ids: Sequence[TaskId] | None = None) -> list[Task]:
        """Atomically move up to ``limit`` runnable tasks (pending, ``next_retry_at`` null or
        <= now; among ``task_ids`` when given) to ``running`` under ``owner``'s lease, oldest
        first; sets ``started_at`` and increments ``tries``. Two claimers never get the same
        task."""
        ...

    def renew_leases(self, owner: str, lease_until: datetime) -> list[TaskId]:
        """Extend the leases of every task ``owner`` is running; returns the ids still held
        (a task missing from the answer was cancelled or taken over: stop running it)."""
        ...

    def expired_leases(self, now: datetime) -> list[Task]:
        """Running tasks whose lease ran out (their process died); ordered oldest first."""
        ...

    def cancel_task(self, task_id: TaskId, now: datetime) -> Task:
        """Atomically move a pending or running task to ``cancelled`` (clearing any lease) and
        return it; ``InvalidStateError`` if it already finished."""
        ...

    def release_task(self, task: Task, *, owner: str | None) -> bool:
        """Overwrite a running task (to pending for a retry, or to a final state) if it is still
        held by ``owner``; with ``owner`` ``None`` (recovering a dead process's task), only if
        its lease had expired by ``task.updated_at``, so a task that another worker re-claimed
        meanwhile is never overwritten. Clears the lease. Returns whether it was written."""
        ...

    def is_healthy(self) -> bool:
        """True when the store answers a trivial query."""
        ...
