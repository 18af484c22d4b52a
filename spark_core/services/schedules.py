"""Use cases for schedules: when workflows run by themselves."""

import builtins
import enum
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from spark_core.errors import (
    ConflictError,
    InvalidScheduleError,
    InvalidStateError,
    NotFoundError,
    StaleWriteError,
)
from spark_core.models import (
    CatchupPolicy,
    OverlapPolicy,
    Page,
    Schedule,
    ScheduleId,
    ScheduleStatus,
    ScheduleType,
    Task,
    TaskId,
    new_id,
)
from spark_core.ports import (
    Clock,
    ScheduleFilter,
    SchedulePatch,
    ScheduleRepository,
    TaskFilter,
    TaskRepository,
)
from spark_core.schedule_spec import (
    BoundedSpec,
    ScheduleSpec,
    parse_interval,
    parse_schedule,
    preview,
)
from spark_core.services.backfill import (
    Backfill,
    BackfillFields,
    BackfillRun,
    backfill_range,
    backfill_records,
    plan_backfill,
)
from spark_core.services.fires import FireService
from spark_core.services.tasks import MAX_RETRIES_LIMIT
from spark_core.services.workflows import WorkflowService
from spark_core.signals import TaskSignals

MAX_PREVIEW = 100
MAX_NOTE = 500
CHANGE_ATTEMPTS = 5
KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")


class ScheduleFields(msgspec.Struct, frozen=True, kw_only=True,
                    forbid_unknown_fields=True):
    """Everything a schedule is made of; what create and full replace take."""

    workflow_id: str
    schedule_type: ScheduleType
    schedule_expr: str
    input_value: str = ""
    timezone: str = "UTC"
    overlap_policy: OverlapPolicy = OverlapPolicy.SKIP
    catchup_policy: CatchupPolicy = CatchupPolicy.LATEST
    max_retries: int = 3
    timeout: float | None = None
    status: ScheduleStatus = ScheduleStatus.ACTIVE
    key: str | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    max_runs: int | None = None
    jitter: str | None = None
    pause_after_failures: int | None = None


class ScheduleChanges(msgspec.Struct, frozen=True, kw_only=True,
                    forbid_unknown_fields=True):
    """A partial update of a schedule; unset fields stay as they are."""

    workflow_id: str | msgspec.UnsetType = msgspec.UNSET
    schedule_type: ScheduleType | msgspec.UnsetType = msgspec.UNSET
    schedule_expr: str | msgspec.UnsetType = msgspec.UNSET
    input_value: str | msgspec.UnsetType = msgspec.UNSET
    timezone: str | msgspec.UnsetType = msgspec.UNSET
    overlap_policy: OverlapPolicy | msgspec.UnsetType = msgspec.UNSET
    catchup_policy: CatchupPolicy | msgspec.UnsetType = msgspec.UNSET
    max_retries: int | msgspec.UnsetType = msgspec.UNSET
    timeout: float | msgspec.UnsetType | None = msgspec.UNSET
    status: ScheduleStatus | msgspec.UnsetType = msgspec.UNSET
    key: str | msgspec.UnsetType | None = msgspec.UNSET
    start_at: datetime | msgspec.UnsetType | None = msgspec.UNSET
    end_at: datetime | msgspec.UnsetType | None = msgspec.UNSET
    max_runs: int | msgspec.UnsetType | None = msgspec.UNSET
    jitter: str | msgspec.UnsetType | None = msgspec.UNSET
    pause_after_failures: int | msgspec.UnsetType | None = msgspec.UNSET


class ApplyOutcome(enum.StrEnum):
    """What applying a schedule by key did."""

    CREATED = "created"
    REPLACED = "replaced"
    UNCHANGED = "unchanged"


class AppliedSchedule(msgspec.Struct, frozen=True, kw_only=True):
    """The schedule stored under a key, and what applying it did."""

    schedule: Schedule
    outcome: ApplyOutcome


