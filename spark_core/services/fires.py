"""Use cases of the fire ledger: read it, count it, explain one time, prune it."""

import builtins
from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

from spark_core.errors import NotFoundError
from spark_core.fires import FireCounters, FireOutcome, FireRecord, fire_record, stamp
from spark_core.models import (
    OverlapPolicy,
    Page,
    Schedule,
    ScheduleId,
    ScheduleStatus,
    SourceStatus,
    TaskStatus,
)
from spark_core.ports import (
    Clock,
    FireLedger,
    ScheduleRepository,
    SourceRepository,
    TaskFilter,
    TaskRepository,
    WorkflowRepository,
)
from spark_core.schedule_spec import ScheduleSpec

DEFAULT_RETENTION = timedelta(days=30)
PRUNE_BATCH = 5000
MAX_PAUSED_RECORDS = 1000
_JUST_BEFORE = timedelta(microseconds=1)


class Explanation(msgspec.Struct, frozen=True, kw_only=True):
    """Why a schedule did (not) run at a past time, or when and whether it runs next.

    ``summary`` is the answer in one or two sentences; ``record`` the ledger record it rests on
    (past times); ``next_run_at`` and ``blockers`` (what could stop the next fire) for now.
    """

    schedule_id: ScheduleId
    at: datetime
    summary: str
    record: FireRecord | None = None
    next_run_at: datetime | None = None
    blockers: list[str] = msgspec.field(default_factory=list)


class FireService:
    """Reads, counts, explains and prunes the fire ledger; records the times a pause skipped."""

    def __init__(
        self,
        *,
        fires: FireLedger,
        schedules: ScheduleRepository,
        tasks: TaskRepository,
        workflows: WorkflowRepository,
        sources: SourceRepository,
        clock: Clock,
        retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        self._fires = fires
        self._schedules = schedules
        self._tasks = tasks
        self._workflows = workflows
        self._sources = sources
        self._clock = clock
        self.retention = retention

    async def list(
        self, schedule_id: ScheduleId, *, outcome: FireOutcome | None = None,
        limit: int = 50, offset: int = 0,
    ) -> Page[FireRecord]:
        """A schedule's records, newest nominal time first; ``NotFoundError`` if the schedule
        does not exist."""
        await self._schedules.get(schedule_id)
        return await self._fires.list(schedule_id, outcome=outcome, limit=limit, offset=offset)

    async def counters(
        self, schedule_ids: Sequence[ScheduleId]
    ) -> dict[ScheduleId, FireCounters]:
        """The counters of each schedule; zeros for one without records."""
        found = await self._fires.counters(schedule_ids) if schedule_ids else {}
        return {sid: found.get(sid, FireCounters()) for sid in schedule_ids}

    async def prune(self) -> int:
        """Delete the records decided more than ``retention`` ago; returns how many went."""
        before = self._clock.now() - self.retention
        total = 0
        while True:
            deleted = await self._fires.prune(before=before, limit=PRUNE_BATCH)
            total += deleted
            if deleted < PRUNE_BATCH:
                return total

    async def record_paused(
        self, paused: Schedule, spec: ScheduleSpec, *, resumed_at: datetime
    ) -> int:
        """Write the nominal times a pause skipped (from the paused schedule's next time until
        ``resumed_at``) as ``missed``: resuming starts from now and replays none of them."""
        if paused.next_run_at is None or paused.next_run_at > resumed_at:
            return 0
        times = spec.last_fire_times(paused.next_run_at - _JUST_BEFORE, resumed_at,
                                     count=MAX_PAUSED_RECORDS)
        reason = (f"The schedule was paused (last changed {stamp(paused.updated_at)}); "
                  f"resuming at {stamp(resumed_at)} started from then and does not replay "
                  "times skipped while paused")
        return await self._fires.record([
            fire_record(paused.id, at, FireOutcome.MISSED, reason, decided_at=resumed_at)
            for at in times
        ])

    async def explain(self, schedule_id: ScheduleId, at: datetime | None = None) -> Explanation:
        """For a past ``at``: what happened at the schedule's nominal time at or just before
        it, and why. For now (no ``at``, or a future one): when it fires next and what could
        stop it (paused, a run still under way, its source inactive)."""
        schedule = await self._schedules.get(schedule_id)
        now = self._clock.now()
        if at is None or at >= now:
            return await self._explain_next(schedule, now)
        return await self._explain_past(schedule, at)

    async def _explain_past(self, schedule: Schedule, at: datetime) -> Explanation:
        page = await self._fires.list(schedule.id, until=at, limit=1, offset=0)
        record = page.items[0] if page.items else None
        if record is None:
            if at < schedule.created_at:
                summary = (f"The schedule did not exist yet at {stamp(at)}; it was created "
                           f"{stamp(schedule.created_at)}.")
            elif at < self._clock.now() - self.retention:
                summary = (f"No record at or before {stamp(at)}: the ledger keeps "
                           f"{self.retention.days} days.")
            else:
                summary = (f"No nominal time of this schedule was considered at or before "
                           f"{stamp(at)}: its first time came later, or the scheduler had "
                           "not reached it.")
            return Explanation(schedule_id=schedule.id, at=at, summary=summary)
        when = ("At" if record.nominal_time == at
                else f"The nominal time at or before {stamp(at)} was")
        summary = f"{when} {stamp(record.nominal_time)}: {record.outcome}. {record.reason}."
        if record.task_id:
            summary += f" Task: {record.task_id}."
        return Explanation(schedule_id=schedule.id, at=at, summary=summary, record=record)

    async def _explain_next(self, schedule: Schedule, now: datetime) -> Explanation:
        blockers = await self._blockers(schedule)
        if schedule.status == ScheduleStatus.COMPLETED:
            summary = "The schedule has completed: it never fires again."
        elif schedule.status == ScheduleStatus.PAUSED:
            summary = "The schedule is paused: it fires again only once resumed."
        elif schedule.next_run_at is None:
            summary = "The schedule has no next fire time."
        else:
            summary = f"Next fire: {stamp(schedule.next_run_at)}."
            if schedule.next_run_at < now:
                summary += (" That time has passed: the scheduler is not running or cannot "
                            "reach the store.")
        if blockers:
            summary += " What could stop it: " + "; ".join(blockers) + "."
        elif schedule.status == ScheduleStatus.ACTIVE:
            summary += " Nothing stops it now."
        return Explanation(schedule_id=schedule.id, at=now, summary=summary,
                           next_run_at=schedule.next_run_at, blockers=blockers)

    async def _blockers(self, schedule: Schedule) -> builtins.list[str]:
        blockers = []
        if schedule.status == ScheduleStatus.PAUSED:
            blockers.append("the schedule is paused")
        if schedule.overlap_policy != OverlapPolicy.ALLOW:
            for status in (TaskStatus.RUNNING, TaskStatus.PENDING):
                page = await self._tasks.list(
                    TaskFilter(schedule_id=schedule.id, status=status), limit=1, offset=0)
                if page.items:
                    blockers.append(
                        f"task {page.items[0].id} is still {status} (overlap policy "
                        f"'{schedule.overlap_policy}')")
        try:
            workflow = await self._workflows.get(schedule.workflow_id)
            source = await self._sources.get(workflow.source_id)
        except NotFoundError:
            blockers.append(f"its workflow {schedule.workflow_id} no longer exists")
        else:
            if source.status != SourceStatus.ACTIVE:
                blockers.append(f"its source {source.name} ({source.url}) is {source.status} "
                                "(its last check failed)")
        return blockers
