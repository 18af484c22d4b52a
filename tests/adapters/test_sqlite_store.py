"""``SqliteStore`` on real files: durability, migrations, two processes' worth of concurrency,
and the query plans that keep lists fast. Behaviour shared with the fake is in the contract."""

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlite_utils

from spark_adapters.sqlite import LATEST_VERSION, SqliteStore, migrate
from spark_adapters.sqlite.rows import encode_datetime
from spark_adapters.sqlite.tasks import task_to_row
from spark_core.errors import SparkError
from spark_core.models import TaskId, TaskStatus, Workflow
from spark_core.ports import TaskFilter, WorkflowFilter
from tests.contract.test_store_contract import (
    LEASE,
    T0,
    a_workflow,
    at,
    make_schedule,
    make_source,
    make_task,
    make_workflow,
    new_task,
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where the database file goes."""
    return tmp_path / "data" / "spark.db"


@pytest.fixture
def store(path: Path) -> Iterator[SqliteStore]:
    """A store on a fresh file."""
    with SqliteStore(path) as sqlite_store:
        yield sqlite_store


def test_the_parent_directory_is_created_and_data_survives_a_restart(path: Path) -> None:
    """Close the file, open it again: everything is still there."""
    first = SqliteStore(path)
    workflow = a_workflow(first)
    schedule = make_schedule(first, workflow)
    task = make_task(first, workflow, output_raw={"answer": 42})
    first.close()
    again = SqliteStore(path)
    assert again.get_workflow(workflow.id) == workflow
    assert again.get_schedule(schedule.id) == schedule
    assert again.get_task(task.id) == task
    assert again.get_source_key(workflow.source_id) == "sealed"
    again.close()


def test_the_file_is_in_wal_mode_with_foreign_keys_enforced(store: SqliteStore) -> None:
    """The connection settings the store promises are in force."""
    settings = {name: store.db.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")}
    assert settings == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 5000,
                        "synchronous": 1}


def test_an_in_memory_store_works_for_quick_use() -> None:
    """``:memory:`` gives a working, migrated store."""
    with SqliteStore(":memory:") as memory:
        task = make_task(memory, a_workflow(memory))
        assert memory.get_task(task.id) == task
        assert memory.schema_version() == LATEST_VERSION


def test_a_version_1_database_is_upgraded_in_place_keeping_its_rows(path: Path) -> None:
    """Rows written under the base schema read back after the lease migration."""
    path.parent.mkdir(parents=True)
    old = sqlite_utils.Database(sqlite3.connect(path, isolation_level=None))
    assert migrate(old, target=1) == 1
    stamp = encode_datetime(T0)
    old.execute("INSERT INTO sources (id, name, source_type, url, status, created_at, "
                "updated_at) VALUES ('s1', 'Old', 'langflow', 'http://old', 'active', ?, ?)",
                [stamp, stamp])
    old.execute("INSERT INTO workflows (id, source_id, source, remote_flow_id, name, flow_type, "
                "created_at, updated_at) VALUES ('w1', 's1', 'http://old', 'r1', 'Legacy', "
                "'langflow', ?, ?)", [stamp, stamp])
    old.execute("INSERT INTO tasks (id, workflow_id, status, input_data, max_retries, "
                "created_at, updated_at) VALUES ('t1', 'w1', 'pending', 'hi', 3, ?, ?)",
                [stamp, stamp])
    assert "lease_owner" not in old.table("tasks").columns_dict
    old.close()

    with SqliteStore(path) as upgraded:
        assert upgraded.schema_version() == LATEST_VERSION == 3
        task = upgraded.get_task(TaskId("t1"))
        assert (task.input_data, task.status, task.created_at) == ("hi", TaskStatus.PENDING, T0)
        assert upgraded.find_workflow("r1") is not None
        [claimed] = upgraded.claim_tasks(at(1), owner="w", lease_until=at(1) + LEASE, limit=1)
        assert claimed.id == "t1"
        assert upgraded.renew_leases("w", at(9)) == ["t1"]


def test_opening_a_database_from_a_newer_spark_is_refused(path: Path) -> None:
    """A schema version this code does not know is an error, not a silent downgrade."""
    SqliteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(SparkError, match="newer than this Spark understands"):
        SqliteStore(path)


def test_sqlite_errors_never_escape_as_sqlite_exceptions(store: SqliteStore) -> None:
    """A closed store raises ``SparkError`` and reports itself unhealthy."""
    store.close()
    with pytest.raises(SparkError):
        store.list_tasks(TaskFilter(), limit=10, offset=0)
    assert not store.is_healthy()


def test_a_path_that_cannot_hold_a_database_is_a_spark_error(tmp_path: Path) -> None:
    """Opening a directory, or a file under a regular file, fails with ``SparkError``."""
    with pytest.raises(SparkError):
        SqliteStore(tmp_path)
    (tmp_path / "plain").write_text("not a directory")
    with pytest.raises(SparkError):
        SqliteStore(tmp_path / "plain" / "spark.db")


def run_in_threads(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(index)`` in ``count`` threads and re-raise the first failure."""
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            work(index)
        except BaseException as exc:  # handed back to the test thread, which re-raises it
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def test_two_stores_on_one_file_never_claim_the_same_task(path: Path) -> None:
    """Claimers on separate connections split the queue without overlap."""
    stores = [SqliteStore(path), SqliteStore(path)]
    workflow = a_workflow(stores[0])
    expected = {make_task(stores[0], workflow, created=i / 100).id for i in range(300)}
    claimed: list[list[str]] = [[], []]

    def claim(index: int) -> None:
        while batch := stores[index].claim_tasks(at(10), owner=f"w{index}",
                                                  lease_until=at(10) + LEASE, limit=3):
            claimed[index].extend(task.id for task in batch)

    run_in_threads(2, claim)
    every_claim = claimed[0] + claimed[1]
    assert len(every_claim) == len(set(every_claim)) == 300
    assert set(every_claim) == expected
    for index, sqlite_store in enumerate(stores):
        assert sorted(sqlite_store.renew_leases(f"w{index}", at(20))) == sorted(claimed[index])
        sqlite_store.close()


def test_two_stores_on_one_file_never_fire_the_same_time_twice(path: Path) -> None:
    """Racing schedulers win each (schedule, time) exactly once between them."""
    stores = [SqliteStore(path), SqliteStore(path)]
    workflow = a_workflow(stores[0])
    schedule = make_schedule(stores[0], workflow, next_run=0)
    rounds = 50
    barrier = threading.Barrier(2)
    wins: list[list[int]] = [[], []]

    def fire(index: int) -> None:
        for minute in range(rounds):
            barrier.wait()
            fired = msgspec.structs.replace(schedule, next_run_at=at(minute + 1),
                                            last_run_at=at(minute))
            task = new_task(workflow, schedule_id=schedule.id, scheduled_for=at(minute))
            if stores[index].fire_schedule(fired, expected_next_run_at=at(minute),
                                           tasks=[task]):
                wins[index].append(minute)

    run_in_threads(2, fire)
    assert sorted(wins[0] + wins[1]) == list(range(rounds))
    tasks = stores[1].list_tasks(TaskFilter(schedule_id=schedule.id), limit=100, offset=0)
    assert sorted(t.scheduled_for for t in tasks.items if t.scheduled_for) == [
        at(m) for m in range(rounds)]
    assert stores[1].get_schedule(schedule.id).next_run_at == at(rounds)
    for sqlite_store in stores:
        sqlite_store.close()


def query_plans(store: SqliteStore, call: Callable[[], Any]) -> list[str]:
    """The query plan of every statement ``call`` makes the store run, one text per statement."""
    statements: list[tuple[str, Any]] = []
    with store.db.tracer(lambda sql, params: statements.append((sql, params))):
        call()
    plans = []
    for sql, params in statements:
        rows = store.db.execute(f"EXPLAIN QUERY PLAN {sql}", params or []).fetchall()
        plans.append("\n".join(row[-1] for row in rows))
    return plans


def seed_many_tasks(store: SqliteStore, workflows: list[Workflow], per_workflow: int) -> None:
    """Bulk-insert ``per_workflow`` tasks for each workflow, every fourth one failed."""
    statuses = [TaskStatus.FAILED, TaskStatus.COMPLETED, TaskStatus.COMPLETED, TaskStatus.PENDING]
    store.db.table("tasks").insert_all(
        task_to_row(new_task(workflow, created=i / 60, status=statuses[i % 4]))
        for workflow in workflows for i in range(per_workflow)
    )


@pytest.mark.parametrize("call", [
    pytest.param(lambda s, w: s.list_tasks(TaskFilter(workflow_id=w.id), limit=50, offset=0),
                 id="tasks-of-a-workflow"),
    pytest.param(lambda s, w: s.list_workflows(WorkflowFilter(), limit=50, offset=0),
                 id="workflows"),
    pytest.param(lambda s, w: s.list_workflows(WorkflowFilter(source_id=w.source_id), limit=50,
                                               offset=0), id="workflows-of-a-source"),
    pytest.param(lambda s, w: s.due_schedules(at(5), limit=10), id="due-schedules"),
    pytest.param(lambda s, w: s.claim_tasks(at(5), owner="o", lease_until=at(9), limit=5),
                 id="claim"),
])
def test_hot_queries_search_indexes_and_never_scan_the_tasks_table(
        store: SqliteStore, call: Callable[[SqliteStore, Workflow], Any]) -> None:
    """Every statement behind a list or a hot path is served by an index."""
    source = make_source(store)
    workflows = [make_workflow(store, source, remote_id=str(i), name=f"w{i}") for i in range(5)]
    make_schedule(store, workflows[0], next_run=1)
    seed_many_tasks(store, workflows, 50)
    store.db.execute("ANALYZE")
    plans = query_plans(store, lambda: call(store, workflows[0]))
    assert plans
    for plan in plans:
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan or (
            "USING INTEGER PRIMARY KEY" in plan), plan
        assert "SCAN tasks" not in plan, plan


def test_the_unfiltered_task_list_reads_its_page_in_index_order(store: SqliteStore) -> None:
    """Newest-first paging walks the created_at index instead of sorting every task."""
    seed_many_tasks(store, [a_workflow(store)], 50)
    plans = query_plans(store, lambda: store.list_tasks(TaskFilter(), limit=50, offset=0))
    page_plan = plans[-1]
    assert "idx_tasks_created_at" in page_plan
    assert "TEMP B-TREE" not in page_plan


def test_listing_workflows_counts_thousands_of_tasks_correctly(store: SqliteStore) -> None:
    """The one-query statistics stay right at volume."""
    source = make_source(store)
    workflows = [make_workflow(store, source, remote_id=str(i), name=f"w{i}") for i in range(3)]
    seed_many_tasks(store, workflows, 2000)
    idle = make_workflow(store, source, remote_id="idle", name="zz idle")
    make_task(store, workflows[1], created=1000, status=TaskStatus.CANCELLED)
    page = store.list_workflows(WorkflowFilter(), limit=10, offset=0)
    assert [(s.workflow.id, s.task_count, s.failed_task_count, s.latest_run)
            for s in page.items] == [
        (workflows[0].id, 2000, 500, "PENDING"),
        (workflows[1].id, 2001, 500, "CANCELLED"),
        (workflows[2].id, 2000, 500, "PENDING"),
        (idle.id, 0, 0, "NEW"),
    ]
    assert store.count_active_tasks(make_schedule(store, idle).id) == (0, 0)
    assert store.list_tasks(TaskFilter(status=TaskStatus.FAILED), limit=1, offset=0).total == 1500