class ScheduleService:
    """Creates, changes, pauses, resumes, previews and fires schedules.

    A change is a compare-and-set on the schedule's version: if the scheduler (in this or
    another process) fired the schedule between our read and our write, the change is worked
    out again from the fresh record instead of writing back a stale ``next_run_at``.
    """

    def __init__(
        self,
        *,
        schedules: ScheduleRepository,
        tasks: TaskRepository,
        workflows: WorkflowService,
        clock: Clock,
        signals: TaskSignals,
        fires: FireService | None = None,
    ) -> None:
        self._schedules = schedules
        self._tasks = tasks
        self._workflows = workflows
        self._clock = clock
        self._signals = signals
        self._fires = fires

    def spec(self, schedule: Schedule) -> ScheduleSpec:
        """The parsed expression of a stored schedule, within its ``start_at`` and
        ``end_at`` (intervals count from ``start_at``, a one-time ``now`` is ``start_at``)."""
        spec = parse_schedule(
            schedule.schedule_type,
            schedule.schedule_expr,
            timezone=schedule.timezone,
            start_at=schedule.start_at,
            now=schedule.start_at,
        )
        cron = schedule.schedule_type == ScheduleType.CRON
        if cron or schedule.end_at is not None:
            spec = BoundedSpec(spec, not_before=schedule.start_at if cron else None,
                               not_after=schedule.end_at)
        return spec

    async def create(self, fields: ScheduleFields) -> Schedule:
        """Validate and store a schedule; its first fire time is computed now."""
        workflow = await self._workflows.get(fields.workflow_id)
        now = self._clock.now()
        start_at = _utc(fields.start_at) or now
        end_at = _utc(fields.end_at)
        if end_at is not None and end_at <= start_at:
            raise InvalidScheduleError(
                "end_at must be after start_at (or after now when start_at is not given)",
                errors=[("end_at", "must be after start_at")],
            )
        schedule = Schedule(
            id=ScheduleId(new_id()),
            workflow_id=workflow.id,
            schedule_type=fields.schedule_type,
            schedule_expr=fields.schedule_expr.strip(),
            input_value=fields.input_value,
            timezone=fields.timezone,
            status=fields.status,
            overlap_policy=fields.overlap_policy,
            catchup_policy=fields.catchup_policy,
            max_retries=fields.max_retries,
            timeout=fields.timeout,
            key=fields.key,
            end_at=end_at,
            max_runs=fields.max_runs,
            jitter=fields.jitter,
            pause_after_failures=fields.pause_after_failures,
            start_at=start_at,
            created_at=now,
            updated_at=now,
        )
        planned = self._planned(schedule, now)
        if planned.status == ScheduleStatus.COMPLETED:
            raise InvalidScheduleError(
                "The schedule has no fire time before its end_at",
                errors=[("end_at", "leaves no fire time")],
            )
        stored = await self._schedules.add(planned)
        self._signals.schedules_changed()
        return self._shown(stored)

    async def list(
        self, filters: ScheduleFilter | None = None, *, limit: int = 50, offset: int = 0
    ) -> Page[Schedule]:
        """Schedules, oldest first."""
        page = await self._schedules.list(
            filters or ScheduleFilter(), limit=limit, offset=offset
        )
        return msgspec.structs.replace(page, items=[self._shown(item) for item in page.items])

    async def get(self, schedule_id: ScheduleId) -> Schedule:
        """One schedule by id."""
        return self._shown(await self._schedules.get(schedule_id))

    async def update(self, schedule_id: ScheduleId, changes: ScheduleChanges) -> Schedule:
        """Apply a partial update. A new expression, type or timezone restarts the schedule's
        clock from now; other changes keep its next fire time."""
        return await self._apply(schedule_id, changes, restart=False)

    async def replace(self, schedule_id: ScheduleId, fields: ScheduleFields) -> Schedule:
        """Replace every field of a schedule (as at creation); its clock restarts from now."""
        changes = ScheduleChanges(**msgspec.structs.asdict(fields))
        return await self._apply(schedule_id, changes, restart=True)

    async def apply(self, key: str, fields: ScheduleFields) -> AppliedSchedule:
        """Create or replace the schedule known by ``key`` (idempotent, for code that
        declares its schedules): none yet, it is created; one whose fields differ from
        ``fields``, it is replaced in place (same id, clock restarted); one with the same
        fields is left untouched, its status (a pause, a completion) included."""
        _check_key(key)
        if fields.key not in (None, key):
            raise InvalidScheduleError(
                f"The body's key {fields.key!r} differs from the key applied ({key!r})",
                errors=[("key", "must match the key applied")],
            )
        workflow = await self._workflows.get(fields.workflow_id)
        wanted = msgspec.structs.replace(
            fields, key=key, workflow_id=workflow.id, schedule_expr=fields.schedule_expr.strip()
        )
        for _ in range(CHANGE_ATTEMPTS):
            found = await self._schedules.list(ScheduleFilter(key=key), limit=1, offset=0)
            if not found.items:
                try:
                    created = await self.create(wanted)
                except ConflictError:
                    continue  # created by someone else meanwhile: apply to theirs
                return AppliedSchedule(schedule=created, outcome=ApplyOutcome.CREATED)
            current = found.items[0]
            if _declared(current, wanted) == _declared(wanted, wanted):
                return AppliedSchedule(schedule=current, outcome=ApplyOutcome.UNCHANGED)
            replaced = await self.replace(current.id, wanted)
            return AppliedSchedule(schedule=replaced, outcome=ApplyOutcome.REPLACED)
        raise ConflictError(f"Schedule {key!r} kept changing while it was being applied; "
                            "try again")

    async def _apply(
        self, schedule_id: ScheduleId, changes: ScheduleChanges, *, restart: bool,
        also: dict[str, Any] | None = None,
    ) -> Schedule:
        values = {
            name: value
            for name, value in msgspec.structs.asdict(changes).items()
            if value is not msgspec.UNSET
        }
        values.update(also or {})  # fields a change cannot name: a pause's note
        if "workflow_id" in values:
            values["workflow_id"] = (await self._workflows.get(values["workflow_id"])).id
        if isinstance(values.get("schedule_expr"), str):
            values["schedule_expr"] = values["schedule_expr"].strip()
        if "start_at" in values and values["start_at"] is None:
            del values["start_at"]  # not given: a retimed schedule starts now
        for bound in ("start_at", "end_at"):
            if bound in values:
                values[bound] = _utc(values[bound])
        for _ in range(CHANGE_ATTEMPTS):
            current = await self._schedules.get(schedule_id)
            patch = self._patch(current, values, restart=restart)
            try:
                stored = await self._schedules.update(
                    schedule_id, patch, expected_version=current.version
                )
            except StaleWriteError:
                continue  # fired or changed meanwhile: work the change out again
            self._signals.schedules_changed()
            resumed = stored.status == ScheduleStatus.ACTIVE
            if resumed and current.status == ScheduleStatus.PAUSED and self._fires is not None:
                await self._fires.record_paused(
                    current, self.spec(current), resumed_at=stored.updated_at
                )
            return self._shown(stored)
        raise ConflictError(
            f"Schedule {schedule_id} kept changing while it was being updated; try again"
        )

    def _patch(
        self, current: Schedule, values: dict[str, Any], *, restart: bool
    ) -> SchedulePatch:
        """The fields to write for ``values`` applied to ``current``: the changed ones, plus
        the timing when the change retimes or resumes the schedule."""
        now = self._clock.now()
        updated = msgspec.structs.replace(current, **values, updated_at=now)
        timing = ("schedule_type", "schedule_expr", "timezone")
        retimed = restart or any(
            getattr(updated, name) != getattr(current, name) for name in timing
        )
        rebounded = any(getattr(updated, name) != getattr(current, name)
                        for name in ("start_at", "end_at", "max_runs"))
        resumed = (
            updated.status == ScheduleStatus.ACTIVE and current.status != ScheduleStatus.ACTIVE
        )
        if retimed and "start_at" not in values:
            updated = msgspec.structs.replace(updated, start_at=now)
        if restart:  # as at creation: max_runs and pause_after_failures count from zero
            updated = msgspec.structs.replace(updated, run_count=0, consecutive_failures=0)
        if retimed or rebounded or resumed:
            updated = self._planned(updated, now)
        else:
            _check_options(updated)
        fields = {
            name: getattr(updated, name)
            for name in SchedulePatch.__struct_fields__
            if name != "updated_at" and getattr(updated, name) != getattr(current, name)
        }
        return SchedulePatch(updated_at=now, **fields)

    async def delete(self, schedule_id: ScheduleId) -> None:
        """Remove a schedule; the tasks it created stay as history."""
        await self._schedules.delete(schedule_id)
        self._signals.schedules_changed()

    async def enable(self, schedule_id: ScheduleId, *, note: str | None = None) -> Schedule:
        """Resume a paused schedule from now: missed times while paused are not replayed.
        Its ``note`` becomes ``note`` (none: cleared) and its count of failed runs in a row
        starts again from zero."""
        current = await self._schedules.get(schedule_id)
        if current.status == ScheduleStatus.COMPLETED:
            raise InvalidStateError(f"Schedule {schedule_id} has completed and cannot be resumed")
        return await self._apply(schedule_id, ScheduleChanges(status=ScheduleStatus.ACTIVE),
                                 restart=False, also={"note": note, "consecutive_failures": 0})

    async def disable(self, schedule_id: ScheduleId, *, note: str | None = None) -> Schedule:
        """Pause a schedule; its ``note`` becomes ``note`` (none: cleared)."""
        current = await self._schedules.get(schedule_id)
        if current.status == ScheduleStatus.COMPLETED:
            raise InvalidStateError(f"Schedule {schedule_id} has completed and cannot be paused")
        return await self._apply(schedule_id, ScheduleChanges(status=ScheduleStatus.PAUSED),
                                 restart=False, also={"note": note})

    async def backfill(self, schedule_id: ScheduleId, fields: BackfillFields, *,
                       dry_run: bool = False) -> Backfill:
        """Create one run per nominal time from ``fields.start`` to ``fields.end`` (a past
        range, at most ``MAX_BACKFILL`` times), each recorded ``backfilled`` in the fire ledger;
        a time that already has a run is skipped. ``dry_run`` answers the same without creating
        anything. See ``spark_core.services.backfill``."""
        now = self._clock.now()
        start, end = backfill_range(fields, now)
        for _ in range(CHANGE_ATTEMPTS):
            schedule = await self._schedules.get(schedule_id)
            taken = await self._run_times(schedule_id, start, end)
            plan = plan_backfill(schedule, fields, start=start, end=end, taken=taken,
                                 dry_run=dry_run)
            if dry_run or not plan.runs:
                return plan
            tasks = [scheduled_task(schedule, scheduled_for=run.nominal_time, now=now)
                     for run in plan.runs]
            records = backfill_records(
                plan, {run.nominal_time: task.id for run, task in zip(plan.runs, tasks,
                                                                      strict=True)}, now=now)
            won = await self._schedules.fire(schedule_id, SchedulePatch(updated_at=now),
                                             expected_version=schedule.version, tasks=tasks,
                                             fires=records)
            if not won:
                continue  # fired or changed meanwhile: plan it again on the fresh record
            self._signals.work_added()
            return msgspec.structs.replace(plan, runs=[
                BackfillRun(nominal_time=run.nominal_time, task_id=task.id)
                for run, task in zip(plan.runs, tasks, strict=True)
            ])
        raise ConflictError(f"Schedule {schedule_id} kept changing during the backfill; "
                            "try again")

    async def _run_times(self, schedule_id: ScheduleId, start: datetime,
                         end: datetime) -> set[datetime]:
        """The nominal times from ``start`` to ``end`` that already have a run."""
        taken: set[datetime] = set()
        offset = 0
        while True:
            page = await self._tasks.list(TaskFilter(schedule_id=schedule_id), limit=500,
                                          offset=offset)
            taken.update(task.scheduled_for for task in page.items
                         if task.scheduled_for is not None and start <= task.scheduled_for <= end)
            if not page.has_more:
                return taken
            offset += len(page.items)

    async def fire_now(self, schedule_id: ScheduleId) -> Task:
        """Queue a run with the schedule's input now, without changing its timing."""
        schedule = await self._schedules.get(schedule_id)
        now = self._clock.now()
        task = scheduled_task(schedule, scheduled_for=now, now=now)
        stored = await self._tasks.add(task)
        self._signals.work_added()
        return stored

    async def next_runs(
        self, schedule_id: ScheduleId, count: int = 5
    ) -> builtins.list[datetime]:
        """The next ``count`` fire times from now (nothing for a paused or completed one)."""
        if not 1 <= count <= MAX_PREVIEW:
            raise InvalidScheduleError(
                f"count must be between 1 and {MAX_PREVIEW}",
                errors=[("count", f"must be between 1 and {MAX_PREVIEW}")],
            )
        schedule = await self._schedules.get(schedule_id)
        if schedule.status != ScheduleStatus.ACTIVE or schedule.next_run_at is None:
            return []
        if schedule.max_runs is not None:
            count = min(count, schedule.max_runs - schedule.run_count)
        spec = self.spec(schedule)
        first = schedule.next_run_at
        rest = preview(spec, after=first, count=count - 1) if count > 1 else []
        return [first, *rest]

    def preview(
        self, schedule_type: ScheduleType | str, schedule_expr: str, *, timezone: str = "UTC",
        count: int = 5,
    ) -> builtins.list[datetime]:
        """The first ``count`` fire times of an expression not stored yet, were it created
        now (what a form shows while the expression is typed); ``InvalidScheduleError`` with
        the reason when the scheduler could not execute it."""
        if not 1 <= count <= MAX_PREVIEW:
            raise InvalidScheduleError(
                f"count must be between 1 and {MAX_PREVIEW}",
                errors=[("count", f"must be between 1 and {MAX_PREVIEW}")],
            )
        now = self._clock.now()
        spec = parse_schedule(schedule_type, schedule_expr.strip(), timezone=timezone,
                              start_at=now, now=now)
        first = spec.first_fire(now)
        if first is None:
            return []
        return [first, *preview(spec, after=first, count=count - 1)] if count > 1 else [first]

    def _shown(self, schedule: Schedule) -> Schedule:
        """``schedule`` as answered: a paused one's ``next_run_at`` is when it would fire if
        resumed now (null if never). The stored value is left alone: the fire ledger reads
        from it which nominal times the pause skipped."""
        if schedule.status != ScheduleStatus.PAUSED:
            return schedule
        resumed = msgspec.structs.replace(schedule, status=ScheduleStatus.ACTIVE)
        return msgspec.structs.replace(
            schedule, next_run_at=self._planned(resumed, self._clock.now()).next_run_at
        )

    def _planned(self, schedule: Schedule, now: datetime) -> Schedule:
        """Validate a schedule and set its next fire time from ``now``."""
        _check_options(schedule)
        spec = self.spec(schedule)
        if schedule.status != ScheduleStatus.ACTIVE:
            return schedule
        exhausted = schedule.max_runs is not None and schedule.run_count >= schedule.max_runs
        following = None if exhausted else spec.first_fire(now)
        if following is None:  # past its end_at or its max_runs: nothing more to fire
            return msgspec.structs.replace(schedule, next_run_at=None,
                                           status=ScheduleStatus.COMPLETED)
        return msgspec.structs.replace(schedule, next_run_at=following)


