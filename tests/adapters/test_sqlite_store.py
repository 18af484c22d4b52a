"""``SqliteStore`` on real files: lifecycle, file modes, migrations, other processes on the same
file (locks, node liveness, wake-ups), and the query plans that keep lists fast. Behaviour
shared with the fake and PostgreSQL is in ``tests/contract``."""

import asyncio
import contextlib
import itertools
import re
import signal
import sqlite3
import stat
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from spark_adapters.sqlite import LATEST_VERSION, SqliteStore, migrate
from spark_adapters.sqlite.connection import CHECKPOINT_COMMITS, connect, translate_errors
from spark_adapters.sqlite.nodes import lock_file_name
from spark_adapters.sqlite.rows import encode_datetime
from spark_adapters.sqlite.tasks import task_values
from spark_core.errors import ConflictError, NotFoundError, SparkError, StoreUnavailableError
from spark_core.models import ScheduleId, TaskId, TaskStatus, Workflow
from spark_core.ports import TaskFilter, WakeUp, WakeUpKind, WorkflowFilter
from tests.contract.builders import (
    LEASE,
    T0,
    a_workflow,
    at,
    fired,
    make_schedule,
    make_source,
    make_task,
    make_workflow,
    new_task,
    outcome,
)
from tests.fakes.clock import FakeClock

REPOSITORY = Path(__file__).resolve().parents[2]
flock_only = pytest.mark.skipif(sys.platform == "win32", reason="lock files need fcntl")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where the database file goes (its directory does not exist yet)."""
    return tmp_path / "data" / "spark.db"


@pytest.fixture
def clock() -> FakeClock:
    """The store's clock, at ``T0``."""
    return FakeClock(T0)


async def opened(path: str | Path, clock: FakeClock | None = None) -> SqliteStore:
    """A store on ``path``, opened and migrated."""
    store = SqliteStore(path, clock=clock)
    await store.open()
    await store.migrate()
    return store


@pytest.fixture
async def store(path: Path, clock: FakeClock) -> AsyncIterator[SqliteStore]:
    """A store on a fresh file, closed afterwards."""
    sqlite_store = await opened(path, clock)
    yield sqlite_store
    await sqlite_store.close()


