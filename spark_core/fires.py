"""The fire ledger's values: one record per schedule and nominal time the scheduler considered.

The ledger answers "why did my schedule (not) run at 09:00?". Every decision the scheduler takes
about a nominal fire time becomes one ``FireRecord`` keyed (``schedule_id``, ``nominal_time``),
with an outcome and a reason a user can read. A record a fire writes replaces an ``error``
record of the same time (the fire was retried and decided); ``FireLedger.record`` never
overwrites a decision already written.
"""

import enum
from datetime import UTC, datetime

import msgspec

from spark_core.models import ScheduleId, TaskId


class FireOutcome(enum.StrEnum):
    """What became of one nominal fire time."""

    FIRED = "fired"
    """A task was created for it, on time (within the misfire grace)."""
    CAUGHT_UP = "caught_up"
    """A task was created for it late, after downtime, by the catch-up policy."""
    COALESCED = "coalesced"
    """Missed, and folded into one later catch-up run (``task_id`` names that run)."""
    MISSED = "missed"
    """Not run: downtime or a pause beyond what the catch-up policy replays."""
    SKIPPED_OVERLAP = "skipped_overlap"
    """Not run: the previous run was still pending or running (policy ``skip``)."""
    BUFFERED = "buffered"
    """Queued behind a run still under way (policy ``buffer_one``)."""
    DROPPED_BUFFER_FULL = "dropped_buffer_full"
    """Not run: a run already waited in the one-slot buffer (policy ``buffer_one``)."""
    ERROR = "error"
    """The fire itself failed (the store, or an expression that cannot be executed)."""
    BACKFILLED = "backfilled"
    """A task was created for it afterwards, by a backfill asked for through the API."""

    @property
    def created_task(self) -> bool:
        """True for the outcomes that created a task of their own."""
        return self in (FireOutcome.FIRED, FireOutcome.CAUGHT_UP, FireOutcome.BUFFERED,
                        FireOutcome.BACKFILLED)


class FireRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One decision about one nominal fire time of a schedule."""

    schedule_id: ScheduleId
    nominal_time: datetime
    outcome: FireOutcome
    reason: str
    task_id: TaskId | None = None
    decided_at: datetime
    delay_seconds: float


class FireCounters(msgspec.Struct, frozen=True, kw_only=True):
    """A schedule's ledger in numbers, over the records still retained.

    ``fired_count`` counts fired, caught-up and buffered times; ``skipped_overlap_count``
    counts skipped_overlap and dropped_buffer_full; ``last_outcome`` is the outcome of the
    newest nominal time.
    """

    fired_count: int = 0
    missed_count: int = 0
    skipped_overlap_count: int = 0
    last_outcome: FireOutcome | None = None


COUNTED_AS_FIRED = (FireOutcome.FIRED, FireOutcome.CAUGHT_UP, FireOutcome.BUFFERED)
COUNTED_AS_SKIPPED = (FireOutcome.SKIPPED_OVERLAP, FireOutcome.DROPPED_BUFFER_FULL)


def fire_record(
    schedule_id: ScheduleId, nominal_time: datetime, outcome: FireOutcome, reason: str, *,
    decided_at: datetime, task_id: TaskId | None = None,
) -> FireRecord:
    """A record with its delay worked out (``decided_at`` - ``nominal_time``, in seconds)."""
    return FireRecord(
        schedule_id=schedule_id,
        nominal_time=nominal_time,
        outcome=outcome,
        reason=reason,
        task_id=task_id,
        decided_at=decided_at,
        delay_seconds=round((decided_at - nominal_time).total_seconds(), 6),
    )


def count(records: list[FireRecord]) -> FireCounters:
    """The counters of one schedule's records (what every store computes in SQL)."""
    newest = max(records, key=lambda record: record.nominal_time, default=None)
    return FireCounters(
        fired_count=sum(record.outcome in COUNTED_AS_FIRED for record in records),
        missed_count=sum(record.outcome == FireOutcome.MISSED for record in records),
        skipped_overlap_count=sum(record.outcome in COUNTED_AS_SKIPPED for record in records),
        last_outcome=newest.outcome if newest else None,
    )


def stamp(at: datetime) -> str:
    """A time for a reason sentence: UTC, to the second."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
