"""Schedulers on real SQLite files, as separate Spark processes would run them: each has its own
connection to the same file, and they share a settable clock so that every fire time is exact.

Two schedulers racing never fire a (schedule, time) twice and never drop one; a restart (new
connection and scheduler on the same file) keeps interval anchors and lets the catch-up policy
decide what happens to fire times that came due while Spark was down.
"""

import asyncio
import contextlib
import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Coroutine, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

from spark_adapters.sqlite import SqliteStore
from spark_adapters.sqlite.rows import decode_datetime
from spark_adapters.sqlite.schedules import SqliteScheduleRepository
from spark_core.errors import StoreUnavailableError
from spark_core.facade import Spark
from spark_core.fires import FireRecord
from spark_core.models import (
    Schedule,
    ScheduleId,
    ScheduleStatus,
    ScheduleType,
    Task,
    Workflow,
)
from spark_core.ports import Clock, SchedulePatch
from spark_core.services.schedules import ScheduleFields
from tests.contract.builders import a_workflow
from tests.fakes.clock import FakeClock
from tests.fakes.secrets import FakeSecretBox
from tests.fakes.sources import FakeConnector

T = TypeVar("T")

T0 = datetime(2026, 3, 2, 8, 0, 0, 250000, tzinfo=UTC)
"""Start of every test; a quarter second past the minute, so no anchor sits on a boundary."""

SCHEDULES = 200
HORIZON = timedelta(minutes=30)
BARRIER_TIMEOUT = 120.0


