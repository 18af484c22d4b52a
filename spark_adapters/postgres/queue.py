"""``PostgresTaskQueue``: leases on running tasks, judged by the database's clock.

A claim is one transaction: a lock on the limited workflows that have runnable tasks, then one
statement: a ``FOR UPDATE SKIP LOCKED`` pick of the oldest runnable tasks of unlimited
workflows plus the free slots of the locked ones, materialised so the planner cannot update
more rows than the limit, and the update that leases them. Every later write of the attempt is
fenced by owner *and* attempt (``tries``).
"""

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from spark_adapters.postgres.connection import NOW, Conn, Database, fetch_all, fetch_one
from spark_adapters.postgres.rounds import Rounds
from spark_adapters.postgres.rows import as_stored, json_text, param, text_param
from spark_adapters.postgres.tasks import (
    attempt_time,
    claimed_columns,
    insert_returning,
    insert_running,
    task_from_row,
)
from spark_core.errors import StaleTargetError
from spark_core.models import Task, TaskId, TaskStatus
from spark_core.ports import RunTarget, TaskOutcome

_LEASE_UNTIL = NOW + " + make_interval(secs => %(lease)s)"

_RUNNABLE = (
    "t.status = 'pending' AND (t.next_retry_at IS NULL OR t.next_retry_at <= " + NOW + ") {only}"
)

# The limited workflows with runnable tasks, locked (in id order, so claimers cannot deadlock)
# until the claim commits: the claim that follows counts their running tasks in a snapshot
# taken after the lock, so two claimers never both take a workflow's last slot. NO KEY UPDATE
# leaves inserts of their tasks (a foreign key's KEY SHARE) unblocked.
_LOCK_LIMITED = (
    "SELECT w.id FROM workflows w WHERE w.max_concurrency IS NOT NULL"  # noqa: S608 - constants
    " AND EXISTS (SELECT 1 FROM tasks t WHERE t.workflow_id = w.id AND " + _RUNNABLE + ")"
    " ORDER BY w.id FOR NO KEY UPDATE OF w"
)

# Unlimited workflows keep the fast path: a FOR UPDATE SKIP LOCKED pick of the oldest runnable
# tasks. A locked limited workflow offers its oldest runnable tasks up to its free slots; only
# its lock holder can claim them, so they need no row locks (the update re-checks the status).
_CLAIM = (
    "WITH fast AS MATERIALIZED ("  # noqa: S608 - constants only; values are parameters
    " SELECT t.id, t.created_at FROM tasks t WHERE " + _RUNNABLE +
    " AND t.workflow_id NOT IN (SELECT id FROM workflows WHERE max_concurrency IS NOT NULL)"
    " ORDER BY t.created_at, t.id LIMIT %(limit)s FOR UPDATE SKIP LOCKED), "
    "limited AS MATERIALIZED ("
    " SELECT w.id, w.max_concurrency - (SELECT count(*) FROM tasks r"
    " WHERE r.workflow_id = w.id AND r.status = 'running') AS free"
    " FROM workflows w WHERE w.id = ANY(%(locked)s::text[])), "
    "queued AS MATERIALIZED ("
    " SELECT q.id, q.created_at FROM (SELECT t.id, t.created_at, l.free, row_number() OVER"
    " (PARTITION BY t.workflow_id ORDER BY t.created_at, t.id) AS position"
    " FROM tasks t JOIN limited l ON l.id = t.workflow_id WHERE l.free > 0 AND " + _RUNNABLE +
    ") q WHERE q.position <= q.free), "
    "picked AS MATERIALIZED ("
    " SELECT id FROM (SELECT * FROM fast UNION ALL SELECT * FROM queued) c"
    " ORDER BY created_at, id LIMIT %(limit)s) "
    "UPDATE tasks t SET lease_owner = %(owner)s, lease_expires_at = " + _LEASE_UNTIL + ", "
    + ", ".join(f"{name} = {value}" for name, value in claimed_columns(
        tries="t.tries", started_at="t.started_at", attempts="t.attempts").items())
    + " FROM picked WHERE t.id = picked.id AND t.status = 'pending' RETURNING t.*"
)
_AMONG = "AND t.id = ANY(%(ids)s::text[])"
_CLAIM_ANY = _CLAIM.format(only="")
_CLAIM_AMONG = _CLAIM.format(only=_AMONG)
_LOCK_LIMITED_ANY = _LOCK_LIMITED.format(only="")
_LOCK_LIMITED_AMONG = _LOCK_LIMITED.format(only=_AMONG)

