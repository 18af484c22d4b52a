"""The scheduler: fires due schedules from their persisted ``next_run_at``.

It sleeps until the earliest ``next_run_at`` (or a schedule change), asks the store for the
schedules due now through an index, and for each one creates its tasks and advances
``next_run_at`` in one compare-and-set transaction on the schedule's version. Two schedulers on
one store may both see a schedule due; only one wins the compare-and-set, and the store's unique
(schedule, time) constraint is a second line behind it, so no (schedule, time) ever fires twice.
Due times are judged by the store's clock, so a node whose own clock is wrong fires on time.
The cost of a wake-up is proportional to the schedules due, not to all schedules.

Catch-up (times missed while Spark was down or busy): ``latest`` fires once for all of them,
``none`` fires only a run that is less than ``MISFIRE_GRACE`` late, ``all`` fires once per missed
time (at most ``MAX_CATCHUP``). Overlap (the previous run of the schedule still pending or
running): ``skip`` creates nothing, ``buffer_one`` queues at most one pending run, ``allow``
creates every run; under ``skip`` and ``buffer_one`` a catch-up creates at most one run.

Every nominal time a fire considers gets one fire-ledger record (``spark_core.fires``), written
in the fire's compare-and-set transaction, so a lost race writes nothing: ``fired`` or
``caught_up`` (late, after downtime), ``coalesced`` into a catch-up run, ``missed`` beyond what
the catch-up policy replays, ``skipped_overlap``, ``buffered``, ``dropped_buffer_full``. After a
restart the times that fell into the downtime are exactly the ones between ``next_run_at`` and
now, so they are written as records, not left as silence. A fire that fails is an ``error``.
"""

import asyncio
import logging
import random
from datetime import datetime, timedelta

from spark_core.cancellation import cancel_and_wait, raise_if_cancelled
from spark_core.errors import InvalidScheduleError, SparkError
from spark_core.fires import FireOutcome, FireRecord, fire_record, stamp
from spark_core.models import (
    CatchupPolicy,
    OverlapPolicy,
    Schedule,
    ScheduleStatus,
    ScheduleType,
    Task,
    TaskStatus,
)
from spark_core.ports import Clock, Metrics, SchedulePatch, Store, TaskFilter
from spark_core.services.schedules import ScheduleService, jitter_of, scheduled_task
from spark_core.signals import TaskSignals
from spark_core.telemetry import NoMetrics, log_fields

logger = logging.getLogger(__name__)

MAX_CATCHUP = 100
MAX_LEDGER = 1000
"""At most this many nominal times of one outage are written to the fire ledger (the newest)."""
MISFIRE_GRACE = timedelta(seconds=60)
BATCH = 500
CONCURRENT_FIRES = 8
"""Schedules fired at once within a pass (each is its own transaction)."""
_JUST_BEFORE = timedelta(microseconds=1)


