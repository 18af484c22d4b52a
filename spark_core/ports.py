"""The ports the core needs, named for their role. Adapters implement them; tests fake them.

Persistence is async throughout and split per aggregate: ``SourceRepository``,
``WorkflowRepository``, ``ScheduleRepository`` and ``TaskRepository`` hold the records,
``FireLedger`` keeps one record per nominal fire time the scheduler considered,
``TaskQueue`` hands running work to workers under fenced leases, ``NodeRegistry`` tells which
Spark processes are gone, and ``WakeUpFeed`` carries hints between processes. A ``Store`` bundles
them with a lifecycle (open, migrate, close) that the composition root manages.

Rules every adapter keeps (the contract suite in ``tests/contract`` checks them):

- No blind overwrite. Updates are field-level (a ``…Patch`` names the fields it sets) or
  compare-and-set on a version (schedules) or on the lease owner and attempt (tasks).
- Ownership and dueness are judged by the store's clock (PostgreSQL's ``now()``), never by the
  calling node's, so a node with a wrong clock neither double-fires nor steals leases. Calls that
  answer such questions return the store's ``now`` alongside.
- Unknown ids raise ``NotFoundError``; each method is one transaction.
"""

import enum
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import msgspec

from spark_core.fires import FireCounters, FireOutcome, FireRecord
from spark_core.models import (
    Page,
    PastRun,
    RemoteFlow,
    RunEvent,
    RunRequest,
    RunResult,
    Schedule,
    ScheduleId,
    ScheduleStatus,
    Source,
    SourceDeletion,
    SourceId,
    SourceStatus,
    Task,
    TaskId,
    TaskStatus,
    Workflow,
    WorkflowDeletion,
    WorkflowId,
    WorkflowSummary,
    end_last_attempt,
)

UNSET = msgspec.UNSET
Unset = msgspec.UnsetType


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


@runtime_checkable
class RunHistory(Protocol):
    """A ``WorkflowSource`` that can also say whether it already ran a request.

    Sources that keep their runs by session (LangFlow's message history, Agno's session runs)
    implement it; the worker asks before re-running a run whose process died mid-call, so a
    flow with side effects does not run twice.
    """

    async def find_run(self, request: RunRequest, *, since: datetime | None) -> PastRun | None:
        """The latest run of ``request`` (same flow, session and input) the source began at or
        after ``since`` (any time when ``None``), or ``None`` if it has none. Raises a
        ``SourceError`` when the source cannot be asked."""
        ...


class SourceConnector(Protocol):
    """Builds a ``WorkflowSource`` for a source record and its (opened) API key."""

    def source_types(self) -> Sequence[str]:
        """The source types this connector can build clients for."""
        ...

    def connect(self, source: Source, api_key: str | None) -> WorkflowSource:
        """A client for ``source``; ``UnknownSourceTypeError`` if its type is not supported."""
        ...


# -- filters and patches ---------------------------------------------------------------------


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
    key: str | None = None


class TaskFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Filters for listing tasks (always newest first).

    ``q`` matches text in the input, the answer or the error, case-insensitively;
    ``created_after`` (inclusive) and ``created_before`` (exclusive) bound ``created_at``;
    ``updated_after`` (inclusive) keeps tasks changed since then (what ``--follow`` polls).
    """

    workflow_id: WorkflowId | None = None
    schedule_id: ScheduleId | None = None
    status: TaskStatus | None = None
    q: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None


class SourcePatch(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of a source one update sets; unset fields keep whatever is stored.

    ``sealed_key`` set to ``None`` removes the key. A new ``url`` is also written to the
    source's workflows, so they never keep a stale copy.
    """

    updated_at: datetime
    name: str | Unset = UNSET
    source_type: str | Unset = UNSET
    url: str | Unset = UNSET
    status: SourceStatus | Unset = UNSET
    version_info: dict[str, Any] | Unset = UNSET
    verify_tls: bool | Unset = UNSET
    sealed_key: str | Unset | None = UNSET


