"""Versioned schema migrations; the applied version lives in ``PRAGMA user_version``.

Each migration is a function that takes the database to the next version. ``migrate`` applies
the missing ones in order inside one ``BEGIN IMMEDIATE`` transaction, so an older database is
upgraded in place, all or nothing, and two processes opening the same file never migrate it
twice. Scripts run statement by statement: ``sqlite3``'s ``executescript`` would commit the
transaction first. Never edit a released migration: append a new one.
"""

import sqlite3
from collections.abc import Callable

from spark_adapters.sqlite.connection import translate_errors


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run each complete statement of ``script`` inside the caller's transaction."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"Incomplete statement in a migration: {statement.strip()}")


def _base_schema(db: sqlite3.Connection) -> None:
    """Version 1: the four tables and the indexes behind every list filter and hot path."""
    _run_script(db, """
        CREATE TABLE sources (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            source_type TEXT NOT NULL,
            url TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL,
            version_info TEXT NOT NULL DEFAULT '{}',
            verify_tls INTEGER NOT NULL DEFAULT 1,
            sealed_key TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX idx_sources_status ON sources (status);
        CREATE INDEX idx_sources_source_type ON sources (source_type);
        CREATE INDEX idx_sources_created_at ON sources (created_at, id);

        CREATE TABLE workflows (
            id TEXT PRIMARY KEY,
            source_id TEXT NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
            source TEXT NOT NULL,
            remote_flow_id TEXT NOT NULL,
            name TEXT NOT NULL,
            flow_type TEXT NOT NULL,
            description TEXT,
            input_component TEXT,
            output_component TEXT,
            data TEXT,
            folder_id TEXT,
            folder_name TEXT,
            icon TEXT,
            icon_bg_color TEXT,
            liked INTEGER NOT NULL DEFAULT 0,
            tags TEXT NOT NULL DEFAULT '[]',
            flow_version INTEGER NOT NULL DEFAULT 1,
            is_component INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (source_id, remote_flow_id)
        );
        CREATE INDEX idx_workflows_source_id ON workflows (source_id);
        CREATE INDEX idx_workflows_flow_type ON workflows (flow_type);
        CREATE INDEX idx_workflows_name ON workflows (name, id);
        CREATE INDEX idx_workflows_source ON workflows (source);

        CREATE TABLE schedules (
            id TEXT PRIMARY KEY,
            workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
            schedule_type TEXT NOT NULL,
            schedule_expr TEXT NOT NULL,
            input_value TEXT NOT NULL DEFAULT '',
            timezone TEXT NOT NULL DEFAULT 'UTC',
            status TEXT NOT NULL,
            next_run_at TEXT,
            last_run_at TEXT,
            overlap_policy TEXT NOT NULL,
            catchup_policy TEXT NOT NULL,
            max_retries INTEGER NOT NULL,
            timeout REAL,
            start_at TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX idx_schedules_status_next_run_at ON schedules (status, next_run_at, id);
        CREATE INDEX idx_schedules_workflow_id ON schedules (workflow_id);
        CREATE INDEX idx_schedules_created_at ON schedules (created_at, id);

        -- schedule_id is deliberately not a foreign key: a run's history outlives its schedule.
        CREATE TABLE tasks (
            id TEXT PRIMARY KEY,
            workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
            schedule_id TEXT,
            status TEXT NOT NULL,
            input_data TEXT NOT NULL DEFAULT '',
            output_data TEXT,
            output_raw TEXT,
            error TEXT,
            tries INTEGER NOT NULL DEFAULT 0,
            max_retries INTEGER NOT NULL,
            next_retry_at TEXT,
            scheduled_for TEXT,
            timeout REAL,
            session_id TEXT,
            tweaks TEXT,
            started_at TEXT,
            finished_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX idx_tasks_workflow_id_created_at ON tasks (workflow_id, created_at, id);
        CREATE INDEX idx_tasks_workflow_id_status ON tasks (workflow_id, status);
        CREATE INDEX idx_tasks_schedule_id_status ON tasks (schedule_id, status);
        CREATE INDEX idx_tasks_status_next_retry_at ON tasks (status, next_retry_at);
        CREATE INDEX idx_tasks_status_created_at ON tasks (status, created_at, id);
        CREATE INDEX idx_tasks_created_at ON tasks (created_at, id);
    """)


