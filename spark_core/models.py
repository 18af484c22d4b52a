"""Spark's domain: sources, workflows, schedules and tasks.

Every entity is an immutable ``msgspec.Struct``; services build changed copies with
``msgspec.structs.replace``. Datetimes are always timezone-aware UTC.
"""

import enum
import uuid
from datetime import datetime
from typing import Any, Generic, NewType, TypeVar

import msgspec

SourceId = NewType("SourceId", str)
WorkflowId = NewType("WorkflowId", str)
ScheduleId = NewType("ScheduleId", str)
TaskId = NewType("TaskId", str)

T = TypeVar("T")


def new_id() -> str:
    """A fresh random UUID as a string, the form every Spark id takes."""
    return str(uuid.uuid4())


class SourceType(enum.StrEnum):
    """The kinds of remote server Spark ships adapters for (others may be registered)."""

    LANGFLOW = "langflow"
    HIVE = "automagik-hive"


class SourceStatus(enum.StrEnum):
    """Whether a source answered its last check."""

    ACTIVE = "active"
    INACTIVE = "inactive"


class FlowType(enum.StrEnum):
    """What kind of remote runnable a workflow is."""

    LANGFLOW = "langflow"
    HIVE_AGENT = "hive_agent"
    HIVE_TEAM = "hive_team"
    HIVE_WORKFLOW = "hive_workflow"


class ScheduleType(enum.StrEnum):
    """How a schedule's expression is read."""

    CRON = "cron"
    INTERVAL = "interval"
    ONE_TIME = "one-time"


class ScheduleStatus(enum.StrEnum):
    """Whether a schedule fires."""

    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"


class OverlapPolicy(enum.StrEnum):
    """What a schedule does when its previous run has not finished."""

    SKIP = "skip"
    ALLOW = "allow"
    BUFFER_ONE = "buffer_one"


class CatchupPolicy(enum.StrEnum):
    """What a schedule does with fire times missed during downtime or a pause."""

    LATEST = "latest"
    NONE = "none"
    ALL = "all"


class TaskStatus(enum.StrEnum):
    """Where a task is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True once the task will never change status again by itself."""
        return self in _FINAL_STATUSES


_FINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


class Source(msgspec.Struct, frozen=True, kw_only=True):
    """A server hosting workflows. Its API key lives sealed in the store, never here."""

    id: SourceId
    name: str
    source_type: str
    url: str
    status: SourceStatus = SourceStatus.ACTIVE
    version_info: dict[str, Any] = msgspec.field(default_factory=dict)
    verify_tls: bool = True
    created_at: datetime
    updated_at: datetime


class RemoteFlow(msgspec.Struct, frozen=True, kw_only=True):
    """A flow, agent, team or workflow as a source reports it."""

    remote_id: str
    name: str
    flow_type: str
    description: str | None = None
    data: dict[str, Any] | None = None
    folder_id: str | None = None
    folder_name: str | None = None
    icon: str | None = None
    icon_bg_color: str | None = None
    liked: bool = False
    tags: list[str] = msgspec.field(default_factory=list)
    flow_version: int = 1
    is_component: bool = False
    input_component: str | None = None
    output_component: str | None = None


class Workflow(msgspec.Struct, frozen=True, kw_only=True):
    """A remote runnable synced into the local catalogue; unique per (source, remote id)."""

    id: WorkflowId
    source_id: SourceId
    source: str
    remote_flow_id: str
    name: str
    flow_type: str
    description: str | None = None
    input_component: str | None = None
    output_component: str | None = None
    data: dict[str, Any] | None = None
    folder_id: str | None = None
    folder_name: str | None = None
    icon: str | None = None
    icon_bg_color: str | None = None
    liked: bool = False
    tags: list[str] = msgspec.field(default_factory=list)
    flow_version: int = 1
    is_component: bool = False
    created_at: datetime
    updated_at: datetime
    max_concurrency: int | None = None
    """At most this many of its runs are ``running`` at once, across all nodes; the others wait
    ``pending``. None: no limit. Set locally; syncing again keeps it."""
    webhook_url: str | None = None
    """Where its failed and recovered runs are announced, besides the global webhook. Set
    locally; syncing again keeps it."""


class WorkflowSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A catalogue entry with its run statistics, as the store computes them in one query."""

    workflow: Workflow
    latest_run: str
    task_count: int
    failed_task_count: int


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    """When a workflow runs by itself. ``next_run_at`` is what the scheduler fires from."""

    id: ScheduleId
    workflow_id: WorkflowId
    schedule_type: ScheduleType
    schedule_expr: str
    input_value: str = ""
    timezone: str = "UTC"
    status: ScheduleStatus = ScheduleStatus.ACTIVE
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    overlap_policy: OverlapPolicy = OverlapPolicy.SKIP
    catchup_policy: CatchupPolicy = CatchupPolicy.LATEST
    max_retries: int = 3
    timeout: float | None = None
    key: str | None = None
    end_at: datetime | None = None
    max_runs: int | None = None
    run_count: int = 0
    jitter: str | None = None
    pause_after_failures: int | None = None
    consecutive_failures: int = 0
    note: str | None = None
    start_at: datetime
    version: int = 1
    created_at: datetime
    updated_at: datetime


class TaskAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt of a task: when it started, when it ended (``None`` while it runs) and the
    error it ended with (``None`` when it succeeded)."""

    attempt: int
    started_at: datetime
    finished_at: datetime | None = None
    error: str | None = None


def end_last_attempt(attempts: list[TaskAttempt], ended: datetime,
                     error: str | None) -> list[TaskAttempt]:
    """``attempts`` with the last one ended at ``ended`` with ``error`` (none: unchanged), as a
    written outcome or a cancel leaves the history."""
    if not attempts:
        return attempts
    return [*attempts[:-1], msgspec.structs.replace(attempts[-1], finished_at=ended,
                                                    error=error)]


class Task(msgspec.Struct, frozen=True, kw_only=True):
    """One execution of a workflow, with its input, answer, error and timing.

    ``started_at`` is the first attempt's start; ``attempts`` records every attempt (read one
    task for it: lists leave it empty, as they leave out ``output_raw``).
    """

    id: TaskId
    workflow_id: WorkflowId
    schedule_id: ScheduleId | None = None
    status: TaskStatus = TaskStatus.PENDING
    input_data: str = ""
    output_data: str | None = None
    output_raw: Any = None
    error: str | None = None
    tries: int = 0
    max_retries: int = 3
    next_retry_at: datetime | None = None
    scheduled_for: datetime | None = None
    timeout: float | None = None
    session_id: str | None = None
    tweaks: dict[str, Any] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: list[TaskAttempt] = msgspec.field(default_factory=list)
    created_at: datetime
    updated_at: datetime

    def claimed_at(self, now: datetime) -> "Task":
        """This task as a claim at ``now`` leaves it: running, one more try, started now
        unless it had started, its new attempt (number and start) appended."""
        tries = self.tries + 1
        return msgspec.structs.replace(
            self, status=TaskStatus.RUNNING, tries=tries, started_at=self.started_at or now,
            updated_at=now, attempts=[*self.attempts, TaskAttempt(attempt=tries, started_at=now)])


class RunRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What a source adapter needs to run one remote flow once."""

    remote_flow_id: str
    flow_type: str
    input_value: str
    session_id: str
    tweaks: dict[str, Any] | None = None
    input_component: str | None = None
    output_component: str | None = None
    timeout: float


class RunResult(msgspec.Struct, frozen=True, kw_only=True):
    """A finished remote run: the extracted answer text and the full response."""

    output_text: str | None
    raw: Any


class PastRun(msgspec.Struct, frozen=True, kw_only=True):
    """What a source remembers of a run it was sent: when it began, and how it ended.

    ``result`` is the answer of a run that finished well; ``failed`` says it ended without
    one; neither means the source is still running it.
    """

    started_at: datetime | None = None
    result: RunResult | None = None
    failed: bool = False

    @property
    def running(self) -> bool:
        """True while the source has the run but no end of it."""
        return self.result is None and not self.failed


class Page(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """One page of a list, with the total across all pages."""

    items: list[T]
    total: int
    limit: int
    offset: int

    @property
    def has_more(self) -> bool:
        """True when items exist past this page."""
        return self.offset + len(self.items) < self.total


class SourceDeletion(msgspec.Struct, frozen=True, kw_only=True):
    """What deleting a source removed with it."""

    source_id: SourceId
    workflows_deleted: int
    schedules_deleted: int
    tasks_deleted: int


class WorkflowDeletion(msgspec.Struct, frozen=True, kw_only=True):
    """What deleting a workflow removed with it."""

    workflow_id: WorkflowId
    schedules_deleted: int
    tasks_deleted: int


class RunEventKind(enum.StrEnum):
    """What a run notification says: the run failed for good, or a workflow's run completed
    right after one or more failed runs."""

    FAILED = "failed"
    RECOVERED = "recovered"


class RunEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A notification about one run's final outcome (the body a webhook receives).

    ``previous_task_id`` names the failed run a ``recovered`` run follows."""

    event: RunEventKind
    task_id: TaskId
    workflow_id: WorkflowId
    schedule_id: ScheduleId | None
    status: TaskStatus
    error: str | None
    attempts: int
    finished_at: datetime | None
    previous_task_id: TaskId | None = None