class WorkflowPatch(msgspec.Struct, frozen=True, kw_only=True):
    """The local settings of a workflow one update sets (the remote flow knows nothing of
    them); unset fields keep whatever is stored, ``None`` clears one."""

    updated_at: datetime
    max_concurrency: int | Unset | None = UNSET
    webhook_url: str | Unset | None = UNSET


class SchedulePatch(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of a schedule one update sets; unset fields keep whatever is stored."""

    updated_at: datetime
    workflow_id: WorkflowId | Unset = UNSET
    schedule_type: str | Unset = UNSET
    schedule_expr: str | Unset = UNSET
    input_value: str | Unset = UNSET
    timezone: str | Unset = UNSET
    status: ScheduleStatus | Unset = UNSET
    next_run_at: datetime | Unset | None = UNSET
    last_run_at: datetime | Unset | None = UNSET
    overlap_policy: str | Unset = UNSET
    catchup_policy: str | Unset = UNSET
    max_retries: int | Unset = UNSET
    timeout: float | Unset | None = UNSET
    start_at: datetime | Unset = UNSET
    key: str | Unset | None = UNSET
    end_at: datetime | Unset | None = UNSET
    max_runs: int | Unset | None = UNSET
    run_count: int | Unset = UNSET
    jitter: str | Unset | None = UNSET
    pause_after_failures: int | Unset | None = UNSET
    consecutive_failures: int | Unset = UNSET
    note: str | Unset | None = UNSET


def patch_fields(patch: msgspec.Struct) -> dict[str, Any]:
    """The fields a patch sets, by name (what an adapter writes)."""
    return {
        name: value
        for name, value in msgspec.structs.asdict(patch).items()
        if value is not UNSET
    }


class TaskOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What one attempt of a task ended with, written when its lease is released.

    ``status`` is ``pending`` for a retry (at ``next_retry_at``) or a final status.
    """

    status: TaskStatus
    output_data: str | None = None
    output_raw: Any = None
    error: str | None = None
    next_retry_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime

    def applied_to(self, task: Task) -> Task:
        """``task`` (running) with this outcome written: its lease released, its last attempt
        ended at ``updated_at`` with ``error``."""
        return msgspec.structs.replace(
            task, status=self.status, output_data=self.output_data, output_raw=self.output_raw,
            error=self.error, next_retry_at=self.next_retry_at, finished_at=self.finished_at,
            updated_at=self.updated_at,
            attempts=end_last_attempt(task.attempts, self.updated_at, self.error))


class RunTarget(msgspec.Struct, frozen=True, kw_only=True):
    """What running a task needs, read at once: its workflow (without its flow definition,
    ``data`` ``None``), the workflow's source and the source's sealed API key."""

    workflow: Workflow
    source: Source
    sealed_key: str | None
    catalogue: int | None = None
    """The version of the store's catalogue (its workflows and sources) the target was read
    at, which ``TaskQueue.add_claimed`` checks; ``None``: stored without that check."""


class DueSchedules(msgspec.Struct, frozen=True, kw_only=True):
    """Active schedules due at the store's ``now``, earliest first."""

    now: datetime
    schedules: list[Schedule]


class NextDue(msgspec.Struct, frozen=True, kw_only=True):
    """The store's ``now`` and the earliest ``next_run_at`` of any active schedule."""

    now: datetime
    at: datetime | None


# -- repositories ----------------------------------------------------------------------------


class SourceRepository(Protocol):
    """The servers Spark knows; API keys are stored sealed, beside the record."""

    async def add(self, source: Source, *, sealed_key: str | None) -> Source:
        """Insert; ``ConflictError`` if a source with the same URL exists."""
        ...

    async def get(self, source_id: SourceId) -> Source:
        """One source by id."""
        ...

    async def find_by_url(self, url: str) -> Source | None:
        """The source with this (normalised) URL, if any."""
        ...

    async def list(self, filters: SourceFilter, *, limit: int, offset: int) -> Page[Source]:
        """Sources ordered by creation time."""
        ...

    async def update(self, source_id: SourceId, patch: SourcePatch) -> Source:
        """Set the patch's fields and return the source as stored.

        ``ConflictError`` if the new URL belongs to another source.
        """
        ...

    async def get_key(self, source_id: SourceId) -> str | None:
        """The sealed API key of a source (``None`` if it has none)."""
        ...

    async def delete(self, source_id: SourceId) -> SourceDeletion:
        """Delete a source with its workflows, their schedules and tasks."""
        ...


class WorkflowRepository(Protocol):
    """The local catalogue of synced remote flows."""

    async def upsert(self, workflow: Workflow) -> Workflow:
        """Insert, or update in place the one with the same (source_id, remote_flow_id).

        On update the stored row keeps its ``id``, ``created_at`` and its local settings
        (``max_concurrency``, ``webhook_url``: the remote flow knows nothing of them);
        ``NotFoundError`` if the source does not exist.
        """
        ...

    async def get(self, workflow_id: WorkflowId) -> Workflow:
        """One workflow by local id."""
        ...

    async def update(self, workflow_id: WorkflowId, patch: WorkflowPatch) -> Workflow:
        """Store the local settings ``patch`` sets, with its ``updated_at``; ``NotFoundError``
        if the workflow does not exist."""
        ...

    async def find(self, id_or_remote_id: str, *, definition: bool = True) -> Workflow | None:
        """A workflow by local id, else by remote flow id (first by creation time). Without
        ``definition`` its ``data`` is left out (``None``): a run never needs it, and a
        LangFlow flow's definition (every component's source) weighs tens to hundreds of
        kilobytes to read and decode."""
        ...

    async def run_target(self, id_or_remote_id: str, *,
                         remembered: bool = False) -> RunTarget:
        """The workflow, by local id, else by remote flow id (first by creation time) as
        ``find`` (without its definition: ``data`` is ``None``), with its source and the
        source's sealed key, in one read: what each run needs. ``NotFoundError`` if the
        workflow does not exist.

        With ``remembered`` the store may answer a target it read before without asking
        whether the catalogue has changed since (no round trip): such a target is only for a
        task stored with ``TaskQueue.add_claimed(..., target=)``, which makes that check in
        its own write."""
        ...

    async def list(
        self, filters: WorkflowFilter, *, limit: int, offset: int
    ) -> Page[WorkflowSummary]:
        """Workflows by name with ``latest_run`` and task counts, computed in one query."""
        ...

    async def delete(self, workflow_id: WorkflowId) -> WorkflowDeletion:
        """Delete a workflow with its schedules and tasks."""
        ...


class ScheduleRepository(Protocol):
    """Schedules, and the compare-and-set fire that keeps N schedulers from firing twice."""

    async def add(self, schedule: Schedule) -> Schedule:
        """Insert (at version 1); ``NotFoundError`` if its workflow does not exist."""
        ...

    async def get(self, schedule_id: ScheduleId) -> Schedule:
        """One schedule by id."""
        ...

    async def list(
        self, filters: ScheduleFilter, *, limit: int, offset: int
    ) -> Page[Schedule]:
        """Schedules ordered by creation time."""
        ...

    async def update(
        self, schedule_id: ScheduleId, patch: SchedulePatch, *, expected_version: int
    ) -> Schedule:
        """Set the patch's fields if the stored schedule is still at ``expected_version``
        (the version then goes up by one); ``StaleWriteError`` if it changed meanwhile."""
        ...

    async def delete(self, schedule_id: ScheduleId) -> None:
        """Delete a schedule; its tasks stay, with ``schedule_id`` kept for history."""
        ...

    async def due(self, *, limit: int) -> DueSchedules:
        """Active schedules whose ``next_run_at`` <= the store's now, earliest first."""
        ...

    async def next_due(self) -> NextDue:
        """The earliest ``next_run_at`` of any active schedule, with the store's now."""
        ...

    async def fire(
        self, schedule_id: ScheduleId, patch: SchedulePatch, *, expected_version: int,
        tasks: Sequence[Task], fires: Sequence[FireRecord] = (),
    ) -> bool:
        """Atomically: if the schedule is still at ``expected_version``, set the patch's fields
        (version + 1), insert ``tasks`` and write ``fires`` to the fire ledger; else change
        nothing. Returns whether this caller won.

        A task whose (schedule_id, scheduled_for) already exists is not inserted again: the
        store's unique constraint is the second line behind the compare-and-set. A fire record
        replaces the ledger's record of the same (schedule_id, nominal_time) (an ``error``
        written by an earlier, failed attempt), so a lost compare-and-set writes no record.
        """
        ...

    async def count_active_tasks(self, schedule_id: ScheduleId) -> tuple[int, int]:
        """(pending, running) task counts of a schedule, for its overlap policy."""
        ...


class FireLedger(Protocol):
    """The fire ledger: one record per schedule and nominal time the scheduler considered.

    Records are keyed (``schedule_id``, ``nominal_time``) and go with their schedule when it is
    deleted. The scheduler writes most of them through ``ScheduleRepository.fire``, in the
    transaction of the fire they describe; ``record`` writes the others (an error, the times
    a pause skipped).
    """

    async def record(self, records: Sequence[FireRecord]) -> int:
        """Insert the records whose (schedule_id, nominal_time) has none yet and whose
        schedule still exists; a decision already recorded is kept. Returns how many were
        written."""
        ...

    async def list(
        self, schedule_id: ScheduleId, *, outcome: FireOutcome | None = None,
        until: datetime | None = None, limit: int, offset: int,
    ) -> Page[FireRecord]:
        """A schedule's records, newest nominal time first; ``outcome`` keeps one outcome,
        ``until`` keeps nominal times at or before it."""
        ...

    async def counters(
        self, schedule_ids: Sequence[ScheduleId]
    ) -> dict[ScheduleId, FireCounters]:
        """The counters of each schedule (one query for all); a schedule without records
        is missing from the answer."""
        ...

    async def prune(self, *, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` records decided before ``before``; returns how many went."""
        ...


class TaskRepository(Protocol):
    """Runs: their input, answer, error and timing."""

    async def add(self, task: Task) -> Task:
        """Insert; ``NotFoundError`` if its workflow does not exist."""
        ...

    async def get(self, task_id: TaskId) -> Task:
        """One task by id, with ``output_raw``."""
        ...

    async def list(self, filters: TaskFilter, *, limit: int, offset: int) -> Page[Task]:
        """Tasks newest first (``created_at`` descending), without ``output_raw`` and with
        ``attempts`` empty."""
        ...

    async def count_by_status(
        self, *, created_after: datetime | None = None
    ) -> dict[TaskStatus, int]:
        """How many tasks have each status (created at or after ``created_after`` when given),
        counted in one query on the store's indexes; a status without tasks is missing."""
        ...

    async def watch_end(self, task_id: TaskId) -> bool:
        """Someone in this process waits for the task's end without running it here: from
        now on, its end is hinted (``WakeUpKind.FINISHED``) to every process the store's
        hints reach, not only to the process that writes it, which announces it itself. A
        store may hint every end anyway; one whose hints name no task across processes does
        nothing (its waiters poll). ``False`` when the task has already ended or does not
        exist, so no hint will come (read it); else ``True``, which a store that does nothing
        answers without looking. Never an error for an unknown or finished task."""
        ...

    async def cancel(self, task_id: TaskId, *, now: datetime) -> Task:
        """Atomically move a pending or running task to ``cancelled`` (clearing any lease) and
        return it; ``InvalidStateError`` if it already finished. Wakes the node running it.
        A running attempt is recorded as ended at ``now`` with the error ``cancelled``."""
        ...

    async def delete(self, task_id: TaskId) -> None:
        """Delete a task."""
        ...

    async def prune(
        self, *, before: datetime | None = None, older_than: timedelta | None = None,
        limit: int,
    ) -> int:
        """Delete up to ``limit`` finished tasks (completed, failed, cancelled) that finished
        before ``before``, or more than ``older_than`` ago by the store's clock (exactly one
        of the two is given); returns how many went. Pending and running tasks always stay."""
        ...


class TaskQueue(Protocol):
    """Hands runnable tasks to workers under leases the store's clock judges.

    A lease is fenced by its owner *and* its attempt (``tries`` at claim time): the same owner
    re-claiming a task after a stall holds a new attempt, and a late answer of the old attempt
    is refused.
    """

    async def claim(
        self, *, owner: str, limit: int, lease_seconds: float,
        task_ids: Sequence[TaskId] | None = None,
    ) -> list[Task]:
        """Atomically move up to ``limit`` runnable tasks (pending, ``next_retry_at`` null or
        past; among ``task_ids`` when given) to ``running`` under ``owner``'s lease, oldest
        first; increments ``tries``, sets ``started_at`` on the first attempt only and appends
        the new attempt (its number and start) to ``attempts``. Two claimers never get the
        same task.

        A workflow's ``max_concurrency`` holds across claimers and processes: a task is
        claimable only while fewer than that many tasks of its workflow are ``running``; the
        rest stay pending (skipped, not blocking other workflows' tasks)."""
        ...

    async def add_claimed(self, task: Task, *, owner: str, lease_seconds: float,
                          target: RunTarget | None = None) -> Task:
        """Store a new pending ``task`` (as ``TaskRepository.add`` does, with its errors) and, in
        the same transaction, claim it for ``owner`` as ``claim(task_ids=[task.id])`` would,
        when it is runnable and its workflow has a free slot. Returns the task as stored:
        ``running`` under the lease, or ``pending`` for any claimer (then other processes are
        told there is work, as after ``add``).

        With ``target`` (the run target ``task`` was made from), nothing is stored and
        ``StaleTargetError`` is raised when the catalogue has changed since ``target`` was read
        (its ``catalogue`` version; no check when that is ``None``): the task is only stored
        with a target as current as one read in the same transaction.

        What a process does with a run it has just been asked for: it starts the run at once,
        without a second transaction and without waking its claim loop."""
        ...

    async def renew(self, *, owner: str, lease_seconds: float,
                    task_ids: Sequence[TaskId]) -> list[TaskId]:
        """Extend the unexpired leases ``owner`` holds on ``task_ids``; returns the ids still
        held (a task missing from the answer was cancelled or taken over: stop running it).
        A worker names the runs it has under way, so a lease it holds with no run behind it
        (a fault) runs out and is recovered instead of lasting for ever."""
        ...

    async def held(self, *, owner: str, task_ids: Sequence[TaskId]) -> list[TaskId]:
        """Which of ``task_ids`` are still running under ``owner``'s lease (a cheap read)."""
        ...

    async def release(self, task: Task, outcome: TaskOutcome, *, owner: str) -> Task | None:
        """Write an attempt's outcome and clear the lease, only if ``task`` (as its claim
        answered it) is still running under ``owner`` at the same attempt (``task.tries``).
        Returns the task as written, ``outcome.applied_to(task)`` with the outcome as the
        store keeps it (a store that cannot keep a NUL character keeps its replacement): what
        ``get`` would now answer, since while a lease holds only its owner writes the row, and
        a cancel or a takeover makes this write fail instead; a caller waiting for the run
        needs no read of its own. ``None`` when it was not written.

        The last entry of ``attempts`` gets the outcome's ``updated_at`` as its end and the
        outcome's error."""
        ...

    async def expired(self, *, limit: int, owners: Sequence[str] = ()) -> list[Task]:
        """Running tasks whose lease ran out by the store's clock, or whose owner is one of
        ``owners`` (processes known dead), oldest first."""
        ...

    async def recover(
        self, task_id: TaskId, outcome: TaskOutcome, *, attempt: int,
        owners: Sequence[str] = (),
    ) -> bool:
        """Write the outcome of an abandoned attempt, only if the task is still running at
        ``attempt`` and its lease has expired (or its owner is one of ``owners``): a task
        another worker re-claimed meanwhile is never overwritten. The attempt's end is
        recorded as ``release`` records it."""
        ...


class NodeRegistry(Protocol):
    """Which Spark processes on this store are alive, so a dead one's runs are recovered at
    once instead of after its lease runs out."""

    async def register(self, owner: str) -> None:
        """Announce this process as ``owner`` for as long as the store stays open."""
        ...

    async def unregister(self, owner: str) -> None:
        """Withdraw ``owner`` (a clean stop)."""
        ...

    async def dead(self) -> list[str]:
        """Owners registered by processes that are provably gone (their lock or database
        session no longer exists). A process merely slow or paused is not dead."""
        ...


class WakeUpKind(enum.StrEnum):
    """What a wake-up hints at."""

    WORK = "work"
    CANCEL = "cancel"
    FINISHED = "finished"
    SCHEDULES = "schedules"


class WakeUp(msgspec.Struct, frozen=True, kw_only=True):
    """A hint from another process; the store stays the truth."""

    kind: WakeUpKind
    id: str | None = None


class WakeUpFeed(Protocol):
    """Hints between processes: new work, cancels, finished tasks, schedule changes.

    Writes through the repositories publish them (a PostgreSQL store with NOTIFY inside the
    writing transaction). A hint can be lost, so every consumer also polls.
    """

    @property
    def poll_seconds(self) -> float:
        """How often consumers should poll the store as a backstop, given the feed's health."""
        ...

    async def listen(self, deliver: Callable[[WakeUp], None]) -> None:
        """Deliver hints until cancelled, reconnecting by itself. After every (re)connection
        it delivers one ``WORK`` and one ``SCHEDULES`` hint, because hints may have been
        missed while it was away."""
        ...


class Metrics(Protocol):
    """Where the core reports what it did, for counters and histograms kept by an adapter
    (Prometheus); every method is cheap and never raises. Labels stay bounded: no ids."""

    def task_attempt_finished(self, *, outcome: str, duration_seconds: float | None) -> None:
        """One attempt ended: ``completed``, ``reconciled`` (an interrupted run's answer taken
        from the source), ``failed``, ``retried``, ``cancelled`` or ``interrupted``, after
        ``duration_seconds`` (``None`` when it never started)."""
        ...

    def schedule_decided(self, *, outcome: FireOutcome, delay_seconds: float) -> None:
        """The scheduler decided one nominal time (one fire-ledger record)."""
        ...

    def worker_busy(self, count: int) -> None:
        """This process now runs ``count`` tasks."""
        ...


class Notifier(Protocol):
    """Where the core tells the outside world about failed and recovered runs (a webhook).

    ``notify`` returns at once and never raises: delivery, with its retries, happens in the
    background, so a slow or broken receiver never delays or changes a run."""

    def listens(self, *, workflow_webhook: str | None) -> bool:
        """Whether an event about a run of a workflow with this webhook would go anywhere (so
        the core reads what deciding the event needs only when it would)."""
        ...

    def notify(self, event: RunEvent, *, workflow_webhook: str | None = None) -> None:
        """Queue ``event`` for delivery: to the configured webhook, and to the run's workflow's
        own ``workflow_webhook`` when it has one."""
        ...


class IdKind(enum.StrEnum):
    """The things a user names by id, and so by a unique prefix of one."""

    SOURCE = "source"
    WORKFLOW = "workflow"
    SCHEDULE = "schedule"
    TASK = "task"


class Store(Protocol):
    """Durable state: the repositories over one database, and its lifecycle."""

    sources: SourceRepository
    workflows: WorkflowRepository
    schedules: ScheduleRepository
    fires: FireLedger
    tasks: TaskRepository
    queue: TaskQueue
    nodes: NodeRegistry
    wakeups: WakeUpFeed

    @property
    def description(self) -> str:
        """Where the data lives, safe to print (a path, or a URL without its password)."""
        ...

    async def open(self) -> None:
        """Connect; ``StoreUnavailableError`` with a readable reason if it cannot."""
        ...

    async def migrate(self) -> int:
        """Bring the schema up to date, once even when N processes start together; return the
        version reached. ``StoreUnavailableError`` if the database is newer than this code."""
        ...

    async def ping(self) -> bool:
        """True when the database answers a trivial query now."""
        ...

    async def ids_with_prefix(self, kind: IdKind, prefix: str, *, limit: int) -> list[str]:
        """Up to ``limit`` ids of ``kind`` that start with ``prefix`` (exactly, case and all),
        in id order."""
        ...

    async def close(self) -> None:
        """Release every connection; the store cannot be used afterwards."""
        ...
