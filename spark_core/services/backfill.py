"""Backfill: runs of a schedule for the nominal times of a past range, made on request.

Every nominal time of the range gets a fire-ledger record ``backfilled`` (with its task), or
``coalesced`` into one run when the overlap policy is ``skip`` or ``buffer_one`` (as a catch-up
after downtime makes one run under them). A time that already has a run of the schedule is left
alone: the store's unique (schedule, nominal time) constraint would refuse a second one, and the
answer lists it as skipped. The runs, the records and a version bump of the schedule are one
compare-and-set, worked out again when the scheduler fired the schedule meanwhile
(``ScheduleService.backfill``); this module plans it.
"""

from datetime import UTC, datetime, timedelta

import msgspec

from spark_core.errors import InvalidScheduleError
from spark_core.fires import FireOutcome, FireRecord, fire_record, stamp
from spark_core.models import (
    OverlapPolicy,
    Schedule,
    ScheduleId,
    ScheduleType,
    TaskId,
)
from spark_core.schedule_spec import ScheduleSpec, parse_interval, parse_schedule

MAX_BACKFILL = 1000
"""At most this many nominal times in one backfill range; more is a 400."""
_JUST_BEFORE = timedelta(microseconds=1)


class BackfillFields(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A backfill request: the range (both ends included, in the past) and how its runs
    overlap (``allow``: one run per time, the default; ``skip`` or ``buffer_one``: one run,
    for the newest time, the others coalesced into it)."""

    start: datetime
    end: datetime
    overlap_policy: OverlapPolicy = OverlapPolicy.ALLOW


class BackfillRun(msgspec.Struct, frozen=True, kw_only=True):
    """One run a backfill makes (or would make): its nominal time and task."""

    nominal_time: datetime
    task_id: TaskId | None = None


class Backfill(msgspec.Struct, frozen=True, kw_only=True):
    """What a backfill did, or would do with ``dry_run``."""

    schedule_id: ScheduleId
    dry_run: bool
    start: datetime
    end: datetime
    overlap_policy: OverlapPolicy
    runs: list[BackfillRun]
    coalesced: list[datetime]
    """Times folded into the one run (``skip``, ``buffer_one``)."""
    skipped: list[datetime]
    """Times that already had a run of the schedule: left alone."""


def backfill_range(fields: BackfillFields, now: datetime) -> tuple[datetime, datetime]:
    """The range in UTC (naive = UTC); an error when it is reversed or reaches the future."""
    start, end = _utc(fields.start), _utc(fields.end)
    if end < start:
        raise InvalidScheduleError("end must not be before start",
                                   errors=[("end", "must not be before start")])
    if end > now:
        raise InvalidScheduleError("A backfill range must be in the past (end <= now)",
                                   errors=[("end", "must not be in the future")])
    return start, end


def backfill_times(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """The schedule's nominal times from ``start`` to ``end``, both included; an error beyond
    ``MAX_BACKFILL``."""
    times = _spec(schedule, start).fire_times(start - _JUST_BEFORE, end, limit=MAX_BACKFILL + 1)
    if len(times) > MAX_BACKFILL:
        raise InvalidScheduleError(
            f"The range holds more than {MAX_BACKFILL} fire times; backfill it in parts",
            errors=[("end", f"more than {MAX_BACKFILL} fire times")],
        )
    return times


def plan_backfill(schedule: Schedule, fields: BackfillFields, *, start: datetime,
                  end: datetime, taken: set[datetime], dry_run: bool) -> Backfill:
    """The runs, coalesced and skipped times of a backfill, before any task exists."""
    times = backfill_times(schedule, start, end)
    free = [at for at in times if at not in taken]
    one_run = fields.overlap_policy != OverlapPolicy.ALLOW
    return Backfill(schedule_id=schedule.id, dry_run=dry_run, start=start, end=end,
                    overlap_policy=fields.overlap_policy,
                    runs=[BackfillRun(nominal_time=at) for at in (free[-1:] if one_run else free)],
                    coalesced=free[:-1] if one_run else [],
                    skipped=[at for at in times if at in taken])


def _spec(schedule: Schedule, start: datetime) -> ScheduleSpec:
    """The schedule's expression over all time, its bounds left out: a cron's times before
    ``start_at`` and an interval's steps before its anchor (same phase) count."""
    if schedule.schedule_type == ScheduleType.ONE_TIME:
        raise InvalidScheduleError("A one-time schedule cannot be backfilled; run it instead",
                                   errors=[("schedule_type", "one-time cannot be backfilled")])
    anchor = schedule.start_at
    if schedule.schedule_type == ScheduleType.INTERVAL and start <= anchor:
        every = parse_interval(schedule.schedule_expr)
        anchor -= every * ((anchor - start) // every + 1)
    return parse_schedule(schedule.schedule_type, schedule.schedule_expr,
                          timezone=schedule.timezone, start_at=anchor, now=anchor)


def backfill_records(plan: Backfill, tasks_by_time: dict[datetime, TaskId], *,
                     now: datetime) -> list[FireRecord]:
    """``backfilled`` for each run, ``coalesced`` for each time folded into the one run."""
    schedule_id, folded = plan.schedule_id, plan.coalesced
    asked = f"Backfilled on request for {stamp(plan.start)} to {stamp(plan.end)}"
    records = [fire_record(schedule_id, at, FireOutcome.BACKFILLED, asked, decided_at=now,
                           task_id=task_id) for at, task_id in tasks_by_time.items()]
    if folded:
        (into, task_id), = tasks_by_time.items()
        reason = (f"{asked}; folded into the run at {stamp(into)}: the overlap policy "
                  f"'{plan.overlap_policy}' backfills one run")
        records += [fire_record(schedule_id, at, FireOutcome.COALESCED, reason,
                                decided_at=now, task_id=task_id) for at in folded]
    return sorted(records, key=lambda record: record.nominal_time)


def _utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive one is read as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
