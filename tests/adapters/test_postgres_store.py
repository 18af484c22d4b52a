"""``PostgresStore`` against a real PostgreSQL: what only a networked, multi-process store has
to prove (concurrent migration, claims and fencing across stores, NOTIFY, node liveness).

The behaviour every store shares is checked by the contract suite in ``tests/contract``.
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from spark_adapters.postgres import PostgresStore, connection
from spark_adapters.postgres.migrations import load_migrations
from spark_adapters.postgres.wakeups import PostgresWakeUpFeed
from spark_core.errors import NotFoundError, StaleTargetError, StoreUnavailableError
from spark_core.models import (
    Page,
    Schedule,
    ScheduleId,
    ScheduleType,
    Source,
    SourceId,
    Task,
    TaskId,
    TaskStatus,
    Workflow,
    WorkflowId,
    new_id,
)
from spark_core.ports import SchedulePatch, TaskFilter, TaskOutcome, WakeUp, WakeUpKind
from tests.fakes.clock import FakeClock

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    """An opened, migrated store on a fresh schema."""
    opened = PostgresStore(postgres_url, pool_size=8)
    await opened.open()
    await opened.migrate()
    yield opened
    await opened.close()


async def a_workflow(store: PostgresStore) -> Workflow:
    """A workflow on a fresh source."""
    source = await store.sources.add(
        Source(id=SourceId(new_id()), name="LangFlow", source_type="langflow",
               url=f"http://{new_id()}.local", created_at=T0, updated_at=T0),
        sealed_key=None)
    return await store.workflows.upsert(
        Workflow(id=WorkflowId(new_id()), source_id=source.id, source=source.url,
                 remote_flow_id="flow-1", name="Flow", flow_type="langflow",
                 created_at=T0, updated_at=T0))


def new_task(workflow: Workflow, *, seconds: float = 0, **changes: object) -> Task:
    """A pending task of ``workflow`` created ``seconds`` after ``T0``."""
    task = Task(id=TaskId(new_id()), workflow_id=workflow.id, input_data="hi",
                created_at=T0 + timedelta(seconds=seconds),
                updated_at=T0 + timedelta(seconds=seconds))
    return msgspec.structs.replace(task, **changes)


def done(status: TaskStatus = TaskStatus.COMPLETED) -> TaskOutcome:
    """A final outcome."""
    return TaskOutcome(status=status, output_data="ok", finished_at=T0, updated_at=T0)


async def schema_versions(url: str) -> list[int]:
    """The migration rows recorded in the URL's schema."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute("SELECT version FROM spark_schema_migrations ORDER BY 1")
        return [row[0] for row in await cursor.fetchall()]