def scheduled_task(schedule: Schedule, *, scheduled_for: datetime, now: datetime,
                   delay: timedelta | None = None) -> Task:
    """A pending task for one fire of ``schedule``; with a ``delay`` (its jitter) it is not
    claimable before ``scheduled_for + delay``, which stays its ``scheduled_for``."""
    return Task(
        id=TaskId(new_id()),
        workflow_id=schedule.workflow_id,
        schedule_id=schedule.id,
        input_data=schedule.input_value,
        max_retries=schedule.max_retries,
        timeout=schedule.timeout,
        scheduled_for=scheduled_for,
        next_retry_at=scheduled_for + delay if delay else None,
        created_at=now,
        updated_at=now,
    )


async def count_final_run(
    schedules: ScheduleRepository, task: Task, *, failed: bool, now: datetime
) -> str | None:
    """Count the final outcome of a scheduled run towards its schedule's
    ``pause_after_failures``: a failure adds one to ``consecutive_failures`` and, at the
    limit, pauses the schedule with a note saying why; a success starts the count again.
    A compare-and-set on the version, tried again when another node changed the schedule
    meanwhile, so no failure is lost or counted twice. Returns the note when this run paused
    the schedule, else ``None``."""
    if task.schedule_id is None:
        return None
    for _ in range(CHANGE_ATTEMPTS):
        try:
            current = await schedules.get(task.schedule_id)
        except NotFoundError:
            return None  # deleted meanwhile: the run stays as history
        limit = current.pause_after_failures
        if limit is None or (not failed and current.consecutive_failures == 0):
            return None
        if not failed:
            patch = SchedulePatch(consecutive_failures=0, updated_at=now)
        elif current.consecutive_failures + 1 >= limit and current.status == ScheduleStatus.ACTIVE:
            error = (task.error or "no error text")[:200]
            note = (f"Paused after {current.consecutive_failures + 1} failed runs in a row "
                    f"(pause_after_failures {limit}); the last was task {task.id}: {error}")
            patch = SchedulePatch(consecutive_failures=current.consecutive_failures + 1,
                                  status=ScheduleStatus.PAUSED, note=note, updated_at=now)
        else:
            patch = SchedulePatch(consecutive_failures=current.consecutive_failures + 1,
                                  updated_at=now)
        try:
            await schedules.update(current.id, patch, expected_version=current.version)
        except StaleWriteError:
            continue  # fired or changed by another node: count on the fresh record
        except NotFoundError:
            return None
        return patch.note if isinstance(patch.note, str) else None
    raise ConflictError(f"Schedule {task.schedule_id} kept changing while a run was counted")