def _task_leases(db: sqlite3.Connection) -> None:
    """Version 2: worker leases on tasks, and lookup of workflows by remote id."""
    db.execute("ALTER TABLE tasks ADD COLUMN lease_owner TEXT")
    db.execute("ALTER TABLE tasks ADD COLUMN lease_expires_at TEXT")
    db.execute("CREATE INDEX idx_tasks_lease_owner ON tasks (lease_owner)")
    db.execute("CREATE INDEX idx_tasks_status_lease_expires_at "
               "ON tasks (status, lease_expires_at)")
    db.execute("CREATE INDEX idx_workflows_remote_flow_id "
               "ON workflows (remote_flow_id, created_at)")


def _workflow_stats(db: sqlite3.Connection) -> None:
    """Version 3: per-workflow task counts kept by triggers, so listing workflows costs the
    same however many tasks they have (counting index entries grew with the tasks)."""
    _run_script(db, """
        CREATE TABLE workflow_stats (
            workflow_id TEXT PRIMARY KEY REFERENCES workflows(id) ON DELETE CASCADE,
            task_count INTEGER NOT NULL DEFAULT 0,
            failed_task_count INTEGER NOT NULL DEFAULT 0
        );
        INSERT INTO workflow_stats (workflow_id, task_count, failed_task_count)
            SELECT workflow_id, count(*), sum(status = 'failed') FROM tasks GROUP BY workflow_id;
        CREATE TRIGGER tasks_stats_insert AFTER INSERT ON tasks BEGIN
            INSERT INTO workflow_stats (workflow_id, task_count, failed_task_count)
                VALUES (NEW.workflow_id, 1, NEW.status = 'failed')
            ON CONFLICT (workflow_id) DO UPDATE SET
                task_count = task_count + 1,
                failed_task_count = failed_task_count + (NEW.status = 'failed');
        END;
        CREATE TRIGGER tasks_stats_delete AFTER DELETE ON tasks BEGIN
            UPDATE workflow_stats SET
                task_count = task_count - 1,
                failed_task_count = failed_task_count - (OLD.status = 'failed')
            WHERE workflow_id = OLD.workflow_id;
        END;
        CREATE TRIGGER tasks_stats_status AFTER UPDATE OF status ON tasks
            WHEN (OLD.status = 'failed') != (NEW.status = 'failed') BEGIN
            UPDATE workflow_stats SET
                failed_task_count = failed_task_count + (NEW.status = 'failed')
                                    - (OLD.status = 'failed')
            WHERE workflow_id = NEW.workflow_id;
        END;
    """)


def _schedule_versions(db: sqlite3.Connection) -> None:
    """Version 4: a version on schedules for compare-and-set updates, and at most one task per
    (schedule, fire time) as the second line behind the compare-and-set fire.

    Duplicates a database may already hold keep their rows: every one but the first created
    loses its ``scheduled_for``, so the unique index can be built.
    """
    _run_script(db, """
        ALTER TABLE schedules ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
        UPDATE tasks SET scheduled_for = NULL
        WHERE schedule_id IS NOT NULL AND scheduled_for IS NOT NULL AND EXISTS (
            SELECT 1 FROM tasks AS earlier
            WHERE earlier.schedule_id = tasks.schedule_id
              AND earlier.scheduled_for = tasks.scheduled_for
              AND (earlier.created_at, earlier.id) < (tasks.created_at, tasks.id)
        );
        CREATE UNIQUE INDEX idx_tasks_schedule_id_scheduled_for
            ON tasks (schedule_id, scheduled_for)
            WHERE schedule_id IS NOT NULL AND scheduled_for IS NOT NULL;
    """)