def mode(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


# -- lifecycle and files ---------------------------------------------------------------------
async def test_constructing_a_store_opens_nothing(path: Path) -> None:
    """No directory or file exists until ``open``."""
    store = SqliteStore(path)
    assert store.description == str(path)
    assert not path.parent.exists()


async def test_the_database_and_its_directory_are_private_and_survive_a_restart(
        path: Path) -> None:
    """The directory is 0700, the file and its WAL companions 0600; data outlives a close."""
    first = await opened(path)
    workflow = await a_workflow(first)
    schedule = await make_schedule(first, workflow)
    task = await make_task(first, workflow, output_raw={"answer": 42})
    assert mode(path.parent) == 0o700
    for name in ("spark.db", "spark.db-wal", "spark.db-shm"):
        assert mode(path.parent / name) == 0o600, name
    await first.close()

    again = await opened(path)
    assert await again.workflows.get(workflow.id) == workflow
    assert await again.schedules.get(schedule.id) == schedule
    assert await again.tasks.get(task.id) == task
    assert await again.sources.get_key(workflow.source_id) == "sealed"
    await again.close()


@contextlib.asynccontextmanager
async def writer_held(store: SqliteStore) -> AsyncIterator[None]:
    """Keep the writer thread busy with one write while the block queues others, so that they
    are committed together once it is let go."""
    gate = threading.Event()
    holder = asyncio.ensure_future(store.database.write(lambda conn: gate.wait(5)))
    await asyncio.sleep(0.05)  # the writer thread is inside the holder's transaction now
    try:
        yield
        for _ in range(3):
            await asyncio.sleep(0)  # the block's writes reach the queue
    finally:
        gate.set()
        await holder


async def test_concurrent_writes_share_commits_and_each_stands_or_falls_alone(
        store: SqliteStore) -> None:
    """Writes asked for together are committed together (fewer transactions than writes), and
    one that fails (a duplicate id) is undone alone: every other write is there, its caller
    hears ``ConflictError``, and the duplicate left no half-written row."""
    workflow = await a_workflow(store)
    tasks = [new_task(workflow, created=i) for i in range(40)]
    duplicate = tasks[20]
    commits = store.database.commits
    async with asyncio.timeout(10), writer_held(store):
        writes = [asyncio.ensure_future(store.tasks.add(task)) for task in [*tasks, duplicate]]
    results = await asyncio.gather(*writes, return_exceptions=True)
    assert results[:40] == tasks
    assert isinstance(results[40], ConflictError)
    assert store.database.commits - commits <= 3  # the holder's, and at most two batches
    page = await store.tasks.list(TaskFilter(), limit=100, offset=0)
    assert sorted(task.id for task in page.items) == sorted(task.id for task in tasks)


async def test_a_write_that_ends_the_whole_transaction_loses_no_other_write(
        store: SqliteStore) -> None:
    """When a write's failure ends the shared transaction inside SQLite (as a full disk or an
    I/O error does), the writes batched before it are not lost: they are committed again in the
    next transaction, and only the failing write's caller sees an error."""
    workflow = await a_workflow(store)
    tasks = [new_task(workflow, created=i) for i in range(10)]

    def ends_the_transaction(conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")
        raise sqlite3.OperationalError("disk I/O error")

    async with asyncio.timeout(10), writer_held(store):  # all eleven writes in one batch
        writes = [asyncio.ensure_future(store.tasks.add(task)) for task in tasks[:5]]
        writes.append(asyncio.ensure_future(store.database.write(ends_the_transaction)))
        writes += [asyncio.ensure_future(store.tasks.add(task)) for task in tasks[5:]]
    async with asyncio.timeout(10):  # a write left unanswered fails here, not by hanging
        results = await asyncio.gather(*writes, return_exceptions=True)
    assert isinstance(results[5], SparkError)
    assert "disk I/O error" in str(results[5])
    assert [r for i, r in enumerate(results) if i != 5] == tasks
    for task in tasks:
        assert await store.tasks.get(task.id) == task


async def test_a_write_that_fails_half_way_leaves_nothing_while_its_batch_commits(
        store: SqliteStore) -> None:
    """A write of two statements whose second fails, committed in one batch with others: its
    first statement is undone (its savepoint), the writes around it are committed."""
    await store.database.write(lambda conn: conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY)"))

    def half(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES ('half')")
        conn.execute("INSERT INTO t VALUES ('before')")  # taken by the write before it

    def insert(key: str) -> Callable[[sqlite3.Connection], object]:
        return lambda conn: conn.execute("INSERT INTO t VALUES (?)", [key])

    async with asyncio.timeout(10), writer_held(store):
        writes = [asyncio.ensure_future(store.database.write(work))
                  for work in (insert("before"), half, insert("after"))]
    results = await asyncio.gather(*writes, return_exceptions=True)
    assert isinstance(results[1], ConflictError)
    kept = await store.database.read(lambda conn: conn.execute("SELECT k FROM t").fetchall())
    assert sorted(row[0] for row in kept) == ["after", "before"]


async def test_a_quick_write_waits_for_work_under_way_on_the_writer_thread(
        store: SqliteStore) -> None:
    """A write that may run on the event loop (adding a task) does not while the writer
    thread uses the connection: it is done only after the thread's work, in order."""
    workflow = await a_workflow(store)
    gate = threading.Event()
    order: list[str] = []

    def held(conn: sqlite3.Connection) -> None:
        gate.wait(5)
        order.append("thread")

    async with asyncio.timeout(10):
        holding = asyncio.ensure_future(store.database.on_writer(held))
        await asyncio.sleep(0.05)  # the thread is inside ``held`` now
        adding = asyncio.ensure_future(make_task(store, workflow))
        await asyncio.sleep(0.1)
        assert not adding.done()
        gate.set()
        await holding
        added = await adding
        order.append("write")
    assert order == ["thread", "write"]
    assert await store.tasks.get(added.id) == added


async def test_a_quick_write_that_fails_leaves_nothing_and_the_next_one_commits(
        store: SqliteStore) -> None:
    """A task added twice is a conflict that leaves one row; the connection is usable at once
    after it (no transaction left open on the event loop)."""
    workflow = await a_workflow(store)
    task = await make_task(store, workflow)
    with pytest.raises(ConflictError):
        await store.tasks.add(task)
    later = await make_task(store, workflow, created=1)
    page = await store.tasks.list(TaskFilter(), limit=10, offset=0)
    assert [item.id for item in page.items] == [later.id, task.id]


async def test_quick_writes_keep_the_wal_checkpointed(store: SqliteStore, path: Path) -> None:
    """The writer connection does not checkpoint as it commits (that would block the event
    loop); the writer thread does, so the WAL stays far smaller than what was written."""
    workflow = await a_workflow(store)
    wal = path.with_name(path.name + "-wal")
    big = "x" * 8000
    sizes = []
    rounds = (CHECKPOINT_COMMITS * 3 // 2, CHECKPOINT_COMMITS)
    for count in rounds:
        for number in range(count):
            await make_task(store, workflow, created=number, input_data=big)
        sizes.append(wal.stat().st_size)
    # Without checkpoints the WAL would hold every write: 2.5 against 1.5 intervals' writes.
    assert sizes[1] < sizes[0] * 1.2
    assert (await store.tasks.list(TaskFilter(), limit=1, offset=0)).total == sum(rounds)


async def test_a_task_added_claimed_is_stored_as_a_claim_would_leave_it(
        store: SqliteStore, path: Path, clock: FakeClock) -> None:
    """The row of a task inserted already claimed (a workflow without a limit) is the row a
    task added and then claimed has: status, tries, times, the attempt's JSON and the lease."""
    workflow = await a_workflow(store)
    clock.set(at(1))
    direct = await store.queue.add_claimed(new_task(workflow, created=1), owner="w",
                                           lease_seconds=LEASE)
    added = await store.tasks.add(new_task(workflow, created=1))
    await store.queue.claim(owner="w", limit=1, lease_seconds=LEASE, task_ids=[added.id])
    columns = ("status", "tries", "started_at", "updated_at", "attempts", "lease_owner",
               "lease_expires_at")
    raw = sqlite3.connect(path)
    rows = {task_id: raw.execute(f"SELECT {', '.join(columns)} FROM tasks WHERE id = ?",
                                 [task_id]).fetchone() for task_id in (direct.id, added.id)}
    raw.close()
    assert rows[direct.id] == rows[added.id]
    assert rows[direct.id][0] == "running"


async def test_an_outcome_released_leaves_the_row_a_recovery_of_the_same_outcome_leaves(
        store: SqliteStore, path: Path, clock: FakeClock) -> None:
    """The lease holder's release writes the attempt history it holds, ended in Python; a
    recovery ends the stored history in SQL. For the same history and outcome the two rows
    are the same, byte for byte, for a failure on the second attempt too."""
    workflow = await a_workflow(store)
    clock.set(at(1))
    released = await store.queue.add_claimed(new_task(workflow, created=1), owner="w",
                                             lease_seconds=LEASE)
    recovered = await store.queue.add_claimed(new_task(workflow, created=1), owner="w",
                                              lease_seconds=LEASE)
    retry = outcome(TaskStatus.PENDING, 2, error="boom \"quoted\" \\ \u00e9")
    assert await store.queue.release(released, retry, owner="w") is not None
    assert await store.queue.recover(recovered.id, retry, attempt=1, owners=["w"])
    clock.set(at(3))
    again = await store.queue.claim(owner="w", limit=2, lease_seconds=LEASE)
    assert sorted(task.tries for task in again) == [2, 2]
    failed = outcome(TaskStatus.FAILED, 4, error="gave up")
    second = {task.id: task for task in again}
    assert await store.queue.release(second[released.id], failed, owner="w") is not None
    assert await store.queue.recover(recovered.id, failed, attempt=2, owners=["w"])
    columns = ("status", "error", "tries", "finished_at", "updated_at", "attempts",
               "lease_owner", "lease_expires_at")
    raw = sqlite3.connect(path)
    stored = {task_id: raw.execute(f"SELECT {', '.join(columns)} FROM tasks WHERE id = ?",
                                   [task_id]).fetchone()
              for task_id in (released.id, recovered.id)}
    raw.close()
    assert stored[released.id] == stored[recovered.id]
    read = await store.tasks.get(released.id)
    assert [(a.attempt, a.error) for a in read.attempts] == [
        (1, 'boom "quoted" \\ \u00e9'), (2, "gave up")]


async def test_closing_commits_the_writes_already_asked_for(path: Path, clock: FakeClock) -> None:
    """Writes queued when the store closes are committed before it closes; a write after
    that is refused with ``StoreUnavailableError``; a store opened again sees every write."""
    store = await opened(path, clock)
    workflow = await a_workflow(store)
    tasks = [new_task(workflow, created=i) for i in range(20)]
    writes = [asyncio.ensure_future(store.tasks.add(task)) for task in tasks]
    await asyncio.sleep(0)  # every write is queued
    await store.close()
    assert [await write for write in writes] == tasks
    with pytest.raises(StoreUnavailableError):
        await store.tasks.add(new_task(workflow))
    again = await opened(path, clock)
    page = await again.tasks.list(TaskFilter(), limit=50, offset=0)
    assert sorted(task.id for task in page.items) == sorted(task.id for task in tasks)
    await again.close()


async def test_writes_wait_for_locks_and_reads_never_do(store: SqliteStore) -> None:
    """The writer waits up to 5 s for another process's lock; the reader not at all, read-only."""
    writer = await store.database.on_writer(
        lambda conn: [conn.execute(f"PRAGMA {name}").fetchone()[0]
                      for name in ("journal_mode", "foreign_keys", "busy_timeout")])
    assert writer == ["wal", 1, 5000]
    reader = await store.database.read(
        lambda conn: [conn.execute(f"PRAGMA {name}").fetchone()[0]
                      for name in ("busy_timeout", "query_only", "foreign_keys")])
    assert reader == [0, 1, 1]


async def test_an_in_memory_store_works_for_quick_use(clock: FakeClock) -> None:
    """``:memory:`` gives a working, migrated store whose reads see its writes."""
    memory = await opened(":memory:", clock)
    task = await make_task(memory, await a_workflow(memory))
    assert await memory.tasks.get(task.id) == task
    assert (await memory.queue.claim(owner="w", limit=5, lease_seconds=LEASE))[0].id == task.id
    assert await memory.schema_version() == LATEST_VERSION
    assert await memory.ping()
    assert await memory.nodes.dead() == []
    await memory.close()


async def test_a_path_that_cannot_hold_a_database_is_unavailable_naming_it(
        tmp_path: Path) -> None:
    """A directory, a file under a regular file, or a non-database file: a readable reason."""
    (tmp_path / "plain").write_text("not a directory")
    (tmp_path / "garbage.db").write_bytes(b"this is not a database file at all" * 100)
    for bad in (tmp_path, tmp_path / "plain" / "spark.db", tmp_path / "garbage.db"):
        store = SqliteStore(bad)
        with pytest.raises(StoreUnavailableError, match=f"Cannot open the database at {bad}"):
            await store.open()
        await store.close()


async def test_opening_a_database_from_a_newer_spark_is_refused(path: Path) -> None:
    """A schema version this code does not know is an error, not a silent downgrade."""
    await (await opened(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    store = SqliteStore(path)
    await store.open()
    with pytest.raises(StoreUnavailableError, match="newer than this Spark understands"):
        await store.migrate()
    await store.close()


async def test_a_closed_store_raises_spark_errors_and_answers_pings_with_false(
        store: SqliteStore) -> None:
    """No sqlite3 exception escapes; ``ping`` never raises."""
    assert await store.ping()
    await store.close()
    with pytest.raises(StoreUnavailableError, match="not open"):
        await store.tasks.list(TaskFilter(), limit=10, offset=0)
    with pytest.raises(StoreUnavailableError):
        await store.tasks.delete(TaskId("t"))
    assert not await store.ping()
    await store.close()


def test_a_lock_held_past_the_busy_timeout_is_an_unavailable_store() -> None:
    """"database is locked" becomes ``StoreUnavailableError``; other errors ``SparkError``."""
    with pytest.raises(StoreUnavailableError, match="locked"), translate_errors():
        raise sqlite3.OperationalError("database is locked")
    with pytest.raises(SparkError, match="no such table"), translate_errors():
        raise sqlite3.OperationalError("no such table: nowhere")


# -- another process holding the write lock ----------------------------------------------------
async def test_the_event_loop_keeps_running_while_a_write_waits_for_another_process(
        store: SqliteStore, path: Path) -> None:
    """A write queued behind another connection's ``BEGIN IMMEDIATE`` for ~1 s stalls nothing
    (adding a task, a write that runs on the event loop when it can, finds the lock held and
    waits on the writer thread): a ticker keeps ticking, and reads answer at once meanwhile."""
    workflow = await a_workflow(store)
    existing = await make_task(store, workflow)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    started = time.monotonic()
    writing = asyncio.create_task(make_task(store, workflow, created=1))
    await asyncio.sleep(0.2)
    read_started = time.monotonic()
    assert await store.tasks.get(existing.id) == existing
    assert time.monotonic() - read_started < 0.1
    assert not writing.done()
    await asyncio.sleep(0.8)
    other.execute("COMMIT")
    written = await writing
    waited = time.monotonic() - started
    ticking.cancel()
    other.close()

    assert waited >= 0.95
    assert await store.tasks.get(written.id) == written
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    assert len(ticks) >= 40
    assert max(gaps) < 0.2


async def test_two_stores_on_one_file_never_claim_the_same_task(
        store: SqliteStore, path: Path, clock: FakeClock) -> None:
    """Claimers on separate writer connections split the queue without overlap."""
    other = await opened(path, clock)
    workflow = await a_workflow(store)
    expected = {(await make_task(store, workflow, created=i / 100)).id for i in range(200)}
    claimed: list[list[str]] = [[], []]

    async def claim(index: int, sqlite_store: SqliteStore) -> None:
        while batch := await sqlite_store.queue.claim(owner=f"w{index}", limit=3,
                                                       lease_seconds=LEASE):
            claimed[index].extend(task.id for task in batch)

    await asyncio.gather(claim(0, store), claim(1, other))
    every_claim = claimed[0] + claimed[1]
    assert len(every_claim) == len(set(every_claim)) == 200
    assert set(every_claim) == expected
    assert sorted(await other.queue.renew(owner="w1", lease_seconds=LEASE,
                                          task_ids=every_claim)) == sorted(claimed[1])
    await other.close()


async def test_a_run_target_kept_by_one_store_shows_another_process_s_change(
        store: SqliteStore, path: Path) -> None:
    """A run target asked for again with nothing changed costs one small read (the kept one
    is answered), none when a remembered one will do; a change to the workflow or its source
    made by another process, even straight in SQL, shows at the next ask."""
    workflow = await a_workflow(store)
    first = await store.workflows.run_target(workflow.id)
    statements: list[str] = []
    await store.database.trace(statements.append)
    assert await store.workflows.run_target(workflow.id) == first
    assert await store.workflows.run_target(workflow.id, remembered=True) == first
    await store.database.trace(None)
    assert statements == ["SELECT version FROM catalogue_version"]  # the first ask only
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("UPDATE workflows SET input_component = 'elsewhere' WHERE id = ?",
                      [workflow.id])
        assert (await store.workflows.run_target(workflow.id)).workflow.input_component == (
            "elsewhere")
        other.execute("UPDATE sources SET sealed_key = 'resealed'")
        assert (await store.workflows.run_target(workflow.id)).sealed_key == "resealed"
        other.execute("DELETE FROM workflows")
        with pytest.raises(NotFoundError):
            await store.workflows.run_target(workflow.id)
    finally:
        other.close()


async def test_two_stores_on_one_file_never_fire_the_same_time_twice(
        store: SqliteStore, path: Path, clock: FakeClock) -> None:
    """Racing schedulers win each (schedule, time) exactly once between them."""
    stores = [store, await opened(path, clock)]
    workflow = await a_workflow(store)
    schedule = await make_schedule(store, workflow, next_run=0)
    rounds = 30
    wins: list[int] = []

    async def fire(sqlite_store: SqliteStore, minute: int) -> None:
        task = new_task(workflow, schedule_id=schedule.id, scheduled_for=at(minute))
        if await sqlite_store.schedules.fire(schedule.id, fired(minute, next_run=minute + 1),
                                             expected_version=minute + 1, tasks=[task]):
            wins.append(minute)

    for minute in range(rounds):
        await asyncio.gather(*(fire(sqlite_store, minute) for sqlite_store in stores))
    assert sorted(wins) == list(range(rounds))
    tasks = await stores[1].tasks.list(TaskFilter(schedule_id=schedule.id), limit=100, offset=0)
    assert sorted(t.scheduled_for for t in tasks.items if t.scheduled_for) == [
        at(m) for m in range(rounds)]
    assert (await stores[1].schedules.get(schedule.id)).version == rounds + 1
    await stores[1].close()


async def test_a_fire_skips_a_fire_time_already_stored_and_adding_one_is_a_conflict(
        store: SqliteStore) -> None:
    """The unique (schedule_id, scheduled_for) index backs the compare-and-set."""
    workflow = await a_workflow(store)
    schedule = await make_schedule(store, workflow)
    first = await make_task(store, workflow, schedule_id=schedule.id, scheduled_for=at(10))
    again = new_task(workflow, schedule_id=schedule.id, scheduled_for=at(10))
    fresh = new_task(workflow, schedule_id=schedule.id, scheduled_for=at(20))
    assert await store.schedules.fire(schedule.id, fired(20, next_run=30), expected_version=1,
                                      tasks=[again, fresh])
    page = await store.tasks.list(TaskFilter(schedule_id=schedule.id), limit=10, offset=0)
    assert {t.id for t in page.items} == {first.id, fresh.id}
    with pytest.raises(ConflictError, match=f"Schedule {schedule.id} already has a task for"):
        await store.tasks.add(again)
    with pytest.raises(ConflictError, match=f"Task {first.id} already exists"):
        await store.tasks.add(msgspec.structs.replace(first, scheduled_for=at(30)))


# -- migrations --------------------------------------------------------------------------------
def old_database(path: Path, version: int) -> sqlite3.Connection:
    """A database file at schema ``version``, with one source and two workflows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=version) == version
    stamp = encode_datetime(T0)
    conn.execute("INSERT INTO sources (id, name, source_type, url, status, created_at, "
                 "updated_at) VALUES ('s1', 'Old', 'langflow', 'http://old', 'active', ?, ?)",
                 [stamp, stamp])
    for workflow_id in ("w1", "w2"):
        conn.execute("INSERT INTO workflows (id, source_id, source, remote_flow_id, name, "
                     "flow_type, created_at, updated_at) VALUES (?, 's1', 'http://old', ?, "
                     "'Legacy', 'langflow', ?, ?)", [workflow_id, f"r-{workflow_id}", stamp,
                                                     stamp])
    return conn


def insert_old_task(conn: sqlite3.Connection, task_id: str, workflow_id: str, *,
                    status: str = "pending", created: float = 0,
                    schedule_id: str | None = None, scheduled_for: float | None = None) -> None:
    """A task row as an older Spark wrote it."""
    stamp = encode_datetime(at(created))
    due = None if scheduled_for is None else encode_datetime(at(scheduled_for))
    conn.execute("INSERT INTO tasks (id, workflow_id, schedule_id, status, input_data, "
                 "max_retries, scheduled_for, created_at, updated_at) "
                 "VALUES (?, ?, ?, ?, 'hi', 3, ?, ?, ?)",
                 [task_id, workflow_id, schedule_id, status, due, stamp, stamp])


async def test_a_version_1_database_is_upgraded_in_place_keeping_its_rows(
        path: Path, clock: FakeClock) -> None:
    """Rows written under the base schema read back, claim and renew after every migration."""
    old = old_database(path, 1)
    insert_old_task(old, "t1", "w1")
    old.close()
    upgraded = await opened(path, clock)
    assert await upgraded.schema_version() == LATEST_VERSION
    task = await upgraded.tasks.get(TaskId("t1"))
    assert (task.input_data, task.status, task.created_at) == ("hi", TaskStatus.PENDING, T0)
    assert await upgraded.workflows.find("r-w1") is not None
    [claimed] = await upgraded.queue.claim(owner="w", limit=1, lease_seconds=LEASE)
    assert claimed.id == "t1"
    assert [attempt.attempt for attempt in claimed.attempts] == [1]
    assert await upgraded.queue.renew(owner="w", lease_seconds=LEASE,
                                      task_ids=[TaskId("t1")]) == ["t1"]
    await upgraded.close()


async def test_a_version_2_database_with_tasks_gets_correct_workflow_counts(
        path: Path) -> None:
    """Migration 3 counts the tasks already there, failed ones apart."""
    old = old_database(path, 2)
    for number, status in enumerate(["failed", "completed", "failed", "pending", "failed"]):
        insert_old_task(old, f"a{number}", "w1", status=status, created=number)
    insert_old_task(old, "b0", "w2", status="completed")
    old.close()
    upgraded = await opened(path)
    page = await upgraded.workflows.list(WorkflowFilter(), limit=10, offset=0)
    assert [(s.workflow.id, s.task_count, s.failed_task_count, s.latest_run)
            for s in page.items] == [("w1", 5, 3, "FAILED"), ("w2", 1, 0, "COMPLETED")]
    await upgraded.close()


async def test_a_version_3_database_with_duplicate_fire_times_upgrades_keeping_every_task(
        path: Path) -> None:
    """The earliest task of a repeated (schedule, time) keeps it; later ones lose only their
    ``scheduled_for``; schedules start at version 1."""
    old = old_database(path, 3)
    stamp = encode_datetime(T0)
    old.execute("INSERT INTO schedules (id, workflow_id, schedule_type, schedule_expr, status, "
                "overlap_policy, catchup_policy, max_retries, start_at, created_at, updated_at) "
                "VALUES ('s', 'w1', 'interval', '10m', 'active', 'skip', 'latest', 3, ?, ?, ?)",
                [stamp, stamp, stamp])
    insert_old_task(old, "late", "w1", schedule_id="s", scheduled_for=10, created=2)
    insert_old_task(old, "first", "w1", schedule_id="s", scheduled_for=10, created=1)
    insert_old_task(old, "later", "w1", schedule_id="s", scheduled_for=10, created=3)
    insert_old_task(old, "other", "w1", schedule_id="s", scheduled_for=20, created=1)
    insert_old_task(old, "gone", "w1", schedule_id="deleted", scheduled_for=10, created=1)
    old.close()
    upgraded = await opened(path)
    page = await upgraded.tasks.list(TaskFilter(), limit=10, offset=0)
    assert {t.id: t.scheduled_for for t in page.items} == {
        "first": at(10), "late": None, "later": None, "other": at(20), "gone": at(10)}
    assert (await upgraded.schedules.get(ScheduleId("s"))).version == 1
    await upgraded.close()


# -- node registry -----------------------------------------------------------------------------
CHILD = """
import asyncio, sys
from spark_adapters.sqlite import SqliteStore

async def main():
    store = SqliteStore(sys.argv[1])
    await store.open()
    await store.nodes.register(sys.argv[2])
    print("registered", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def registered_child(path: Path, owner: str) -> asyncio.subprocess.Process:
    """Another process that opens the store and registers ``owner``, then waits."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(path), owner, cwd=REPOSITORY,
        stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None
    async with asyncio.timeout(30):
        assert await child.stdout.readline() == b"registered\n"
    return child


@flock_only
async def test_a_killed_process_is_dead_and_a_live_one_is_not(
        store: SqliteStore, path: Path) -> None:
    """SIGKILL drops the lock: the owner is reported once, its file removed; a running
    process, and this one, are never reported."""
    await store.nodes.register("me")
    killed = await registered_child(path, "host:41/killed")
    alive = await registered_child(path, "host:42/alive")
    try:
        assert await store.nodes.dead() == []
        killed.send_signal(signal.SIGKILL)
        await killed.wait()
        assert await store.nodes.dead() == ["host:41/killed"]
        assert await store.nodes.dead() == []
        assert not (path.parent / "nodes" / lock_file_name("host:41/killed")).exists()
        assert mode(path.parent / "nodes" / lock_file_name("host:42/alive")) == 0o600
    finally:
        alive.kill()
        await alive.wait()


@flock_only
async def test_a_store_closed_without_unregistering_is_dead_and_an_unregistered_one_is_gone(
        store: SqliteStore, path: Path) -> None:
    """Closing releases the lock (its runs are recovered at once); ``unregister`` withdraws."""
    leaving, closing = await opened(path), await opened(path)
    await leaving.nodes.register("leaving")
    await closing.nodes.register("closing")
    await leaving.nodes.unregister("leaving")
    assert await store.nodes.dead() == []
    await closing.close()
    assert await store.nodes.dead() == ["closing"]
    await leaving.close()


# -- wake-ups ----------------------------------------------------------------------------------
class Hints:
    """The hints a listener received, and a way to wait for more."""

    def __init__(self) -> None:
        self.received: list[WakeUp] = []
        self._arrived = asyncio.Event()

    def deliver(self, hint: WakeUp) -> None:
        """The ``listen`` callback."""
        self.received.append(hint)
        self._arrived.set()

    async def until(self, count: int) -> None:
        """Wait (real time, at most five seconds) until ``count`` hints arrived."""
        async with asyncio.timeout(5):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()


async def test_another_process_committing_wakes_listeners(
        store: SqliteStore, path: Path) -> None:
    """A commit on another connection is noticed through ``data_version`` within a poll."""
    workflow = await a_workflow(store)
    hints = Hints()
    listener = asyncio.create_task(store.wakeups.listen(hints.deliver))
    await hints.until(2)
    assert store.wakeups.poll_seconds == 1.0
    other = sqlite3.connect(path, isolation_level=None)
    task = new_task(workflow)
    other.execute(f"INSERT INTO tasks ({', '.join(msgspec.structs.asdict(task))}) "
                  f"VALUES ({', '.join('?' for _ in task_values(task))})", task_values(task))
    other.close()
    await hints.until(4)
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)
    assert {hint.kind for hint in hints.received[2:]} == {WakeUpKind.WORK, WakeUpKind.SCHEDULES}


# -- query plans -------------------------------------------------------------------------------
async def query_plans(store: SqliteStore, path: Path,
                      call: Callable[[], Awaitable[Any]]) -> list[str]:
    """The query plan of every statement ``call`` makes the store run, one text per statement."""
    statements: list[str] = []
    await store.database.trace(statements.append)
    await call()
    await store.database.trace(None)
    explain = connect(path, busy_timeout_ms=1000, read_only=True)
    plans = []
    for sql in statements:
        # PRAGMA data_version; a savepoint around each write of a group commit
        if sql.split()[0].upper() in {"BEGIN", "COMMIT", "PRAGMA", "SAVEPOINT", "RELEASE"}:
            continue
        rows = explain.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
        plans.append("\n".join(row[-1] for row in rows))
    explain.close()
    return plans


async def seed_many_tasks(path: Path, workflows: list[Workflow], per_workflow: int) -> None:
    """Insert ``per_workflow`` tasks for each workflow from another connection, every fourth
    one failed."""
    statuses = [TaskStatus.FAILED, TaskStatus.COMPLETED, TaskStatus.COMPLETED, TaskStatus.PENDING]
    tasks = [new_task(workflow, created=i / 60, status=statuses[i % 4])
             for workflow in workflows for i in range(per_workflow)]
    columns = list(msgspec.structs.asdict(tasks[0]))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(f"INSERT INTO tasks ({', '.join(columns)}) "
                     f"VALUES ({', '.join('?' for _ in columns)})",
                     [task_values(task) for task in tasks])
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


HOT_CALLS: dict[str, Callable[[SqliteStore, Workflow], Awaitable[Any]]] = {
    "tasks-of-a-workflow": lambda s, w: s.tasks.list(TaskFilter(workflow_id=w.id), limit=50,
                                                     offset=0),
    "workflows": lambda s, w: s.workflows.list(WorkflowFilter(), limit=50, offset=0),
    "workflows-of-a-source": lambda s, w: s.workflows.list(
        WorkflowFilter(source_id=w.source_id), limit=50, offset=0),
    "due-schedules": lambda s, w: s.schedules.due(limit=10),
    "claim": lambda s, w: s.queue.claim(owner="o", limit=5, lease_seconds=LEASE),
    "renew": lambda s, w: s.queue.renew(owner="o", lease_seconds=LEASE,
                                        task_ids=[TaskId("t1"), TaskId("t2")]),
    "expired": lambda s, w: s.queue.expired(limit=10, owners=["gone"]),
    "held": lambda s, w: s.queue.held(owner="o", task_ids=[TaskId("t1"), TaskId("t2")]),
    "tasks-of-a-schedule": lambda s, w: s.tasks.list(TaskFilter(schedule_id=ScheduleId("s")),
                                                     limit=50, offset=0),
    "tasks-by-status": lambda s, w: s.tasks.list(TaskFilter(status=TaskStatus.FAILED),
                                                 limit=50, offset=0),
    "runs-of-a-schedule": lambda s, w: s.schedules.count_active_tasks(ScheduleId("s")),
    "count-by-status": lambda s, w: s.tasks.count_by_status(),
    "prune": lambda s, w: s.tasks.prune(before=at(1), older_than=None, limit=10),
}


@pytest.mark.parametrize("name", list(HOT_CALLS))
async def test_hot_queries_search_indexes_and_never_scan_the_tasks_table(
        store: SqliteStore, path: Path, clock: FakeClock, name: str) -> None:
    """Every statement behind a list or a hot path is served by an index."""
    source = await make_source(store)
    workflows = [await make_workflow(store, source, remote_id=str(i), name=f"w{i}")
                 for i in range(5)]
    await make_schedule(store, workflows[0], next_run=1)
    await seed_many_tasks(path, workflows, 50)
    clock.set(at(5))
    plans = await query_plans(store, path, lambda: HOT_CALLS[name](store, workflows[0]))
    assert plans
    for plan in plans:
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan or (
            "USING INTEGER PRIMARY KEY" in plan), plan
        # no walk of every task, under the table's name or an alias (t, r), even through an index
        assert not re.search(r"^SCAN (tasks|t|r)\b", plan, re.MULTILINE), plan


async def test_the_unfiltered_task_list_reads_its_page_in_index_order(
        store: SqliteStore, path: Path) -> None:
    """Newest-first paging walks the created_at index instead of sorting every task."""
    await seed_many_tasks(path, [await a_workflow(store)], 50)
    plans = await query_plans(store, path,
                              lambda: store.tasks.list(TaskFilter(), limit=50, offset=0))
    assert "idx_tasks_created_at" in plans[-1]
    assert "TEMP B-TREE" not in plans[-1]


async def test_listing_workflows_counts_thousands_of_tasks_correctly(
        store: SqliteStore, path: Path) -> None:
    """The one-query statistics stay right at volume."""
    source = await make_source(store)
    workflows = [await make_workflow(store, source, remote_id=str(i), name=f"w{i}")
                 for i in range(3)]
    await seed_many_tasks(path, workflows, 2000)
    idle = await make_workflow(store, source, remote_id="idle", name="zz idle")
    await make_task(store, workflows[1], created=1000, status=TaskStatus.CANCELLED)
    page = await store.workflows.list(WorkflowFilter(), limit=10, offset=0)
    assert [(s.workflow.id, s.task_count, s.failed_task_count, s.latest_run)
            for s in page.items] == [
        (workflows[0].id, 2000, 500, "PENDING"),
        (workflows[1].id, 2001, 500, "CANCELLED"),
        (workflows[2].id, 2000, 500, "PENDING"),
        (idle.id, 0, 0, "NEW"),
    ]
    schedule = await make_schedule(store, idle)
    assert await store.schedules.count_active_tasks(schedule.id) == (0, 0)
    failed = await store.tasks.list(TaskFilter(status=TaskStatus.FAILED), limit=1, offset=0)
    assert failed.total == 1500

