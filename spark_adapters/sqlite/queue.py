"""``SqliteTaskQueue``: runnable tasks handed to workers under leases fenced by owner and
attempt, every lease judged by the store's clock.

A lease lives in two ``tasks`` columns, ``lease_owner`` and ``lease_expires_at``; the attempt is
``tries`` as the claim left it. Each call is one statement inside its transaction.
"""

import sqlite3
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from spark_adapters.sqlite.connection import Database, placeholders, rows
from spark_adapters.sqlite.rows import encode_datetime, encode_optional_datetime, json_text
from spark_adapters.sqlite.tasks import (
    appended_attempt,
    attempts_text,
    insert_claimed_task,
    insert_task,
    task_from_row,
)
from spark_adapters.sqlite.wakeups import WORK, SqliteWakeUpFeed, finished
from spark_adapters.sqlite.workflows import catalogue_version
from spark_core.errors import StaleTargetError
from spark_core.models import Task, TaskId, TaskStatus
from spark_core.ports import Clock, RunTarget, TaskOutcome, TaskQueue


def _write_outcome(attempts: str) -> str:
    """The outcome's statement, the attempt history written as ``attempts`` (SQL)."""
    return ("UPDATE tasks SET status = ?, output_data = ?, output_raw = ?, error = ?, "  # noqa: S608
            f"next_retry_at = ?, finished_at = ?, updated_at = ?, attempts = {attempts}, "
            "lease_owner = NULL, lease_expires_at = NULL "
            "WHERE id = ? AND status = 'running' AND tries = ?")


# The attempt ends where the outcome is written: the last entry of attempts gets its end and
# error (a task running since before migration 5 has no entry to close). A recovery has only
# the task's id, so the statement ends the stored history; a release has the task as its
# claim left it, whose history nothing else changes while the lease holds (the statement
# checks the lease), so the history ended in Python is written whole.
_WRITE_OUTCOME = _write_outcome(
    "CASE WHEN json_array_length(attempts) > 0 THEN json_set(attempts, "
    "'$[#-1].finished_at', ?, '$[#-1].error', ?) ELSE attempts END")
_RELEASE = f"{_write_outcome('?')} AND lease_owner = ?"
# Tasks of unlimited workflows are picked as before, oldest first; a limited workflow offers
# its oldest pending tasks up to its free slots (max_concurrency minus its running tasks).
# One statement under the writer's BEGIN IMMEDIATE, so no other claimer counts meanwhile.
_CLAIM = (
    "WITH limited AS (SELECT w.id, w.max_concurrency - (SELECT count(*) FROM tasks r "  # noqa: S608
    "WHERE r.workflow_id = w.id AND r.status = 'running') AS free "
    "FROM workflows w WHERE w.max_concurrency IS NOT NULL), "
    "candidates AS ("
    "SELECT * FROM (SELECT t.id, t.created_at FROM tasks t WHERE {runnable}"
    "AND t.workflow_id NOT IN (SELECT id FROM workflows WHERE max_concurrency IS NOT NULL) "
    "ORDER BY t.created_at, t.id LIMIT ?) "
    "UNION ALL SELECT id, created_at FROM (SELECT t.id, t.created_at, l.free, row_number() "
    "OVER (PARTITION BY t.workflow_id ORDER BY t.created_at, t.id) AS position "
    "FROM limited l CROSS JOIN tasks t ON t.workflow_id = l.id WHERE l.free > 0 AND {runnable}) "
    "WHERE position <= free) "
    "UPDATE tasks SET status = 'running', lease_owner = ?, lease_expires_at = ?, "
    "started_at = coalesce(started_at, ?), tries = tries + 1, updated_at = ?, "
    f"attempts = {appended_attempt('attempts', 'tries + 1')} "
    "WHERE id IN (SELECT id FROM candidates ORDER BY created_at, id LIMIT ?) RETURNING *"
)


def _outcome_values(outcome: TaskOutcome) -> list[Any]:
    """The ``SET`` parameters of ``_write_outcome`` for ``outcome``, up to the history."""
    return [outcome.status.value, outcome.output_data, json_text(outcome.output_raw),
            outcome.error, encode_optional_datetime(outcome.next_retry_at),
            encode_optional_datetime(outcome.finished_at), encode_datetime(outcome.updated_at)]