def _task_attempts(db: sqlite3.Connection) -> None:
    """Version 5: every attempt of a task (start, end, error) as a JSON array, and an index
    for pruning finished tasks by age. Tasks run before keep an empty history."""
    _run_script(db, """
        ALTER TABLE tasks ADD COLUMN attempts TEXT NOT NULL DEFAULT '[]';
        CREATE INDEX idx_tasks_status_finished_at ON tasks (status, finished_at);
    """)


def _schedule_fires(db: sqlite3.Connection) -> None:
    """Version 6: the fire ledger, one row per schedule and nominal time the scheduler
    considered; rows go with their schedule, and pruning by age uses ``decided_at``."""
    _run_script(db, """
        CREATE TABLE schedule_fires (
            schedule_id TEXT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
            nominal_time TEXT NOT NULL,
            outcome TEXT NOT NULL,
            reason TEXT NOT NULL,
            task_id TEXT,
            decided_at TEXT NOT NULL,
            delay_seconds REAL NOT NULL,
            PRIMARY KEY (schedule_id, nominal_time)
        );
        CREATE INDEX idx_schedule_fires_outcome
            ON schedule_fires (schedule_id, outcome, nominal_time);
        CREATE INDEX idx_schedule_fires_decided_at ON schedule_fires (decided_at);
    """)


def _schedule_keys(db: sqlite3.Connection) -> None:
    """Version 7: an optional key naming a schedule, unique among the schedules that have one,
    for create-or-replace by key."""
    _run_script(db, """
        ALTER TABLE schedules ADD COLUMN key TEXT;
        CREATE UNIQUE INDEX idx_schedules_key ON schedules (key) WHERE key IS NOT NULL;
    """)


def _schedule_bounds(db: sqlite3.Connection) -> None:
    """Version 8: a schedule's optional ``end_at`` and ``max_runs``, and ``run_count``, the
    runs its fires created (what ``max_runs`` is compared with)."""
    _run_script(db, """
        ALTER TABLE schedules ADD COLUMN end_at TEXT;
        ALTER TABLE schedules ADD COLUMN max_runs INTEGER;
        ALTER TABLE schedules ADD COLUMN run_count INTEGER NOT NULL DEFAULT 0;
    """)


def _schedule_jitter(db: sqlite3.Connection) -> None:
    """Version 9: a schedule's optional ``jitter``, the most a fire's run is delayed by
    (a duration such as ``30s``)."""
    _run_script(db, """
        ALTER TABLE schedules ADD COLUMN jitter TEXT;
    """)


def _schedule_failure_pause(db: sqlite3.Connection) -> None:
    """Version 10: ``pause_after_failures`` (pause after this many failed runs in a row),
    ``consecutive_failures`` (the count so far) and ``note`` (why it was paused or resumed)."""
    _run_script(db, """
        ALTER TABLE schedules ADD COLUMN pause_after_failures INTEGER;
        ALTER TABLE schedules ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE schedules ADD COLUMN note TEXT;
    """)


def _workflow_concurrency(db: sqlite3.Connection) -> None:
    """Version 11: a workflow's optional ``max_concurrency``, the most of its runs that are
    ``running`` at once (null: no limit)."""
    _run_script(db, """
        ALTER TABLE workflows ADD COLUMN max_concurrency INTEGER;
    """)


def _workflow_webhooks(db: sqlite3.Connection) -> None:
    """Version 12: a workflow's optional ``webhook_url``, told of its failed and recovered
    runs."""
    _run_script(db, """
        ALTER TABLE workflows ADD COLUMN webhook_url TEXT;
    """)