class Scheduler:
    """Fires due schedules until stopped; one per process is enough, several are safe."""

    def __init__(
        self,
        *,
        store: Store,
        schedules: ScheduleService,
        clock: Clock,
        signals: TaskSignals,
        metrics: Metrics | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._rng = rng or random.Random()  # noqa: S311 - spreading work, not cryptography
        self._metrics: Metrics = metrics or NoMetrics()
        self._repository = store.schedules
        self._schedules = schedules
        self._clock = clock
        self._signals = signals
        self._loop: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """True between ``start`` and ``stop``."""
        return self._loop is not None and not self._loop.done()

    async def start(self) -> None:
        """Fire schedules in the background until ``stop``."""
        if not self.running:
            self._loop = asyncio.create_task(self._run(), name="spark-scheduler")

    async def stop(self) -> None:
        """Stop firing (tasks already created stay queued for the worker)."""
        if self._loop is not None:
            await cancel_and_wait([self._loop])
            self._loop = None

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
                await self._sleep_until_due()
            except Exception:  # the loop must outlive one bad pass (e.g. a lost database)
                raise_if_cancelled()
                logger.exception("Scheduler pass failed; trying again shortly")
                # The failed schedules are still due: without a pause this would spin.
                await self._clock.sleep(self._store.wakeups.poll_seconds)

    async def _sleep_until_due(self) -> None:
        """Sleep until the earliest due time (by the store's clock), a schedule change, or the
        feed's poll interval: the poll notices schedules another process changed when its
        hint was lost."""
        next_due = await self._repository.next_due()
        delay = self._store.wakeups.poll_seconds
        if next_due.at is not None:
            delay = min(delay, max(0.0, (next_due.at - next_due.now).total_seconds()))
        if delay <= 0:
            await asyncio.sleep(0)
            return
        sleeper = asyncio.ensure_future(self._clock.sleep(delay))
        changed = asyncio.ensure_future(self._signals.wait_for_schedule_change(delay + 1))
        try:
            await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            changed.cancel()

    async def tick(self) -> int:
        """Fire every schedule due now (by the store's clock); returns how many tasks were
        created. A store error is written to the fire ledger when the store still takes it,
        then propagates and leaves the schedule due for the next pass; only a schedule whose
        own expression cannot be executed is paused."""
        created = 0
        while True:
            due = await self._repository.due(limit=BATCH)
            # Several nodes see the same due schedules: in a random order they mostly fire
            # different ones instead of queueing behind each other's compare-and-set; a few
            # fires at once keep the store's connections busy.
            schedules = list(due.schedules)
            self._rng.shuffle(schedules)
            for start in range(0, len(schedules), CONCURRENT_FIRES):
                chunk = schedules[start:start + CONCURRENT_FIRES]
                results = await asyncio.gather(
                    *(self.fire(schedule, due.now) for schedule in chunk),
                    return_exceptions=True,
                )
                failure: BaseException | None = None
                for schedule, result in zip(chunk, results, strict=True):
                    if isinstance(result, int):
                        created += result
                    elif isinstance(result, InvalidScheduleError):
                        await self._unfireable(schedule, due.now, result)
                    elif isinstance(result, SparkError):
                        raise_if_cancelled()
                        await self._record_error(
                            schedule, due.now,
                            f"The fire failed ({result.message}); it is tried again on the "
                            "next pass",
                        )
                        failure = failure or result
                    else:
                        failure = failure or result
                if failure is not None:
                    if created:
                        self._signals.work_added()
                    raise failure
            if created:
                self._signals.work_added()
            if len(due.schedules) < BATCH:
                return created

    async def _unfireable(
        self, schedule: Schedule, now: datetime, exc: InvalidScheduleError
    ) -> None:
        """Pause a schedule whose own expression cannot be executed, saying why."""
        logger.error("Schedule %s cannot fire and is paused: %s", schedule.id, exc,
                     extra=log_fields(schedule_id=schedule.id, workflow_id=schedule.workflow_id))
        await self._record_error(
            schedule, now,
            f"The expression cannot be executed ({exc.message}); the schedule was paused",
        )
        await self._pause(schedule, now)

    async def fire(self, schedule: Schedule, now: datetime) -> int:
        """Fire one due schedule at ``now``; returns the number of tasks created (0 if another
        scheduler fired it first, or its policies held the runs back). Every nominal time
        considered gets one fire-ledger record, written in the fire's transaction."""
        due_at = schedule.next_run_at
        if due_at is None:
            return 0
        spec = self._schedules.spec(schedule)
        # Every fire time from due_at to now (the newest MAX_LEDGER of them after an outage).
        missed = spec.last_fire_times(due_at - _JUST_BEFORE, now, count=MAX_LEDGER) or [due_at]
        plan = _Plan(schedule, now, gap_from=missed[0])
        chosen = self._catch_up(schedule, missed, now, plan)
        if schedule.max_runs is not None:
            left = max(0, schedule.max_runs - schedule.run_count)
            plan.decide(chosen[left:], FireOutcome.MISSED,
                        f"The schedule reached its max_runs ({schedule.max_runs})")
            chosen = chosen[:left]
        chosen = await self._overlap(schedule, chosen, plan)
        tasks = [scheduled_task(schedule, scheduled_for=at, now=now, delay=self._delay(schedule))
                 for at in chosen]
        records = plan.records(tasks)
        run_count = schedule.run_count + len(tasks)
        exhausted = schedule.max_runs is not None and run_count >= schedule.max_runs
        following = None if exhausted else spec.next_after(max(now, missed[-1]))
        advanced = SchedulePatch(
            next_run_at=following,
            last_run_at=missed[-1],
            run_count=run_count,
            status=ScheduleStatus.ACTIVE if following is not None else ScheduleStatus.COMPLETED,
            updated_at=now,
        )
        won = await self._repository.fire(
            schedule.id, advanced, expected_version=schedule.version, tasks=tasks,
            fires=records,
        )
        if not won:
            return 0
        for task in tasks:
            if task.next_retry_at is not None and task.next_retry_at > now:
                self._signals.work_due(task.next_retry_at)
        self._report(schedule, records)
        return len(tasks)

    def _delay(self, schedule: Schedule) -> timedelta | None:
        """A random delay up to the schedule's jitter for one run, or ``None`` without."""
        jitter = jitter_of(schedule)
        if jitter is None:
            return None
        return timedelta(seconds=self._rng.uniform(0, jitter.total_seconds()))

    @staticmethod
    def _catch_up(
        schedule: Schedule, missed: list[datetime], now: datetime, plan: "_Plan"
    ) -> list[datetime]:
        """The times the catch-up policy runs; the others are planned as coalesced or
        missed."""
        policy = schedule.catchup_policy
        latest = missed[-1]
        if policy == CatchupPolicy.ALL:
            plan.decide(missed[:-MAX_CATCHUP], FireOutcome.MISSED,
                        f"{plan.gap()}; the catch-up policy 'all' replays only the newest "
                        f"{MAX_CATCHUP} times")
            return missed[-MAX_CATCHUP:]
        if policy == CatchupPolicy.NONE and now - latest > MISFIRE_GRACE:
            plan.decide(missed, FireOutcome.MISSED,
                        f"{plan.gap()}; the catch-up policy 'none' does not run late times")
            return []
        if policy == CatchupPolicy.NONE:
            plan.decide(missed[:-1], FireOutcome.MISSED,
                        f"{plan.gap()}; the catch-up policy 'none' runs only the latest time, "
                        "still on time")
        else:
            plan.fold(missed[:-1], latest,
                      f"{plan.gap()}; the catch-up policy 'latest' runs once for all missed "
                      "times")
        return [latest]

    async def _overlap(
        self, schedule: Schedule, fire_times: list[datetime], plan: "_Plan"
    ) -> list[datetime]:
        """The times the overlap policy lets run; the others are planned with the reason."""
        # A one-time schedule fires once in its life: an unfinished manual run must not eat it.
        unlimited = schedule.overlap_policy == OverlapPolicy.ALLOW
        if unlimited or schedule.schedule_type == ScheduleType.ONE_TIME or not fire_times:
            return fire_times
        pending, running = await self._repository.count_active_tasks(schedule.id)
        policy = schedule.overlap_policy
        if policy == OverlapPolicy.SKIP and pending + running > 0:
            blocker = await self._active_task(schedule, running=running > 0)
            plan.decide(fire_times, FireOutcome.SKIPPED_OVERLAP,
                        f"The previous run (task {blocker}) was still "
                        f"{'running' if running else 'pending'} (overlap policy 'skip')")
            return []
        if policy == OverlapPolicy.BUFFER_ONE and pending > 0:
            blocker = await self._active_task(schedule, running=False)
            plan.decide(fire_times, FireOutcome.DROPPED_BUFFER_FULL,
                        f"Task {blocker} already waited in the buffer behind a running one "
                        "(overlap policy 'buffer_one' queues at most one)")
            return []
        if policy == OverlapPolicy.BUFFER_ONE and running > 0:
            blocker = await self._active_task(schedule, running=True)
            plan.buffer(fire_times[-1], f"Queued behind task {blocker}, still running "
                                        "(overlap policy 'buffer_one')")
        plan.fold(fire_times[:-1], fire_times[-1],
                  f"Folded into the run at {stamp(fire_times[-1])}: the overlap policy "
                  f"'{policy}' creates one run at a time")
        return fire_times[-1:]

    async def _active_task(self, schedule: Schedule, *, running: bool) -> str:
        """The id of one running (or pending) task of the schedule, to name in a reason."""
        status = TaskStatus.RUNNING if running else TaskStatus.PENDING
        page = await self._store.tasks.list(
            TaskFilter(schedule_id=schedule.id, status=status), limit=1, offset=0
        )
        return page.items[0].id if page.items else "?"

    def _report(self, schedule: Schedule, records: list[FireRecord]) -> None:
        """Metrics for every record; a log line for each run or skip, one per group of
        coalesced or missed times (an outage can leave hundreds)."""
        groups: dict[FireOutcome, list[FireRecord]] = {}
        for record in records:
            self._metrics.schedule_decided(outcome=record.outcome,
                                           delay_seconds=record.delay_seconds)
            groups.setdefault(record.outcome, []).append(record)
        for outcome, group in groups.items():
            level = logging.WARNING if outcome == FireOutcome.MISSED else logging.INFO
            extra = log_fields(schedule_id=schedule.id, workflow_id=schedule.workflow_id,
                               outcome=outcome)
            if outcome in (FireOutcome.COALESCED, FireOutcome.MISSED):
                logger.log(level, "Schedule %s (workflow %s): %d time(s) from %s to %s %s: %s",
                           schedule.id, schedule.workflow_id, len(group),
                           stamp(group[0].nominal_time), stamp(group[-1].nominal_time),
                           outcome, group[-1].reason, extra=extra)
                continue
            for record in group:
                logger.log(level, "Schedule %s %s for %s: task %s, workflow %s (%s)",
                           schedule.id, outcome, stamp(record.nominal_time), record.task_id,
                           schedule.workflow_id, record.reason,
                           extra={**extra, **log_fields(task_id=record.task_id)})

    async def _record_error(self, schedule: Schedule, now: datetime, reason: str) -> None:
        """Write an ``error`` record for the schedule's due time, if the store takes it."""
        if schedule.next_run_at is None:
            return
        record = fire_record(schedule.id, schedule.next_run_at, FireOutcome.ERROR, reason,
                             decided_at=now)
        self._metrics.schedule_decided(outcome=FireOutcome.ERROR,
                                       delay_seconds=record.delay_seconds)
        logger.warning("Schedule %s could not fire for %s: %s", schedule.id,
                       stamp(record.nominal_time), reason,
                       extra=log_fields(schedule_id=schedule.id,
                                        workflow_id=schedule.workflow_id, outcome="error"))
        try:
            await self._store.fires.record([record])
        except SparkError as exc:  # the store is the likely culprit: the log line stays
            raise_if_cancelled()
            logger.warning("The fire ledger could not record it either: %s", exc)

    async def _pause(self, schedule: Schedule, now: datetime) -> None:
        paused = SchedulePatch(status=ScheduleStatus.PAUSED, updated_at=now)
        await self._repository.fire(
            schedule.id, paused, expected_version=schedule.version, tasks=[]
        )


class _Plan:
    """The ledger records of one fire, decided time by time before the compare-and-set."""

    def __init__(self, schedule: Schedule, now: datetime, *, gap_from: datetime) -> None:
        self._schedule = schedule
        self._now = now
        self._gap_from = gap_from
        self._decided: dict[datetime, tuple[FireOutcome, str]] = {}
        self._folded: dict[datetime, tuple[datetime, str]] = {}
        self._buffered: dict[datetime, str] = {}

    def gap(self) -> str:
        """The sentence naming the time the scheduler did not fire."""
        return (f"The scheduler did not fire from {stamp(self._gap_from)} until "
                f"{stamp(self._now)} (Spark stopped or the store unreachable)")

    def decide(self, times: list[datetime], outcome: FireOutcome, reason: str) -> None:
        """These times end with ``outcome`` and no task."""
        for at in times:
            self._decided[at] = (outcome, reason)

    def fold(self, times: list[datetime], into: datetime, reason: str) -> None:
        """These times are coalesced into the run at ``into``."""
        for at in times:
            self._folded.setdefault(at, (into, reason))

    def buffer(self, at: datetime, reason: str) -> None:
        """The run at ``at`` waits behind a running one."""
        self._buffered[at] = reason

    def records(self, tasks: list[Task]) -> list[FireRecord]:
        """Every record, oldest nominal time first, given the tasks to be created."""
        schedule_id, now = self._schedule.id, self._now
        by_time = {task.scheduled_for: task.id for task in tasks if task.scheduled_for}
        records = []
        for at, (outcome, reason) in self._decided.items():
            records.append(fire_record(schedule_id, at, outcome, reason, decided_at=now))
        for at, (into, reason) in self._folded.items():
            if at in by_time:
                continue
            records.append(fire_record(schedule_id, at, FireOutcome.COALESCED, reason,
                                       decided_at=now, task_id=by_time.get(into)))
        # A run that earlier missed times were folded into is a catch-up run, however late.
        catching_up = {into for into, _ in self._folded.values()}
        for at, task_id in by_time.items():
            late = now - at > MISFIRE_GRACE
            if at in self._buffered:
                outcome, reason = FireOutcome.BUFFERED, self._buffered[at]
            elif late or at in catching_up:
                outcome, reason = FireOutcome.CAUGHT_UP, (
                    f"{self.gap()}; the catch-up policy "
                    f"'{self._schedule.catchup_policy}' ran this time late")
            else:
                outcome, reason = FireOutcome.FIRED, "Fired on time"
            records.append(fire_record(schedule_id, at, outcome, reason, decided_at=now,
                                       task_id=task_id))
        return sorted(records, key=lambda record: record.nominal_time)