# -- lifecycle --------------------------------------------------------------------------------
async def test_five_stores_migrating_one_empty_schema_together_migrate_it_once(
    postgres_url: str,
) -> None:
    """Concurrent migrations serialise on the advisory lock and record each version once."""
    stores = [PostgresStore(postgres_url, pool_size=2) for _ in range(5)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        reached = await asyncio.gather(*(s.migrate() for s in stores))
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    latest = len(load_migrations())
    assert reached == [latest] * 5
    assert await schema_versions(postgres_url) == list(range(1, latest + 1))


async def test_a_database_newer_than_the_code_is_refused(store: PostgresStore,
                                                          postgres_url: str) -> None:
    """A schema at a version this code does not know stops ``migrate``."""
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute("INSERT INTO spark_schema_migrations (version, name, checksum) "
                           "VALUES (999, 'future', 'x')")
    with pytest.raises(StoreUnavailableError, match="schema version 999, newer"):
        await store.migrate()


@pytest.mark.parametrize("url", [
    "postgresql://spark:s3cret-pw@127.0.0.1:1/spark",
    "postgresql://spark:s3cret-pw@no-such-host.invalid:5432/spark",
])
async def test_an_unreachable_database_fails_open_quickly_without_showing_the_password(
    url: str,
) -> None:
    """Refused or unknown hosts raise ``StoreUnavailableError`` naming the URL sans password."""
    store = PostgresStore(url)
    started = asyncio.get_running_loop().time()
    with pytest.raises(StoreUnavailableError) as caught:
        await store.open()
    assert asyncio.get_running_loop().time() - started < 10
    assert "Cannot connect to PostgreSQL at postgresql://spark@" in caught.value.message
    assert "s3cret-pw" not in caught.value.message
    assert "s3cret-pw" not in store.description
    assert await store.ping() is False


async def test_a_wrong_password_is_refused_without_echoing_it(postgres_url: str) -> None:
    """Even an unparseable URL with a password never shows it."""
    store = PostgresStore("postgresql://spark:s3cret-pw@127.0.0.1:notaport/spark")
    with pytest.raises(StoreUnavailableError) as caught:
        await store.open()
    assert "s3cret-pw" not in caught.value.message


async def test_ping_answers_true_while_open_and_datetimes_come_back_in_utc(
    store: PostgresStore,
) -> None:
    """A trivial query answers, and a stored instant reads back as UTC."""
    assert await store.ping() is True
    workflow = await a_workflow(store)
    plus_two = timezone(timedelta(hours=2))
    task = await store.tasks.add(new_task(workflow, created_at=datetime(2026, 1, 5, 11, 0,
                                                                        tzinfo=plus_two)))
    assert task.created_at == T0
    assert task.created_at.utcoffset() == timedelta(0)


# -- the queue --------------------------------------------------------------------------------
async def test_four_concurrent_claim_loops_never_get_the_same_task(
    store: PostgresStore, postgres_url: str,
) -> None:
    """200 tasks shared by four stores claiming in loops: each task is claimed exactly once."""
    workflow = await a_workflow(store)
    for i in range(200):
        await store.tasks.add(new_task(workflow, seconds=i))
    claimers = [PostgresStore(postgres_url, pool_size=2) for _ in range(4)]
    await asyncio.gather(*(c.open() for c in claimers))

    async def claim_all(claimer: PostgresStore, owner: str) -> list[TaskId]:
        got: list[TaskId] = []
        while batch := await claimer.queue.claim(owner=owner, limit=3, lease_seconds=30):
            got += [task.id for task in batch]
        return got

    try:
        results = await asyncio.gather(*(claim_all(c, f"node-{i}")
                                         for i, c in enumerate(claimers)))
    finally:
        await asyncio.gather(*(c.close() for c in claimers))
    claimed = [task_id for result in results for task_id in result]
    assert len(claimed) == 200
    assert len(set(claimed)) == 200
    page = await store.tasks.list(TaskFilter(status=TaskStatus.RUNNING), limit=1, offset=0)
    assert page.total == 200


async def test_a_release_is_fenced_out_after_another_owner_reclaimed_the_task(
    postgres_url: str,
) -> None:
    """An expired attempt's late answer is refused once a peer holds a new attempt."""
    clock = FakeClock(T0)
    store = PostgresStore(postgres_url, clock=clock)
    await store.open()
    await store.migrate()
    try:
        workflow = await a_workflow(store)
        task = await store.tasks.add(new_task(workflow))
        [first] = await store.queue.claim(owner="a", limit=1, lease_seconds=30)
        clock.advance(60)
        [expired] = await store.queue.expired(limit=10)
        assert expired.id == task.id
        retry = TaskOutcome(status=TaskStatus.PENDING, updated_at=clock.now())
        assert await store.queue.recover(task.id, retry, attempt=first.tries)
        [second] = await store.queue.claim(owner="b", limit=1, lease_seconds=30)
        assert second.tries == first.tries + 1
        assert second.started_at == first.started_at
        assert not await store.queue.release(first, done(), owner="a")
        assert not await store.queue.release(first, done(), owner="b")
        assert await store.queue.release(second, done(), owner="b")
        assert (await store.tasks.get(task.id)).status is TaskStatus.COMPLETED
    finally:
        await store.close()


async def test_fire_inserts_one_task_per_slot_even_when_offered_two(
    store: PostgresStore,
) -> None:
    """The unique (schedule_id, scheduled_for) constraint holds behind the compare-and-set."""
    workflow = await a_workflow(store)
    schedule = await store.schedules.add(Schedule(
        id=ScheduleId(new_id()), workflow_id=workflow.id, schedule_type=ScheduleType.INTERVAL,
        schedule_expr="10m", next_run_at=T0, start_at=T0, created_at=T0, updated_at=T0))
    slot = T0
    twins = [new_task(workflow, schedule_id=schedule.id, scheduled_for=slot) for _ in range(2)]
    patch = SchedulePatch(updated_at=T0, next_run_at=T0 + timedelta(minutes=10))
    assert await store.schedules.fire(schedule.id, patch, expected_version=1, tasks=twins)
    again = [new_task(workflow, schedule_id=schedule.id, scheduled_for=slot)]
    assert await store.schedules.fire(schedule.id, patch, expected_version=2, tasks=again)
    assert not await store.schedules.fire(schedule.id, patch, expected_version=2, tasks=again)
    page: Page[Task] = await store.tasks.list(TaskFilter(schedule_id=schedule.id), limit=10,
                                              offset=0)
    assert page.total == 1
    assert (await store.schedules.get(schedule.id)).version == 3


async def test_a_kept_run_target_costs_no_round_trip_and_a_change_elsewhere_refuses_it(
        store: PostgresStore, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run target remembered is answered without a connection to the database; once
    another process changed the workflow, even straight in SQL, a task stored with it is
    refused and nothing is stored, and the target read again shows the change and is
    accepted."""
    workflow = await a_workflow(store)
    first = await store.workflows.run_target(workflow.id)
    borrowed: list[int] = []
    borrow = connection.Database.connection

    def counted(db: connection.Database) -> Any:
        borrowed.append(1)
        return borrow(db)

    monkeypatch.setattr(connection.Database, "connection", counted)
    assert await store.workflows.run_target(workflow.id, remembered=True) == first
    assert borrowed == []
    monkeypatch.undo()
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as other:
        await other.execute("UPDATE workflows SET input_component = 'elsewhere' WHERE id = %s",
                            [workflow.id])
    refused = new_task(workflow)
    with pytest.raises(StaleTargetError):
        await store.queue.add_claimed(refused, owner="w1", lease_seconds=30, target=first)
    with pytest.raises(NotFoundError):
        await store.tasks.get(refused.id)
    current = await store.workflows.run_target(workflow.id)
    assert current.workflow.input_component == "elsewhere"
    stored = await store.queue.add_claimed(new_task(workflow), owner="w1", lease_seconds=30,
                                           target=current)
    assert stored.status is TaskStatus.RUNNING


async def test_pages_beyond_bigint_are_empty_not_errors(store: PostgresStore) -> None:
    """Huge limits and offsets clamp to an empty page with the right total."""
    workflow = await a_workflow(store)
    await store.tasks.add(new_task(workflow))
    page = await store.tasks.list(TaskFilter(), limit=2**70, offset=2**70)
    assert (page.items, page.total) == ([], 1)


# -- wake-ups and nodes -----------------------------------------------------------------------
async def next_hint(hints: "asyncio.Queue[WakeUp]", kind: WakeUpKind) -> WakeUp:
    """The next hint of ``kind``, skipping others, within five seconds."""
    async with asyncio.timeout(5):
        while True:
            hint = await hints.get()
            if hint.kind is kind:
                return hint


async def test_the_listener_hears_work_added_by_another_store(
    store: PostgresStore, postgres_url: str,
) -> None:
    """Catch-up hints first, then a ``work`` hint for a task another process added."""
    hints: asyncio.Queue[WakeUp] = asyncio.Queue()
    listener = asyncio.create_task(store.wakeups.listen(hints.put_nowait))
    other = PostgresStore(postgres_url)
    await other.open()
    try:
        assert await next_hint(hints, WakeUpKind.WORK) == WakeUp(kind=WakeUpKind.WORK)
        assert store.wakeups.poll_seconds == 5.0
        task = await other.tasks.add(new_task(await a_workflow(other)))
        assert await next_hint(hints, WakeUpKind.WORK) == WakeUp(kind=WakeUpKind.WORK,
                                                                 id=task.id)
        await other.tasks.cancel(task.id, now=T0)
        assert (await next_hint(hints, WakeUpKind.CANCEL)).id == task.id
    finally:
        listener.cancel()
        await other.close()


async def test_a_tasks_end_is_hinted_to_every_node_only_when_a_process_watches_it(
    store: PostgresStore, postgres_url: str,
) -> None:
    """The node that writes a run's end announces it to its own waiters; the database hints
    it to the other nodes only for a task a process asked to watch (a NOTIFY in every run's
    last commit cost the database ~100 µs of CPU a run), whether the outcome was written
    alone or in a round with others. A cancel is always hinted."""
    hints: asyncio.Queue[WakeUp] = asyncio.Queue()
    listener = asyncio.create_task(store.wakeups.listen(hints.put_nowait))
    other = PostgresStore(postgres_url)
    await other.open()
    try:
        await next_hint(hints, WakeUpKind.WORK)  # the catch-up hint: listening from now on
        workflow = await a_workflow(other)
        tasks = [await other.tasks.add(new_task(workflow, seconds=n)) for n in range(6)]
        watched = {tasks[1].id, tasks[3].id, tasks[4].id}
        for task_id in watched:
            await store.tasks.watch_end(task_id)
        claimed = await other.queue.claim(owner="w", limit=6, lease_seconds=60)
        assert [task.id for task in claimed] == [task.id for task in tasks]
        for task in claimed[:2]:  # one at a time: each outcome in a statement of its own
            assert await other.queue.release(task, done(), owner="w") is not None
        released = await asyncio.gather(*(  # at once: in rounds of several
            other.queue.release(task, done(TaskStatus.FAILED), owner="w")
            for task in claimed[2:]))
        assert None not in released
        sentinel = await other.tasks.add(new_task(workflow, seconds=9))
        await other.tasks.cancel(sentinel.id, now=T0)
        heard = []
        while not heard or heard[-1] != sentinel.id:
            heard.append((await next_hint(hints, WakeUpKind.FINISHED)).id)
        assert sorted(heard[:-1]) == sorted(watched)
    finally:
        listener.cancel()
        await other.close()


async def test_hints_resume_after_the_listening_connection_is_terminated(
    store: PostgresStore, postgres_url: str,
) -> None:
    """A killed LISTEN session is replaced, catch-up hints are delivered again, and new hints
    arrive."""
    hints: asyncio.Queue[WakeUp] = asyncio.Queue()
    listener = asyncio.create_task(store.wakeups.listen(hints.put_nowait))
    try:
        await next_hint(hints, WakeUpKind.SCHEDULES)
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE query LIKE 'LISTEN%%' AND pid <> pg_backend_pid()")
        assert await next_hint(hints, WakeUpKind.SCHEDULES) == WakeUp(
            kind=WakeUpKind.SCHEDULES)
        task = await store.tasks.add(new_task(await a_workflow(store)))
        assert (await next_hint(hints, WakeUpKind.WORK)).id == task.id
    finally:
        listener.cancel()


async def test_no_hint_is_lost_while_a_quiet_listener_checks_its_connection(
    store: PostgresStore, postgres_url: str,
) -> None:
    """A listener quiet for a moment checks its connection (``SELECT 1``) between
    notifications: hints sent all along, some during those checks, every one arrives, and a
    session killed while quiet is replaced."""
    db = connection.Database(postgres_url + "&application_name=quiet-listener", pool_size=1,
                             poll_only=False, clock=None)
    feed = PostgresWakeUpFeed(db, quiet_seconds=0.005)
    hints: asyncio.Queue[WakeUp] = asyncio.Queue()
    listener = asyncio.create_task(feed.listen(hints.put_nowait))
    try:
        await next_hint(hints, WakeUpKind.SCHEDULES)
        workflow = await a_workflow(store)
        added = []
        for number in range(40):
            added.append((await store.tasks.add(new_task(workflow, seconds=number))).id)
            await asyncio.sleep(0.004 * (number % 3))
        heard = set()
        while len(heard) < len(added):
            heard.add((await next_hint(hints, WakeUpKind.WORK)).id)
        assert heard == set(added)
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            killed = await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                        "WHERE application_name = 'quiet-listener'")
            assert len(await killed.fetchall()) == 1
        await next_hint(hints, WakeUpKind.SCHEDULES)
        task = await store.tasks.add(new_task(workflow, seconds=99))
        assert (await next_hint(hints, WakeUpKind.WORK)).id == task.id
    finally:
        listener.cancel()
        await db.pool.close()


async def test_a_node_whose_session_died_is_dead_and_a_live_one_never_is(
    store: PostgresStore, postgres_url: str,
) -> None:
    """``dead`` names the owner whose lock session was terminated, once, and never the live."""
    other = PostgresStore(postgres_url)
    await other.open()
    try:
        await store.nodes.register("live")
        await other.nodes.register("doomed")
        assert await store.nodes.dead() == []
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            await conn.execute(
                "SELECT pg_terminate_backend(l.pid) FROM pg_locks l "
                "JOIN spark_nodes n ON ((l.classid::bigint << 32) | l.objid::bigint) "
                "= n.lock_key WHERE l.locktype = 'advisory' AND n.owner = 'doomed'")
        await asyncio.sleep(0.2)
        assert await store.nodes.dead() == ["doomed"]
        assert await store.nodes.dead() == []
        await store.nodes.unregister("live")
        assert await store.nodes.dead() == []
    finally:
        await other.close()


async def test_a_live_node_that_lost_its_session_registers_again_before_peers_see_it(
    store: PostgresStore, postgres_url: str,
) -> None:
    """A live process whose registering connection was terminated takes its registration
    back at its own next check, and from then on no peer names it dead."""
    other = PostgresStore(postgres_url)
    await other.open()
    try:
        await other.nodes.register("blip")
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            await conn.execute(
                "SELECT pg_terminate_backend(l.pid) FROM pg_locks l "
                "JOIN spark_nodes n ON ((l.classid::bigint << 32) | l.objid::bigint) "
                "= n.lock_key WHERE l.locktype = 'advisory' AND n.owner = 'blip'")
        await asyncio.sleep(0.2)
        assert await other.nodes.dead() == []  # its own check re-registers first
        assert await store.nodes.dead() == []
    finally:
        await other.close()


async def test_a_given_clock_judges_dueness_and_is_the_now_returned(postgres_url: str) -> None:
    """With a fake clock, ``due`` and ``next_due`` use and return its time, not the DB's."""
    clock = FakeClock(T0)
    store = PostgresStore(postgres_url, clock=clock)
    await store.open()
    await store.migrate()
    try:
        workflow = await a_workflow(store)
        schedule = await store.schedules.add(Schedule(
            id=ScheduleId(new_id()), workflow_id=workflow.id,
            schedule_type=ScheduleType.INTERVAL, schedule_expr="10m",
            next_run_at=T0 + timedelta(minutes=10), start_at=T0, created_at=T0, updated_at=T0))
        early = await store.schedules.due(limit=10)
        assert (early.now, early.schedules) == (T0, [])
        clock.advance(minutes=10)
        due = await store.schedules.due(limit=10)
        assert due.now == T0 + timedelta(minutes=10)
        assert [s.id for s in due.schedules] == [schedule.id]
        upcoming = await store.schedules.next_due()
        assert (upcoming.now, upcoming.at) == (due.now, schedule.next_run_at)
    finally:
        await store.close()


async def test_poll_only_mode_works_without_listen_or_session_locks(postgres_url: str) -> None:
    """Behind a transaction pooler: no prepared statements, 1 s polling, nobody known dead."""
    store = PostgresStore(postgres_url, poll_only=True)
    await store.open()
    await store.migrate()
    try:
        workflow = await a_workflow(store)
        for i in range(10):  # past psycopg's prepare threshold
            await store.tasks.add(new_task(workflow, seconds=i))
        assert len(await store.queue.claim(owner="a", limit=10, lease_seconds=30)) == 10
        await store.nodes.register("a")
        assert await store.nodes.dead() == []
        assert store.wakeups.poll_seconds == 1.0
        hints: list[WakeUp] = []
        listener = asyncio.create_task(store.wakeups.listen(hints.append))
        await asyncio.sleep(0.1)
        assert not listener.done()
        assert hints == []
        listener.cancel()
    finally:
        await store.close()
    with pytest.raises(StoreUnavailableError):
        await store.tasks.get(TaskId("closed"))


async def test_a_pooled_connection_killed_while_idle_costs_the_next_caller_no_error(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connection given back moments ago is handed out again unchecked (a check on every
    borrow cost a fifth of a node's CPU); one idle for longer than ``FRESH_SECONDS`` is
    checked first, so when the database killed it meanwhile (a restart, a proxy's idle
    timeout) the caller gets a new one instead of an error."""
    monkeypatch.setattr(connection, "FRESH_SECONDS", 0.3)
    checks = 0
    real_check = AsyncConnectionPool.check_connection

    async def counted(conn: psycopg.AsyncConnection[object]) -> None:
        nonlocal checks
        checks += 1
        await real_check(conn)

    monkeypatch.setattr(AsyncConnectionPool, "check_connection", staticmethod(counted))
    store = PostgresStore(postgres_url, pool_size=1)
    await store.open()
    try:
        await store.migrate()
        workflow = await a_workflow(store)
        await store.workflows.get(workflow.id)
        checks = 0
        for _ in range(3):
            await store.workflows.get(workflow.id)
        assert checks == 0
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as other:
            await other.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        await asyncio.sleep(0.5)
        assert (await store.workflows.get(workflow.id)).id == workflow.id
        assert checks >= 1  # the dead one, and its replacement, new to the pool
    finally:
        await store.close()
