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
"""

import asyncio
import logging
from datetime import datetime, timedelta

from spark_core.cancellation import cancel_and_wait, raise_if_cancelled
from spark_core.errors import InvalidScheduleError
from spark_core.models import (
    CatchupPolicy,
    OverlapPolicy,
    Schedule,
    ScheduleStatus,
    ScheduleType,
)
from spark_core.ports import Clock, SchedulePatch, Store
from spark_core.services.schedules import ScheduleService, scheduled_task
from spark_core.signals import TaskSignals

logger = logging.getLogger(__name__)

MAX_CATCHUP = 100
MISFIRE_GRACE = timedelta(seconds=60)
BATCH = 500
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
    ) -> None:
        self._store = store
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
        created. A store error propagates and leaves the schedule due for the next pass; only a
        schedule whose own expression cannot be executed is paused."""
        created = 0
        while True:
            due = await self._repository.due(limit=BATCH)
            for schedule in due.schedules:
                try:
                    created += await self.fire(schedule, due.now)
                except InvalidScheduleError as exc:
                    logger.error("Schedule %s cannot fire and is paused: %s", schedule.id, exc)
                    await self._pause(schedule, due.now)
            if created:
                self._signals.work_added()
            if len(due.schedules) < BATCH:
                return created

    async def fire(self, schedule: Schedule, now: datetime) -> int:
        """Fire one due schedule at ``now``; returns the number of tasks created (0 if another
        scheduler fired it first, or its policies held the runs back)."""
        due_at = schedule.next_run_at
        if due_at is None:
            return 0
        spec = self._schedules.spec(schedule)
        # Every fire time from due_at to now, or the newest MAX_CATCHUP of them after an outage.
        missed = spec.last_fire_times(due_at - _JUST_BEFORE, now, count=MAX_CATCHUP) or [due_at]
        fire_times = self._catch_up(schedule, missed, now)
        fire_times = await self._overlap(schedule, fire_times)
        tasks = [scheduled_task(schedule, scheduled_for=at, now=now) for at in fire_times]
        following = spec.next_after(max(now, missed[-1]))
        advanced = SchedulePatch(
            next_run_at=following,
            last_run_at=missed[-1],
            status=ScheduleStatus.ACTIVE if following is not None else ScheduleStatus.COMPLETED,
            updated_at=now,
        )
        won = await self._repository.fire(
            schedule.id, advanced, expected_version=schedule.version, tasks=tasks
        )
        return len(tasks) if won else 0

    @staticmethod
    def _catch_up(schedule: Schedule, missed: list[datetime], now: datetime) -> list[datetime]:
        if schedule.catchup_policy == CatchupPolicy.ALL:
            return missed[-MAX_CATCHUP:]
        latest = missed[-1]
        if schedule.catchup_policy == CatchupPolicy.NONE and now - latest > MISFIRE_GRACE:
            return []
        return [latest]

    async def _overlap(self, schedule: Schedule, fire_times: list[datetime]) -> list[datetime]:
        # A one-time schedule fires once in its life: an unfinished manual run must not eat it.
        unlimited = schedule.overlap_policy == OverlapPolicy.ALLOW
        if unlimited or schedule.schedule_type == ScheduleType.ONE_TIME or not fire_times:
            return fire_times
        pending, running = await self._repository.count_active_tasks(schedule.id)
        if schedule.overlap_policy == OverlapPolicy.SKIP:
            return fire_times[-1:] if pending + running == 0 else []
        return fire_times[-1:] if pending == 0 else []  # buffer_one

    async def _pause(self, schedule: Schedule, now: datetime) -> None:
        paused = SchedulePatch(status=ScheduleStatus.PAUSED, updated_at=now)
        await self._repository.fire(
            schedule.id, paused, expected_version=schedule.version, tasks=[]
        )