_RENEW = (
    "UPDATE tasks SET lease_expires_at = " + _LEASE_UNTIL + " "  # noqa: S608 - constants only
    "WHERE status = 'running' AND lease_owner = %(owner)s"
    " AND lease_expires_at >= " + NOW + " AND id = ANY(%(ids)s::text[]) RETURNING id, created_at"
)

_HELD = (
    "SELECT id FROM tasks WHERE id = ANY(%(ids)s::text[]) AND status = 'running'"  # noqa: S608 - constants only
    " AND lease_owner = %(owner)s AND lease_expires_at >= " + NOW
)

_ABANDONED = "(lease_expires_at < " + NOW + " OR lease_owner = ANY(%(owners)s::text[]))"

def _outcome_columns(value: Callable[[str], str], row: str = "") -> str:
    """What an outcome's write sets, each value as ``value(name)`` gives it (a parameter, or
    a column of the rows written together); ``row``, the updated table's alias and a dot.
    The attempt ends where the outcome is written (a task running since before migration 2
    has no entry to close)."""
    return (f"status = {value('status')}, output_data = {value('output_data')},"
            f" output_raw = {value('output_raw')}::jsonb, error = {value('error')},"
            f" next_retry_at = {value('next_retry_at')}, finished_at = {value('finished_at')},"
            f" updated_at = {value('updated_at')}, lease_owner = NULL, lease_expires_at = NULL,"
            f" attempts = CASE WHEN jsonb_array_length({row}attempts) > 0 THEN jsonb_set("
            f"jsonb_set({row}attempts, '{{-1,finished_at}}', to_jsonb({value('ended')}::text)),"
            f" '{{-1,error}}', coalesce(to_jsonb({value('error')}::text), 'null'::jsonb))"
            f" ELSE {row}attempts END")


def _outcome_hint(value: Callable[[str], str], row: str = "") -> str:
    """The hint an outcome's write sends to every node: a task's end ('finished') only when a
    process waits for it without running it (``watch_end``), since the worker here announces
    it to its own waiters."""
    hint = value("hint")
    return (f"spark_notify(CASE WHEN {row}awaited OR {hint} <> 'finished' THEN {hint} END,"
            f" {row}id) AS hint")


def _parameter(name: str) -> str:
    return f"%({name})s"


def _one_outcome(fence: str) -> str:
    """One outcome's write, if the task is still running at the attempt and ``fence`` holds."""
    return (f"UPDATE tasks SET {_outcome_columns(_parameter)} "  # noqa: S608 - constants only
            f"WHERE id = %(id)s AND status = 'running' AND tries = %(attempt)s AND {fence} "
            f"RETURNING {_outcome_hint(_parameter)}")


_RELEASE = _one_outcome("lease_owner = %(owner)s")
_RECOVER = _one_outcome(_ABANDONED)

_RELEASED_COLUMNS = {
    "id": "text", "attempt": "int", "owner": "text", "status": "text", "output_data": "text",
    "output_raw": "text", "error": "text", "next_retry_at": "timestamptz",
    "finished_at": "timestamptz", "updated_at": "timestamptz", "ended": "text", "hint": "text",
}
"""The parameters of a release, and their types as the rounds' statement reads them."""
# Several outcomes in one statement (``Rounds``): each row as _RELEASE would write it. The rows
# go as one JSON array of objects (one text parameter), not as an array parameter per column:
# psycopg builds array parameters element by element in Python, which cost the node more than
# the rest of the statement (py-spy, 16 runs at a time).
_RELEASE_MANY = (
    f"UPDATE tasks t SET {_outcome_columns(lambda name: f'v.{name}', 't.')} "  # noqa: S608 - constants only
    "FROM json_to_recordset(%(rows)s::json) AS v("
    + ", ".join(f"{name} {kind}" for name, kind in _RELEASED_COLUMNS.items()) + ") "
    "WHERE t.id = v.id AND t.status = 'running' AND t.tries = v.attempt"
    " AND t.lease_owner = v.owner "
    f"RETURNING t.id, {_outcome_hint(lambda name: f'v.{name}', 't.')}"
)

_EXPIRED = (
    "SELECT * FROM tasks WHERE status = 'running' AND " + _ABANDONED +  # noqa: S608
    " ORDER BY created_at, id LIMIT %(limit)s"
)


