"""Direct access to a PostgreSQL store: a fresh schema per bench, seeding, reading timings back.

The bench never touches an existing Spark schema: ``BenchSchema`` creates ``spark_bench_<hex>``
on the server, hands out a URL whose ``search_path`` (``options=-csearch_path=…``) points at
it, and drops it afterwards; the nodes migrate it on start. Seeded rows use the store's own row
mapping (``spark_adapters.postgres.tasks.task_to_row``) on the schema of
``spark_adapters/postgres/migrations/0001_initial.sql`` and go in with ``COPY``, whose row
triggers keep ``workflow_stats`` right as any insert would.
"""

import random
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from bench.store import BATCH, RunTiming, Timing, seeded_task
from spark_adapters.postgres.tasks import task_to_row

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def with_search_path(url: str, schema: str) -> str:
    """``url`` with ``options=-csearch_path=<schema>`` added to its query."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query)
    query.append(("options", f"-csearch_path={schema}"))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


class BenchSchema:
    """A new, empty schema on the server at ``server_url``, dropped by ``drop``."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.schema = f"spark_bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
        self.url = with_search_path(server_url, self.schema)

    def drop(self) -> None:
        """Drop the schema and everything in it."""
        with psycopg.connect(self.server_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(self.schema)))


class PostgresAccess:
    """``StoreAccess`` on the schema that ``url``'s search_path names."""

    name = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url, autocommit=True, connect_timeout=5)

    def count_tasks(self) -> int:
        """How many tasks the store holds."""
        with self._connect() as conn:
            row = conn.execute("SELECT count(*) FROM tasks").fetchone()
        return int(row[0]) if row else 0

    def seed_tasks(self, workflow_ids: list[str], total: int) -> int:
        """Add finished tasks (as ``bench.store.seed_tasks``: 90 % completed, 10 % failed,
        over the workflows and the past 30 days) with ``COPY``, one transaction per batch,
        until the store holds ``total``; then ``VACUUM ANALYZE`` the two tables, as autovacuum
        would shortly after such a load. Returns how many were added."""
        missing = total - self.count_tasks()
        if missing <= 0:
            return 0
        rng = random.Random(7)
        now = datetime.now(UTC)
        columns = list(task_to_row(seeded_task(workflow_ids[0], now, failed=False, rng=rng)))
        copy = sql.SQL("COPY tasks ({}) FROM STDIN").format(
            sql.SQL(", ").join(sql.Identifier(name) for name in columns))
        with self._connect() as conn:
            added = 0
            while added < missing:
                size = min(BATCH, missing - added)
                with conn.transaction(), conn.cursor() as cursor, cursor.copy(copy) as stream:
                    for number in range(size):
                        when = now - timedelta(seconds=rng.uniform(60, 30 * 86400))
                        row = task_to_row(seeded_task(
                            workflow_ids[(added + number) % len(workflow_ids)], when,
                            failed=rng.random() < 0.1, rng=rng))
                        stream.write_row([row[name] for name in columns])
                added += size
            conn.execute("VACUUM ANALYZE tasks")
            conn.execute("VACUUM ANALYZE workflow_stat_stripes")
        return added

    def stats_agree(self) -> bool:
        """Whether ``workflow_stats`` (the sums of each workflow's stripes) matches a count of
        ``tasks`` for every workflow."""
        with self._connect() as conn:
            row = conn.execute("""
                SELECT count(*) FROM (
                    SELECT workflow_id, count(*) AS n,
                           count(*) FILTER (WHERE status = 'failed') AS failed
                    FROM tasks GROUP BY workflow_id) AS counted
                FULL JOIN workflow_stats AS stats USING (workflow_id)
                WHERE coalesce(stats.task_count, 0) <> coalesce(counted.n, 0)
                   OR coalesce(stats.failed_task_count, 0) <> coalesce(counted.failed, 0)
            """).fetchone()
        return row is not None and row[0] == 0

    def schedule_timings(self, schedule_ids: list[str]) -> list[Timing]:
        """For each task of ``schedule_ids``: (scheduled_for, started_at or None, created_at)."""
        with self._connect() as conn:
            found = conn.execute(
                "SELECT scheduled_for, started_at, created_at FROM tasks "
                "WHERE schedule_id = ANY(%s::text[])", [schedule_ids]).fetchall()
        return [(_utc(due), _utc(started) if started else None, _utc(made))
                for due, started, made in found]

    def run_timings(self, input_data: str, since: float, until: float) -> list[RunTiming]:
        """(created_at, started_at or None, finished) of the tasks with ``input_data``
        created between the epoch times ``since`` and ``until``."""
        with self._connect() as conn:
            found = conn.execute(
                "SELECT created_at, started_at, finished_at IS NOT NULL FROM tasks "
                "WHERE input_data = %s "
                "AND created_at BETWEEN to_timestamp(%s) AND to_timestamp(%s)",
                [input_data, since, until]).fetchall()
        return [(_utc(made), _utc(started) if started else None, bool(finished))
                for made, started, finished in found]


def _utc(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"Expected a timestamp, got {value!r}")
    return value.astimezone(UTC)