class Node:
    """One Spark process's scheduling: its own event loop, its own connections to the file, and
    the services and scheduler wired by ``Spark.from_ports``.

    The loop runs only inside ``run`` (in whichever thread calls it), so a test can drive two
    nodes from two threads at the same moment, as two processes would run.
    """

    def __init__(self, path: Path, clock: Clock,
                 store_type: type[SqliteStore] = SqliteStore) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = store_type(path, clock=clock)
        spark = Spark.from_ports(store=self.store, connector=FakeConnector(),
                                 secrets=FakeSecretBox(), clock=clock)
        self.schedules = spark.schedules
        self.scheduler = spark.scheduler
        self.run(self._open())

    async def _open(self) -> None:
        await self.store.open()
        await self.store.migrate()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` to its end on this node's event loop, in the calling thread."""
        return self.loop.run_until_complete(work)

    def workflow(self) -> Workflow:
        """A workflow on a fresh source, stored through the ports."""
        return self.run(a_workflow(self.store))

    def create(self, workflow: Workflow, kind: str, expr: str, **options: object) -> Schedule:
        """Create a schedule through the service, as the API or CLI would."""
        fields = msgspec.convert(
            {"workflow_id": workflow.id, "schedule_type": kind, "schedule_expr": expr,
             **options},
            ScheduleFields,
        )
        return self.run(self.schedules.create(fields))

    def get(self, schedule_id: ScheduleId) -> Schedule:
        """One schedule, read through the service."""
        return self.run(self.schedules.get(schedule_id))

    def tick(self) -> int:
        """One pass of this node's scheduler; the number of tasks it created."""
        return self.run(self.scheduler.tick())

    def nothing_due(self) -> bool:
        """Whether no schedule is due by the store's clock."""
        return not self.run(self.store.schedules.due(limit=1)).schedules

    def close(self) -> None:
        """Close the store, then the loop."""
        try:
            self.run(self.store.close())
        finally:
            self.loop.close()


def _query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on a plain connection of its own (what the test checks, read outside
    any node)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def fired_times(path: Path) -> dict[str, list[datetime]]:
    """Every scheduled task's nominal time, per schedule id, earliest first (read with SQL:
    thousands of tasks are more than one page)."""
    times: dict[str, list[datetime]] = {}
    for schedule_id, scheduled_for in _query(
        path, "SELECT schedule_id, scheduled_for FROM tasks WHERE schedule_id IS NOT NULL "
              "ORDER BY scheduled_for"
    ):
        times.setdefault(schedule_id, []).append(decode_datetime(scheduled_for))
    return times


def duplicates(path: Path) -> list[tuple[str, str, int]]:
    """(schedule, time, count) for every pair that has more than one task."""
    return [(row[0], row[1], row[2]) for row in _query(
        path,
        "SELECT schedule_id, scheduled_for, count(*) FROM tasks "
        "WHERE schedule_id IS NOT NULL GROUP BY schedule_id, scheduled_for "
        "HAVING count(*) > 1"
    )]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """The database file both nodes open."""
    return tmp_path / "data" / "spark.db"


@pytest.fixture
def clock() -> FakeClock:
    """The clock every node reads."""
    return FakeClock(T0)


@pytest.fixture
def nodes(path: Path, clock: FakeClock) -> Iterator[list[Node]]:
    """Two nodes on one file."""
    pair = [Node(path, clock), Node(path, clock)]
    yield pair
    for node in pair:
        node.close()


def _minute_boundaries(after: datetime, until: datetime) -> list[datetime]:
    first = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return [first + timedelta(minutes=k)
            for k in range(int((until - first) / timedelta(minutes=1)) + 1)]


def _every(step: timedelta, start: datetime, until: datetime) -> list[datetime]:
    return [start + k * step for k in range(1, int((until - start) / step) + 1)]


def _seed(node: Node, clock: FakeClock, workflow: Workflow,
          count: int) -> tuple[dict[ScheduleId, list[datetime]], set[ScheduleId]]:
    """``count`` schedules (cron every minute, 30 s interval, one-time), created 137 ms apart so
    their anchors differ; returns every fire time each is due by ``T0 + HORIZON``, and the
    one-time ones."""
    until = T0 + HORIZON
    expected: dict[ScheduleId, list[datetime]] = {}
    one_time: set[ScheduleId] = set()
    for index in range(count):
        created = clock.advance(0.137) if index else clock.now()
        if index % 3 == 0:
            schedule = node.create(workflow, "cron", "* * * * *", overlap_policy="allow")
            expected[schedule.id] = _minute_boundaries(created, until)
        elif index % 3 == 1:
            schedule = node.create(workflow, "interval", "30s", overlap_policy="allow")
            expected[schedule.id] = _every(timedelta(seconds=30), created, until)
        else:
            at = T0 + timedelta(seconds=60 + (index * 37) % 1500, milliseconds=index)
            schedule = node.create(workflow, "one-time", at.isoformat(), overlap_policy="allow")
            expected[schedule.id] = [at]
            one_time.add(schedule.id)
    return expected, one_time


def _clock_steps(start: datetime, seed: int) -> list[datetime]:
    """Times from ``start`` to ``T0 + HORIZON`` in random steps of 1-12 s: shorter than the
    shortest period, so catch-up never merges two fire times."""
    rng = random.Random(seed)
    steps, now, end = [], start, T0 + HORIZON
    while now < end:
        step = timedelta(seconds=rng.randint(1, 12), milliseconds=rng.randint(0, 999))
        now = min(end, now + step)
        steps.append(now)
    return steps


def _tick_together(nodes: list[Node], clock: FakeClock, steps: list[datetime]) -> list[int]:
    """At each step, both nodes' ``tick()`` run at once in two threads; returns tasks created
    per node."""
    barrier = threading.Barrier(len(nodes) + 1, timeout=BARRIER_TIMEOUT)
    created = [0] * len(nodes)
    errors: list[BaseException] = []
    finished = threading.Event()

    def drive(index: int) -> None:
        while True:
            barrier.wait()
            if finished.is_set():
                return
            try:
                created[index] += nodes[index].tick()
            except BaseException as exc:  # handed back to the test thread, which re-raises it
                errors.append(exc)
            barrier.wait()

    threads = [threading.Thread(target=drive, args=(i,)) for i in range(len(nodes))]
    for thread in threads:
        thread.start()
    try:
        for when in steps:
            clock.set(when)
            barrier.wait()  # go
            barrier.wait()  # every node has finished this step
    finally:
        finished.set()
        barrier.wait()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return created


def test_two_schedulers_on_one_file_fire_every_due_time_exactly_once(
    nodes: list[Node], clock: FakeClock, path: Path
) -> None:
    """200 schedules driven for 30 minutes by two schedulers ticking at the same moments in two
    threads: no (schedule, time) has two tasks, none is missing, each one-time ran once."""
    workflow = nodes[0].workflow()
    expected, one_time = _seed(nodes[0], clock, workflow, SCHEDULES)
    steps = _clock_steps(clock.now(), seed=4)
    assert len(steps) > 200

    created = _tick_together(nodes, clock, steps)

    assert duplicates(path) == []
    fired = fired_times(path)
    assert fired == expected
    total = sum(len(times) for times in expected.values())
    assert sum(created) == total > 5000
    assert min(created) > 0, f"one scheduler won every fire: {created}"
    statuses = Counter(s.status for s in _all_schedules(nodes[1]))
    assert statuses == {ScheduleStatus.ACTIVE: SCHEDULES - len(one_time),
                        ScheduleStatus.COMPLETED: len(one_time)}
    for schedule_id in one_time:
        assert len(fired[schedule_id]) == 1


def _all_schedules(node: Node) -> list[Schedule]:
    page = node.run(node.schedules.list(limit=SCHEDULES + 1))
    assert page.total == SCHEDULES
    return page.items


class SharedClock(FakeClock):
    """A settable clock whose sleepers may be on event loops in other threads, as the
    scheduler loops of two processes would be."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self._lock = threading.Lock()
        self._waiting: list[tuple[datetime, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    async def sleep(self, seconds: float) -> None:
        """Wait until the shared time has advanced by ``seconds``."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (self.now() + timedelta(seconds=seconds), loop, future)
        with self._lock:
            self._waiting.append(entry)
        try:
            await future
        finally:
            with self._lock:
                self._waiting.remove(entry)

    def set(self, when: datetime) -> None:
        """Jump to ``when`` and wake, on their own loops, the sleepers whose time has come."""
        with self._lock:
            self._now = when
            due = [(loop, future) for at, loop, future in self._waiting if at <= when]
        for loop, future in due:
            loop.call_soon_threadsafe(_wake, future)


def _wake(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


def test_two_scheduler_loops_in_their_own_threads_fire_each_time_once(path: Path) -> None:
    """The background loops of two schedulers, each on its own event loop and connection, woken
    by the shared clock, fire 90 schedules over 10 minutes without a duplicate or a gap."""
    clock = SharedClock(T0)
    nodes = [Node(path, clock), Node(path, clock)]
    observer = Node(path, clock)
    workflow = nodes[0].workflow()
    until = T0 + timedelta(minutes=10)
    expected: dict[ScheduleId, list[datetime]] = {}
    for index in range(90):
        created = clock.now()
        if index % 2:
            schedule = nodes[index % 2].create(workflow, "interval", "30s",
                                               overlap_policy="allow")
            expected[schedule.id] = _every(timedelta(seconds=30), created, until)
        else:
            schedule = nodes[index % 2].create(workflow, "cron", "* * * * *",
                                               overlap_policy="allow")
            expected[schedule.id] = _minute_boundaries(created, until)
        clock.advance(0.211)
    stop = threading.Event()
    failures: list[BaseException] = []

    def run_loop(node: Node) -> None:
        async def main() -> None:
            await node.scheduler.start()
            await asyncio.to_thread(stop.wait)
            await node.scheduler.stop()

        try:
            node.run(main())
        except BaseException as exc:  # handed back to the test thread, which re-raises it
            failures.append(exc)

    threads = [threading.Thread(target=run_loop, args=(node,)) for node in nodes]
    for thread in threads:
        thread.start()
    try:
        now = clock.now()
        while now < until:
            now = min(until, now + timedelta(seconds=7))
            clock.set(now)
            _wait_until_nothing_due(observer, now)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        for node in [*nodes, observer]:
            node.close()
    assert not failures
    assert duplicates(path) == []
    assert fired_times(path) == expected


def _wait_until_nothing_due(observer: Node, now: datetime, within: float = 30.0) -> None:
    """Block until no schedule is due at ``now`` (the shared clock's time) any more."""
    deadline = time.monotonic() + within
    while not observer.nothing_due():
        assert time.monotonic() < deadline, f"schedules still due at {now} after {within} s"
        time.sleep(0.005)


@pytest.mark.parametrize(("policy", "fired_at_restart"), [
    pytest.param("latest", [40], id="latest-fires-one"),
    pytest.param("all", [20, 30, 40], id="all-fires-each"),
    pytest.param("none", [], id="none-fires-nothing"),
])
def test_a_restart_keeps_the_interval_anchor_and_catches_up_by_policy(
    path: Path, clock: FakeClock, policy: str, fired_at_restart: list[int]
) -> None:
    """A `10m` interval fires at 10 min; Spark is down from 15 to 45.5 min; a new process on the
    same file still expects 20 min, fires the missed 20/30/40 as its policy says, then 50."""
    def minutes(*values: int) -> list[datetime]:
        return [T0 + timedelta(minutes=m) for m in values]

    before = Node(path, clock)
    try:
        schedule = before.create(before.workflow(), "interval", "10m",
                                 catchup_policy=policy, overlap_policy="allow")
        clock.set(T0 + timedelta(minutes=10))
        assert before.tick() == 1
        clock.set(T0 + timedelta(minutes=15))
        assert before.tick() == 0
    finally:
        before.close()

    clock.set(T0 + timedelta(minutes=45, seconds=30))
    after = Node(path, clock)
    try:
        stored = after.get(schedule.id)
        assert (stored.start_at, stored.next_run_at) == (T0, T0 + timedelta(minutes=20))
        assert after.tick() == len(fired_at_restart)
        assert fired_times(path).get(schedule.id, []) == minutes(10, *fired_at_restart)
        assert after.get(schedule.id).next_run_at == T0 + timedelta(minutes=50)
        assert after.tick() == 0
        clock.set(T0 + timedelta(minutes=50))
        assert after.tick() == 1
        assert fired_times(path)[schedule.id] == minutes(10, *fired_at_restart, 50)
        assert duplicates(path) == []
    finally:
        after.close()


def test_a_one_time_schedule_due_while_down_runs_once_after_the_restart(
    path: Path, clock: FakeClock
) -> None:
    """A one-time run that came due while Spark was down runs once when it is back (catch-up
    `latest`), the schedule completes, and neither of two schedulers fires it again."""
    before = Node(path, clock)
    at = T0 + timedelta(minutes=5)
    try:
        schedule = before.create(before.workflow(), "one-time", at.isoformat())
    finally:
        before.close()

    clock.set(T0 + timedelta(minutes=30))
    after = [Node(path, clock), Node(path, clock)]
    try:
        assert sum(node.tick() for node in after) == 1
        for _ in range(3):
            clock.advance(minutes=10)
            assert sum(node.tick() for node in after) == 0
        assert fired_times(path)[schedule.id] == [at]
        completed = after[0].get(schedule.id)
        assert (completed.status, completed.next_run_at) == (ScheduleStatus.COMPLETED, None)
    finally:
        for node in after:
            node.close()


LOCKED = "The database is locked by another process for too long (database is locked)"
"""What the SQLite store raises when another process held the write lock past the timeout."""


class LockedSchedules(SqliteScheduleRepository):
    """Schedules whose next ``locked`` fires fail as SQLite does when another process holds
    the write lock past the busy timeout."""

    locked = 0
    attempts = 0

    async def fire(self, schedule_id: ScheduleId, patch: SchedulePatch, *,
                   expected_version: int, tasks: Sequence[Task],
                   fires: Sequence[FireRecord] = ()) -> bool:
        """Fail while locked, then fire as usual."""
        self.attempts += 1
        if self.locked:
            self.locked -= 1
            raise StoreUnavailableError(LOCKED)
        return await super().fire(schedule_id, patch, expected_version=expected_version,
                                  tasks=tasks, fires=fires)


class LockedStore(SqliteStore):
    """A SQLite store whose schedule fires can be made to fail as if the file were locked."""

    schedules: LockedSchedules

    def __init__(self, path: str | Path, *, clock: Clock | None = None) -> None:
        super().__init__(path, clock=clock)
        self.schedules = LockedSchedules(self.database, clock=self.clock, hints=self.wakeups)


def _locked_node(path: Path, clock: FakeClock) -> tuple[Node, LockedSchedules]:
    node = Node(path, clock, LockedStore)
    assert isinstance(node.store, LockedStore)
    return node, node.store.schedules


def test_a_locked_database_delays_a_fire_but_never_pauses_the_schedule(
    path: Path, clock: FakeClock
) -> None:
    """A fire that fails because another process held the database too long leaves the schedule
    active and due; the next pass fires it."""
    node, schedules = _locked_node(path, clock)
    try:
        schedule = node.create(node.workflow(), "interval", "1m")
        clock.set(T0 + timedelta(minutes=1))
        schedules.locked = 1
        with pytest.raises(StoreUnavailableError, match="database is locked"):
            node.tick()
        kept = node.get(schedule.id)
        assert (kept.status, kept.next_run_at) == (ScheduleStatus.ACTIVE, T0 + timedelta(minutes=1))
        assert node.tick() == 1
        assert fired_times(path)[schedule.id] == [T0 + timedelta(minutes=1)]
    finally:
        node.close()


def test_the_scheduler_loop_waits_before_retrying_a_failed_pass(
    path: Path, clock: FakeClock
) -> None:
    """While the database refuses writes the loop retries once per idle period of the clock, not
    in a tight loop, and fires as soon as the database accepts the write."""
    node, schedules = _locked_node(path, clock)

    async def scenario() -> None:
        schedule = await node.schedules.create(ScheduleFields(
            workflow_id=(await a_workflow(node.store)).id,
            schedule_type=ScheduleType.INTERVAL, schedule_expr="1m"))
        clock.set(T0 + timedelta(minutes=1))
        schedules.locked = 3
        await node.scheduler.start()
        try:
            # Real time passes, the fake clock stands still: a failed pass (and its error
            # record in the fire ledger, a write on the writer thread) settles, then waits.
            await asyncio.sleep(0.2)
            assert schedules.attempts == 1
            for expected_attempts in (2, 3):
                clock.advance(1)
                await asyncio.sleep(0.2)
                assert schedules.attempts == expected_attempts
            clock.advance(1)
            deadline = time.monotonic() + 10
            while schedule.id not in fired_times(path):
                assert time.monotonic() < deadline, "the schedule never fired"
                await asyncio.sleep(0.01)
            stored = await node.schedules.get(schedule.id)
            assert stored.status == ScheduleStatus.ACTIVE
        finally:
            await node.scheduler.stop()

    try:
        node.run(scenario())
    finally:
        node.close()