def _partial_task_indexes(db: sqlite3.Connection) -> None:
    """Version 13: the task indexes that serve only some rows index only those rows, so a run
    (inserted running, finished once) updates fewer of them: a run now and its outcome took
    ~345 us of index and row writes on 1,000 tasks, ~220 us after.

    - the schedule index holds only tasks of a schedule (every query names one);
    - one lease index on (owner, expiry) holds only leased tasks (renewing names the owner;
      looking for expired leases reads the few running tasks by status);
    - the prune index holds only finished tasks (every query bounds ``finished_at``);
    - ``(status, next_retry_at)`` goes: the claim reads pending tasks oldest first through
      ``(status, created_at, id)``, and nothing else searched by retry time.
    """
    _run_script(db, """
        DROP INDEX idx_tasks_status_next_retry_at;
        DROP INDEX idx_tasks_schedule_id_status;
        CREATE INDEX idx_tasks_schedule_id_status ON tasks (schedule_id, status)
            WHERE schedule_id IS NOT NULL;
        DROP INDEX idx_tasks_lease_owner;
        DROP INDEX idx_tasks_status_lease_expires_at;
        CREATE INDEX idx_tasks_lease ON tasks (lease_owner, lease_expires_at)
            WHERE lease_owner IS NOT NULL;
        DROP INDEX idx_tasks_status_finished_at;
        CREATE INDEX idx_tasks_finished_at ON tasks (finished_at)
            WHERE finished_at IS NOT NULL;
    """)


def _catalogue_version(db: sqlite3.Connection) -> None:
    """Version 14: a number that triggers raise on every change to a workflow or a source, so
    a process can keep what it read of them (the run target of each run) for as long as that
    number stays the same, whichever process or tool changed them."""
    _run_script(db, """
        CREATE TABLE catalogue_version (
            id INTEGER PRIMARY KEY CHECK (id = 0),
            version INTEGER NOT NULL
        );
        INSERT INTO catalogue_version (id, version) VALUES (0, 0);
    """)
    for table in ("workflows", "sources"):
        for event in ("INSERT", "UPDATE", "DELETE"):
            db.execute(f"CREATE TRIGGER {table}_{event.lower()}_catalogue AFTER {event} "  # noqa: S608 - constants only
                       f"ON {table} BEGIN UPDATE catalogue_version SET version = version + 1; "
                       "END")


def _no_lease_index(db: sqlite3.Connection) -> None:
    """Version 15: no index on the lease columns. Every lease statement finds its tasks
    otherwise: renewing and checking a lease name the tasks' ids, the search for expired
    leases reads the few running tasks through ``(status, created_at, id)``, in the order it
    answers them. A run wrote the index twice (its lease taken, then released): its two
    transactions took 184 against 174 us without it (interleaved on two copies of one file,
    medians of 5,000 runs)."""
    _run_script(db, """
        DROP INDEX idx_tasks_lease;
    """)


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _base_schema, _task_leases, _workflow_stats, _schedule_versions, _task_attempts,
    _schedule_fires, _schedule_keys, _schedule_bounds, _schedule_jitter,
    _schedule_failure_pause, _workflow_concurrency, _workflow_webhooks, _partial_task_indexes,
    _catalogue_version, _no_lease_index,
)
"""Migration ``n`` (1-based) takes a database from version ``n - 1`` to version ``n``."""

LATEST_VERSION = len(MIGRATIONS)


def schema_version(db: sqlite3.Connection) -> int:
    """The schema version a database is at (0 for a new, empty file)."""
    with translate_errors():
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, *, target: int = LATEST_VERSION) -> int:
    """Apply the migrations a database lacks, up to ``target``; return the version reached.

    ``db`` must be in driver autocommit mode (``isolation_level=None``), as the store opens it.
    """
    if not 0 <= target <= LATEST_VERSION:
        raise ValueError(f"Unknown schema version {target}; this code knows 0-{LATEST_VERSION}")
    with translate_errors():
        if schema_version(db) >= target:  # the common case: no write lock needed
            return schema_version(db)
        db.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another process may have just migrated.
            current = schema_version(db)
            for version in range(current + 1, target + 1):
                MIGRATIONS[version - 1](db)
            if target > current:
                db.execute(f"PRAGMA user_version = {int(target)}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return max(current, target)