def _oldest_first(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``RETURNING`` gives no order; the port promises oldest first."""
    return sorted(found, key=lambda row: (row["created_at"], row["id"]))


class SqliteTaskQueue(TaskQueue):
    """The ``TaskQueue`` port on the lease columns of the ``tasks`` table."""

    def __init__(self, database: Database, *, clock: Clock, hints: SqliteWakeUpFeed) -> None:
        self._database = database
        self._clock = clock
        self._hints = hints

    def _announce(self, task_id: TaskId, outcome: TaskOutcome) -> None:
        """A written outcome is a finished task, or a retry: work again."""
        self._hints.publish(finished(task_id) if outcome.status.is_final else WORK)

    def _lease(self, seconds: float) -> tuple[str, str]:
        """The store's now and the end of a lease of ``seconds`` from it, encoded."""
        now = self._clock.now()
        return encode_datetime(now), encode_datetime(now + timedelta(seconds=seconds))

    def _claim_statement(self, *, owner: str, limit: int, lease_seconds: float,
                         task_ids: Sequence[TaskId] | None) -> tuple[str, list[Any]]:
        """The claim's statement and parameters."""
        now, until = self._lease(lease_seconds)
        only = "" if task_ids is None else f"AND t.id IN ({placeholders(task_ids)}) "
        runnable = ("t.status = 'pending' AND (t.next_retry_at IS NULL OR t.next_retry_at <= ?) "
                    f"{only}")
        chosen = [now, *(task_ids or ())]
        return (_CLAIM.format(runnable=runnable),
                [*chosen, limit, *chosen, owner, until, now, now, now, limit])

    async def claim(self, *, owner: str, limit: int, lease_seconds: float,
                    task_ids: Sequence[TaskId] | None = None) -> list[Task]:
        """Move up to ``limit`` runnable tasks to ``running`` under ``owner``'s lease, oldest
        first, within each workflow's ``max_concurrency``; ``tries`` + 1, and ``started_at``
        set on the first attempt only."""
        if limit <= 0 or (task_ids is not None and not task_ids):
            return []
        sql, params = self._claim_statement(owner=owner, limit=limit,
                                            lease_seconds=lease_seconds, task_ids=task_ids)
        claimed = await self._database.write(lambda conn: rows(conn, sql, params), quick=True)
        return [task_from_row(row) for row in _oldest_first(claimed)]

    async def add_claimed(self, task: Task, *, owner: str, lease_seconds: float,
                          target: RunTarget | None = None) -> Task:
        """Insert ``task`` and claim it for ``owner`` in the same transaction when it is
        runnable within its workflow's ``max_concurrency``; the task as stored.
        ``StaleTargetError`` when the catalogue's version is no longer ``target``'s.

        A runnable task of a workflow without a limit is inserted already running, as the
        claim would leave it: one statement, and no index updated twice."""
        now = self._clock.now()
        runnable = task.status is TaskStatus.PENDING and (
            task.next_retry_at is None or task.next_retry_at <= now)
        expected = None if target is None else target.catalogue
        # A target whose catalogue version the transaction finds unchanged has its workflow
        # as stored (every change to a workflow raises the version): no need to look again.
        unlimited = target is not None and target.catalogue is not None and (
            target.workflow.id == task.workflow_id and target.workflow.max_concurrency is None)

        def add_and_claim(conn: sqlite3.Connection) -> Task:
            if expected is not None and catalogue_version(conn) != expected:
                raise StaleTargetError(f"The catalogue changed since workflow "
                                       f"{task.workflow_id}'s run target was read")
            if runnable:
                running = insert_claimed_task(conn, task, owner=owner, now=now,
                                              lease_until=now + timedelta(seconds=lease_seconds),
                                              unlimited=unlimited)
                if running is not None:
                    return running
            added = insert_task(conn, task)
            # The claim's statement only for a task the fast path above did not take.
            sql, params = self._claim_statement(owner=owner, limit=1,
                                                lease_seconds=lease_seconds, task_ids=[task.id])
            claimed = rows(conn, sql, params)
            return task_from_row(claimed[0]) if claimed else added

        stored = await self._database.write(add_and_claim, quick=True)
        if stored.status is TaskStatus.PENDING:
            self._hints.publish(WORK)
        return stored

    async def renew(self, *, owner: str, lease_seconds: float,
                    task_ids: Sequence[TaskId]) -> list[TaskId]:
        """Extend the unexpired leases ``owner`` holds on ``task_ids``; returns the ids still
        held."""
        if not task_ids:
            return []
        now, until = self._lease(lease_seconds)
        sql = ("UPDATE tasks SET lease_expires_at = ? WHERE lease_owner = ? "  # noqa: S608
               "AND status = 'running' AND lease_expires_at >= ? "
               f"AND id IN ({placeholders(task_ids)}) RETURNING id, created_at")
        params = [until, owner, now, *task_ids]
        renewed = await self._database.write(lambda conn: rows(conn, sql, params))
        return [TaskId(row["id"]) for row in _oldest_first(renewed)]

    async def held(self, *, owner: str, task_ids: Sequence[TaskId]) -> list[TaskId]:
        """Which of ``task_ids`` are still running under ``owner``'s unexpired lease, in the
        order asked."""
        if not task_ids:
            return []
        now = encode_datetime(self._clock.now())
        sql = (f"SELECT id FROM tasks WHERE id IN ({placeholders(task_ids)}) "  # noqa: S608
               "AND status = 'running' AND lease_owner = ? AND lease_expires_at >= ?")
        found = await self._database.read(
            lambda conn: conn.execute(sql, [*task_ids, owner, now]).fetchall())
        still = {row[0] for row in found}
        return [task_id for task_id in task_ids if task_id in still]

    async def release(self, task: Task, outcome: TaskOutcome, *, owner: str) -> Task | None:
        """Write an attempt's outcome and clear the lease, only if ``task`` is still running
        under ``owner`` at its attempt; the task as written (``outcome.applied_to(task)``: no
        row read back), or ``None``."""
        written = outcome.applied_to(task)
        params = [*_outcome_values(outcome), attempts_text(written.attempts), task.id,
                  task.tries, owner]

        def release(conn: sqlite3.Connection) -> int:
            return conn.execute(_RELEASE, params).rowcount

        if not await self._database.write(release, quick=True):
            return None
        self._announce(task.id, outcome)
        return written

    async def expired(self, *, limit: int, owners: Sequence[str] = ()) -> list[Task]:
        """Running tasks whose lease ran out by the store's clock, or whose owner is one of
        ``owners``, oldest first."""
        now = encode_datetime(self._clock.now())
        lost, params = _lost_lease(now, owners)
        sql = (f"SELECT * FROM tasks WHERE status = 'running' AND {lost} "  # noqa: S608
               "ORDER BY created_at, id LIMIT ?")
        found = await self._database.read(lambda conn: rows(conn, sql, [*params, limit]))
        return [task_from_row(row) for row in found]

    async def recover(self, task_id: TaskId, outcome: TaskOutcome, *, attempt: int,
                      owners: Sequence[str] = ()) -> bool:
        """Write the outcome of an abandoned attempt, only if the task is still running at
        ``attempt`` and its lease expired (or its owner is one of ``owners``)."""
        now = encode_datetime(self._clock.now())
        lost, condition = _lost_lease(now, owners)
        ended = encode_datetime(outcome.updated_at)
        params = [*_outcome_values(outcome), ended, outcome.error, task_id, attempt, *condition]
        sql = f"{_WRITE_OUTCOME} AND {lost}"

        def recover(conn: sqlite3.Connection) -> bool:
            return bool(conn.execute(sql, params).rowcount == 1)

        written = await self._database.write(recover)
        if written:
            self._announce(task_id, outcome)
        return written


def _lost_lease(now: str, owners: Sequence[str]) -> tuple[str, list[Any]]:
    """The condition "the lease expired before ``now``, or its owner is one of ``owners``"."""
    if not owners:
        return "lease_expires_at < ?", [now]
    return (f"(lease_expires_at < ? OR lease_owner IN ({placeholders(owners)}))",
            [now, *owners])

