"""Schedule jitter over a settable clock and a seeded random source."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from spark_core.errors import InvalidScheduleError
from spark_core.fires import FireOutcome
from spark_core.models import Schedule, Task, Workflow
from spark_core.ports import TaskFilter
from spark_core.scheduler import Scheduler
from spark_core.signals import TaskSignals
from tests.unit.conftest import World, make_schedule

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


async def _schedule(world: World, workflow: Workflow, **options: object) -> Schedule:
    return await make_schedule(world, workflow, "interval", "1h",
                               **{"overlap_policy": "allow", **options})


def _scheduler(world: World, signals: TaskSignals, seed: int) -> Scheduler:
    return Scheduler(store=world.store, schedules=world.spark.schedules, clock=world.clock,
                     signals=signals, rng=random.Random(seed))


async def _tasks(world: World, schedule: Schedule) -> list[Task]:
    page = await world.store.tasks.list(TaskFilter(schedule_id=schedule.id), limit=100, offset=0)
    return page.items


async def test_jittered_runs_keep_their_nominal_time_and_wait_at_most_the_jitter(
    world: World, echo: Workflow
) -> None:
    """Each fire's task keeps scheduled_for = the nominal time and becomes claimable at a
    random time within [nominal, nominal + jitter]; the ledger and next show nominal times."""
    world.clock.set(T0)
    schedules = [await _schedule(world, echo, jitter="30m") for _ in range(20)]
    assert schedules[0].jitter == "30m"
    nominal = T0 + timedelta(hours=1)
    assert await world.spark.schedules.next_runs(schedules[0].id, 1) == [nominal]
    signals = TaskSignals()
    world.clock.set(nominal)
    assert await _scheduler(world, signals, seed=15).tick() == 20
    delays = []
    for schedule in schedules:
        (task,) = await _tasks(world, schedule)
        assert task.scheduled_for == nominal
        assert task.next_retry_at is not None
        delays.append((task.next_retry_at - nominal).total_seconds())
        (record,) = (await world.spark.fires.list(schedule.id, limit=10, offset=0)).items
        assert (record.nominal_time, record.outcome) == (nominal, FireOutcome.FIRED)
    assert all(0 <= delay <= 30 * 60 for delay in delays)
    assert len(set(delays)) == 20  # spread, not all in the same second
    earliest = nominal + timedelta(seconds=min(delays))
    assert signals.next_work_due(nominal) == earliest


async def test_a_jittered_run_is_not_claimed_before_its_delay(
    world: World, echo: Workflow
) -> None:
    """The queue skips the run until nominal + delay, then hands it out."""
    world.clock.set(T0)
    schedule = await _schedule(world, echo, jitter="10m")
    world.clock.set(T0 + timedelta(hours=1))
    assert await _scheduler(world, TaskSignals(), seed=3).tick() == 1
    (task,) = await _tasks(world, schedule)
    assert task.next_retry_at is not None
    world.clock.set(task.next_retry_at - timedelta(seconds=1))
    assert await world.store.queue.claim(owner="a", limit=10, lease_seconds=30) == []
    world.clock.set(task.next_retry_at)
    claimed = await world.store.queue.claim(owner="a", limit=10, lease_seconds=30)
    assert [claimed_task.id for claimed_task in claimed] == [task.id]


async def test_without_jitter_a_run_is_claimable_at_once(world: World, echo: Workflow) -> None:
    """No jitter: the fired task has no next_retry_at and nothing is announced for later."""
    world.clock.set(T0)
    schedule = await _schedule(world, echo)
    signals = TaskSignals()
    world.clock.set(T0 + timedelta(hours=1))
    assert await _scheduler(world, signals, seed=1).tick() == 1
    (task,) = await _tasks(world, schedule)
    assert task.next_retry_at is None
    assert signals.next_work_due(world.clock.now()) is None


@pytest.mark.parametrize("jitter", ["0s", "soon", "-5s"])
async def test_a_jitter_that_is_not_a_duration_is_refused(
    world: World, echo: Workflow, jitter: str
) -> None:
    """A jitter is parsed like an interval: anything else is an error naming the field."""
    with pytest.raises(InvalidScheduleError) as raised:
        await _schedule(world, echo, jitter=jitter)
    assert raised.value.errors[0][0] == "jitter"


def test_the_worker_wakes_when_the_earliest_jittered_run_is_due() -> None:
    """next_work_due forgets past times and answers the earliest future one."""
    signals = TaskSignals()
    signals.work_due(T0 + timedelta(seconds=40))
    signals.work_due(T0 + timedelta(seconds=10))
    assert signals.next_work_due(T0) == T0 + timedelta(seconds=10)
    assert signals.next_work_due(T0 + timedelta(seconds=10)) == T0 + timedelta(seconds=40)
    assert signals.next_work_due(T0 + timedelta(seconds=41)) is None