def stored_outcome(outcome: TaskOutcome) -> tuple[TaskOutcome, str | None]:
    """``outcome`` as PostgreSQL keeps it (text and jsonb refuse NUL characters: U+FFFD
    instead), and its raw answer as JSON text; ``outcome`` itself when it holds no NUL."""
    raw = json_text(outcome.output_raw)
    data, error = text_param(outcome.output_data), text_param(outcome.error)
    kept = as_stored(outcome.output_raw, raw)
    if data is outcome.output_data and error is outcome.error and kept is outcome.output_raw:
        return outcome, raw
    return msgspec.structs.replace(outcome, output_data=data, error=error,
                                   output_raw=kept), raw


def _outcome_params(task_id: str, outcome: TaskOutcome, attempt: int,
                    raw: str | None) -> dict[str, Any]:
    """The parameters of an outcome's write (``outcome`` as stored, ``raw`` its answer as
    JSON text: ``stored_outcome``)."""
    if outcome.status.is_final:
        hint: str | None = "finished"
    elif outcome.status is TaskStatus.PENDING and outcome.next_retry_at is None:
        hint = "work"
    else:
        hint = None
    return {
        "id": task_id, "attempt": attempt, "hint": hint, "status": outcome.status.value,
        "output_data": outcome.output_data, "output_raw": raw, "error": outcome.error,
        "next_retry_at": param(outcome.next_retry_at),
        "finished_at": param(outcome.finished_at), "updated_at": param(outcome.updated_at),
        "ended": attempt_time(outcome.updated_at),
    }


_Release = tuple[Task, TaskOutcome, str | None, str]
"""A release to write: the task as claimed, its outcome as stored and raw answer as JSON text
(``stored_outcome``), and the owner."""

_HINT_WORK = "SELECT spark_notify('work', %(id)s) AS hint"
_CATALOGUE_VERSION = "SELECT version FROM catalogue_version"


async def _claim_in(conn: Conn, query: str, lock: str, params: dict[str, Any]) -> list[Task]:
    """The claim inside the caller's transaction: lock the limited workflows concerned, then
    lease the picked tasks."""
    params["locked"] = [row["id"] for row in await fetch_all(conn, lock, params)]
    return [task_from_row(row) for row in await fetch_all(conn, query, params)]


def _limit(limit: int) -> int:
    return min(max(limit, 0), 2**63 - 1)