def jitter_of(schedule: Schedule) -> timedelta | None:
    """The most a fire of ``schedule`` is delayed by, or ``None`` without jitter."""
    return parse_interval(schedule.jitter) if schedule.jitter is not None else None


def _declared(item: Schedule | ScheduleFields, wanted: ScheduleFields) -> tuple[Any, ...]:
    """What a deployment declares of a schedule: every field but its status, and its
    ``start_at`` only when ``wanted`` gives one."""
    left_out = {"status"} if wanted.start_at is not None else {"status", "start_at"}
    names = (name for name in ScheduleFields.__struct_fields__ if name not in left_out)
    return tuple(_utc(value) if isinstance(value, datetime) else value
                 for value in (getattr(item, name) for name in names))


def _utc(value: datetime | None) -> datetime | None:
    """``value`` in UTC; a naive one is read as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_key(key: str) -> None:
    if not KEY_PATTERN.fullmatch(key):
        raise InvalidScheduleError(
            "key must be 1-200 letters, digits, '.', '_', ':' or '-', starting with a letter "
            "or digit",
            errors=[("key", "1-200 of A-Z a-z 0-9 . _ : -, starting with a letter or digit")],
        )


def _check_options(schedule: Schedule) -> None:
    if schedule.key is not None:
        _check_key(schedule.key)
    if schedule.jitter is not None:
        try:
            parse_interval(schedule.jitter)
        except InvalidScheduleError as exc:
            raise InvalidScheduleError(f"jitter: {exc.message}",
                                       errors=[("jitter", exc.message)]) from None
    if schedule.pause_after_failures is not None and schedule.pause_after_failures < 1:
        raise InvalidScheduleError(
            "pause_after_failures must be at least 1",
            errors=[("pause_after_failures", "must be at least 1")],
        )
    if schedule.note is not None and len(schedule.note) > MAX_NOTE:
        raise InvalidScheduleError(
            f"note must be at most {MAX_NOTE} characters",
            errors=[("note", f"at most {MAX_NOTE} characters")],
        )
    if schedule.max_runs is not None and schedule.max_runs < 1:
        raise InvalidScheduleError(
            "max_runs must be at least 1", errors=[("max_runs", "must be at least 1")]
        )
    if not 0 <= schedule.max_retries <= MAX_RETRIES_LIMIT:
        raise InvalidScheduleError(
            f"max_retries must be between 0 and {MAX_RETRIES_LIMIT}",
            errors=[("max_retries", f"must be between 0 and {MAX_RETRIES_LIMIT}")],
        )
    if schedule.timeout is not None and schedule.timeout <= 0:
        raise InvalidScheduleError(
            "timeout must be a positive number of seconds", errors=[("timeout", "must be positive")]
        )
