"""Direct access to the server's database: seeding many tasks fast, reading timings back.

``StoreAccess`` is what the scenarios need from either store; this module implements it for
the SQLite file (``SqliteAccess``), ``bench.postgres`` for a PostgreSQL schema. SQLite rows are
written with the store's own row mapping (``task_to_row``) on the store's schema, in one
transaction per batch from a second connection, as another Spark process would (WAL mode).
"""

import contextlib
import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from spark_adapters.sqlite.rows import decode_datetime, encode_datetime
from spark_adapters.sqlite.tasks import task_to_row
from spark_core.models import Task, TaskId, TaskStatus, WorkflowId, new_id

BATCH = 10_000

Timing = tuple[datetime, datetime | None, datetime]
"""(scheduled_for, started_at or None, created_at) of a scheduled task."""

RunTiming = tuple[datetime, datetime | None, bool]
"""(created_at, started_at or None, finished) of a run."""


class StoreAccess(Protocol):
    """Reading and seeding the store behind the nodes, around the HTTP API."""

    name: str

    def count_tasks(self) -> int:
        """How many tasks the store holds."""
        ...

    def seed_tasks(self, workflow_ids: list[str], total: int) -> int:
        """Add finished tasks until the store holds ``total``; returns how many were added."""
        ...

    def schedule_timings(self, schedule_ids: list[str]) -> list[Timing]:
        """The timings of the tasks of ``schedule_ids``."""
        ...

    def run_timings(self, input_data: str, since: float, until: float) -> list[RunTiming]:
        """The timings of the tasks with ``input_data`` created between the epoch times
        ``since`` and ``until``."""
        ...


class SqliteAccess:
    """``StoreAccess`` on the SQLite file ``database``."""

    name = "sqlite"

    def __init__(self, database: Path) -> None:
        self.database = database

    def count_tasks(self) -> int:
        """How many tasks the store holds."""
        return count_tasks(self.database)

    def seed_tasks(self, workflow_ids: list[str], total: int) -> int:
        """See ``seed_tasks``."""
        return seed_tasks(self.database, workflow_ids, total)

    def schedule_timings(self, schedule_ids: list[str]) -> list[Timing]:
        """See ``schedule_timings``."""
        return schedule_timings(self.database, schedule_ids)

    def run_timings(self, input_data: str, since: float, until: float) -> list[RunTiming]:
        """See ``run_timings``."""
        return run_timings(self.database, input_data, since, until)


def count_tasks(database: Path) -> int:
    """How many tasks the store holds."""
    with _connect(database) as conn:
        return int(conn.execute("SELECT count(*) FROM tasks").fetchone()[0])


def seed_tasks(database: Path, workflow_ids: list[str], total: int) -> int:
    """Add finished tasks (90 % completed, 10 % failed, spread over the workflows and the past
    30 days) until the store holds ``total``; returns how many were added."""
    missing = total - count_tasks(database)
    if missing <= 0:
        return 0
    rng = random.Random(7)
    now = datetime.now(UTC)
    sample = task_to_row(seeded_task(workflow_ids[0], now, failed=False, rng=rng))
    columns = list(sample)
    sql = (f"INSERT INTO tasks ({', '.join(columns)}) "
           f"VALUES ({', '.join('?' for _ in columns)})")
    with _connect(database, write=True) as conn:
        added = 0
        while added < missing:
            size = min(BATCH, missing - added)
            batch = []
            for number in range(size):
                when = now - timedelta(seconds=rng.uniform(60, 30 * 86400))
                task = seeded_task(workflow_ids[(added + number) % len(workflow_ids)], when,
                             failed=rng.random() < 0.1, rng=rng)
                row = task_to_row(task)
                batch.append([row[name] for name in columns])
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, batch)
            conn.execute("COMMIT")
            added += size
    return added


def seeded_task(workflow_id: str, when: datetime, *, failed: bool, rng: random.Random) -> Task:
    """A finished task of ``workflow_id`` created at ``when``, failed or completed."""
    finished = when + timedelta(seconds=rng.uniform(0.05, 5))
    return Task(
        id=TaskId(new_id()), workflow_id=WorkflowId(workflow_id),
        status=TaskStatus.FAILED if failed else TaskStatus.COMPLETED,
        input_data="seeded input", output_data=None if failed else "seeded answer",
        error="HTTP 500 from the source" if failed else None, tries=1, max_retries=3,
        started_at=when, finished_at=finished, created_at=when, updated_at=finished,
    )


def schedule_timings(database: Path, schedule_ids: list[str]) -> list[Timing]:
    """For each task of ``schedule_ids``: (scheduled_for, started_at or None, created_at)."""
    found = []
    with _connect(database) as conn:
        for start in range(0, len(schedule_ids), 500):
            chunk = schedule_ids[start:start + 500]
            found += conn.execute(
                "SELECT scheduled_for, started_at, created_at FROM tasks "
                f"WHERE schedule_id IN ({', '.join('?' for _ in chunk)})", chunk).fetchall()
    return [(decode_datetime(due), decode_datetime(started) if started else None,
             decode_datetime(created)) for due, started, created in found]


def run_timings(database: Path, input_data: str, since: float,
                until: float) -> list[RunTiming]:
    """(created_at, started_at or None, finished) of the tasks with ``input_data`` created
    between the epoch times ``since`` and ``until`` (stored datetimes compare as text)."""
    bounds = [encode_datetime(datetime.fromtimestamp(moment, UTC)) for moment in (since, until)]
    with _connect(database) as conn:
        found = conn.execute(
            "SELECT created_at, started_at, finished_at IS NOT NULL FROM tasks "
            "WHERE input_data = ? AND created_at >= ? AND created_at <= ?",
            [input_data, *bounds]).fetchall()
    return [(decode_datetime(created), decode_datetime(started) if started else None,
             bool(finished)) for created, started, finished in found]


@contextlib.contextmanager
def _connect(database: Path, *, write: bool = False) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(database, isolation_level=None, timeout=30)
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        if not write:
            conn.execute("PRAGMA query_only = ON")
        yield conn
    finally:
        conn.close()