class PostgresTaskQueue:
    """The ``TaskQueue`` port on the ``tasks`` table's lease columns."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._releases: Rounds[_Release, bool] = Rounds(self._release_round,
                                                        name="spark-pg-releases")

    async def claim(
        self, *, owner: str, limit: int, lease_seconds: float,
        task_ids: Sequence[TaskId] | None = None,
    ) -> list[Task]:
        """Move up to ``limit`` runnable tasks to ``running`` under ``owner``'s lease, oldest
        first, within each workflow's ``max_concurrency``; two claimers never get the same
        task, nor together exceed a limit."""
        if limit <= 0 or (task_ids is not None and not task_ids):
            return []
        params = {"owner": owner, "limit": _limit(limit), "lease": float(lease_seconds),
                  "now": self._db.now()}
        query, lock = _CLAIM_ANY, _LOCK_LIMITED_ANY
        if task_ids is not None:
            query, lock, params["ids"] = _CLAIM_AMONG, _LOCK_LIMITED_AMONG, list(task_ids)
        async with self._db.transaction() as conn:
            claimed = await _claim_in(conn, query, lock, params)
        return sorted(claimed, key=lambda task: (task.created_at, task.id))

    async def add_claimed(self, task: Task, *, owner: str, lease_seconds: float,
                          target: RunTarget | None = None) -> Task:
        """Insert ``task`` and claim it for ``owner`` in the same transaction when it is
        runnable within its workflow's ``max_concurrency``; the task as stored. Only a task
        left pending is hinted as work to the other nodes. ``StaleTargetError`` when the
        catalogue's version is no longer ``target``'s.

        A runnable task of a workflow without a limit is inserted already running in one
        statement (one round trip instead of five), which also checks the catalogue's
        version; otherwise, or when that statement inserted nothing, version check, insert,
        lock and claim share a transaction, as a claim's lock and count do."""
        catalogue = None if target is None else target.catalogue
        if task.status is TaskStatus.PENDING and task.next_retry_at is None:
            async with self._db.connection() as conn:  # one statement: its own transaction
                running = await insert_running(conn, task, owner=owner,
                                               lease_seconds=lease_seconds, now=self._db.now(),
                                               catalogue=catalogue)
            if running is not None:
                return running
        params = {"owner": owner, "limit": 1, "lease": float(lease_seconds),
                  "now": self._db.now(), "ids": [task.id]}
        async with self._db.transaction() as conn:
            if catalogue is not None and await fetch_one(
                    conn, _CATALOGUE_VERSION) != {"version": catalogue}:
                raise StaleTargetError(f"The catalogue changed since workflow "
                                       f"{task.workflow_id}'s run target was read")
            [added] = await insert_returning(conn, [task], skip_taken_slots=False,
                                             hinted=False)
            claimed = await _claim_in(conn, _CLAIM_AMONG, _LOCK_LIMITED_AMONG, params)
            if claimed:
                return claimed[0]
            await fetch_all(conn, _HINT_WORK, {"id": task.id})
            return task_from_row(added)

    async def renew(self, *, owner: str, lease_seconds: float,
                    task_ids: Sequence[TaskId]) -> list[TaskId]:
        """Extend the unexpired leases ``owner`` holds on ``task_ids``; returns the ids still
        held."""
        if not task_ids:
            return []
        async with self._db.connection() as conn:
            renewed = await fetch_all(conn, _RENEW, {
                "owner": owner, "lease": float(lease_seconds), "now": self._db.now(),
                "ids": list(task_ids)})
        renewed.sort(key=lambda row: (row["created_at"], row["id"]))
        return [TaskId(row["id"]) for row in renewed]

    async def held(self, *, owner: str, task_ids: Sequence[TaskId]) -> list[TaskId]:
        """Which of ``task_ids`` are still running under ``owner``'s unexpired lease."""
        if not task_ids:
            return []
        async with self._db.connection() as conn:
            found = await fetch_all(
                conn, _HELD, {"ids": list(task_ids), "owner": owner, "now": self._db.now()})
        held = {row["id"] for row in found}
        return [task_id for task_id in task_ids if task_id in held]

    async def release(self, task: Task, outcome: TaskOutcome, *, owner: str) -> Task | None:
        """Write an attempt's outcome and clear the lease, only if ``task`` is still running
        under ``owner`` at its attempt. Returns the task as written (the outcome as stored,
        applied to ``task``: no row read back), or ``None``. Outcomes released together are
        written in one statement (``Rounds``)."""
        stored, raw = stored_outcome(outcome)
        written = await self._releases.submit((task, stored, raw, owner))
        return stored.applied_to(task) if written else None

    async def _release_round(self, releases: list[_Release]) -> list[bool]:
        """Write each outcome as ``release`` says, in one statement: whether each was written.
        Runs ending together (under load) share one round trip and one commit."""
        rows = [{**_outcome_params(task.id, outcome, task.tries, raw), "owner": owner}
                for task, outcome, raw, owner in releases]
        async with self._db.connection() as conn:
            if len(rows) == 1:
                return [bool(await fetch_all(conn, _RELEASE, rows[0]))]
            found = await fetch_all(conn, _RELEASE_MANY, {"rows": json_text(rows)})
        written = {row["id"] for row in found}
        return [release[0].id in written for release in releases]

    async def expired(self, *, limit: int, owners: Sequence[str] = ()) -> list[Task]:
        """Running tasks whose lease ran out by the store's clock, or whose owner is one of
        ``owners``, oldest first."""
        async with self._db.connection() as conn:
            found = await fetch_all(conn, _EXPIRED, {
                "limit": _limit(limit), "owners": list(owners), "now": self._db.now()})
        return [task_from_row(row) for row in found]

    async def recover(
        self, task_id: TaskId, outcome: TaskOutcome, *, attempt: int,
        owners: Sequence[str] = (),
    ) -> bool:
        """Write the outcome of an abandoned attempt, only if the task is still running at
        ``attempt`` and its lease has expired (or its owner is one of ``owners``)."""
        stored, raw = stored_outcome(outcome)
        params = {**_outcome_params(task_id, stored, attempt, raw), "owners": list(owners),
                  "now": self._db.now()}
        async with self._db.connection() as conn:
            return bool(await fetch_all(conn, _RECOVER, params))
