"""The reference every HTTP figure is divided by: a bare Litestar app on uvicorn, served with
the settings ``spark serve`` uses, answering a page of 100 task-shaped rows held in memory.

It has no store, no middleware, no authentication and no per-row conversion, so it is the
most a Spark list page could do on this machine with this framework and server; a ratio near
1 means Spark's own work per request is small. Given a source (``--forward-to`` and
``--forward-key``), ``POST /run/{flow_id}`` is the same for a run: the body passed to the
source's run endpoint through one aiohttp session, as Spark's LangFlow client sends it, and
the source's answer decoded and sent back, with no store, task, worker or retry: the least a
run-now can cost with this framework, server and HTTP client. Given a store as well
(``--record-in``: a PostgreSQL URL, or ``sqlite:///`` and a file's path),
``POST /recorded-run/{flow_id}`` is that run recorded there as a run recorder must: a row
inserted and committed before the source is called, its outcome updated and committed after,
each one statement (a primary key, no other index, trigger or lease), on a connection from a
psycopg pool, or on SQLite's one connection on the event loop with the file in WAL mode and
``synchronous = NORMAL``, as Spark opens its own: the least a run recorded in that store can
cost with this framework, server and driver. It prints its base URL on stdout
once it listens. ``--no-uvloop`` hides uvloop and httptools, as
``SparkProcess(server="asyncio")`` does for Spark, so each server flavour has its own
reference.
"""

import argparse
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

PAGE_PATH = "/page"
RUN_PATH = "/run"
RECORDED_RUN_PATH = "/recorded-run"
FORWARD_TO_ENV = "BENCH_FORWARD_TO"
FORWARD_KEY_ENV = "BENCH_FORWARD_KEY"
RECORD_IN_ENV = "BENCH_RECORD_IN"
RECORD_POOL_SIZE = 10
"""Connections of the recorded run's pool: ``spark serve``'s default pool size."""
RECORD_TABLE = "bench_bare_runs"
ROWS = 100


def build_app(forward_to: str | None = None, forward_key: str | None = None,
              record_in: str | None = None) -> Any:
    """The bare app: ``GET /page`` answers the same page from memory every time; with
    ``forward_to`` (default ``$BENCH_FORWARD_TO``, as granian's factory is called with no
    arguments), ``POST /run/{flow_id}`` forwards a run to that LangFlow, and with
    ``record_in`` too (default ``$BENCH_RECORD_IN``), ``POST /recorded-run/{flow_id}``
    records each run in that PostgreSQL or SQLite file (``sqlite:///`` and its path)."""
    import os

    import msgspec
    from litestar import Litestar, get

    class Row(msgspec.Struct, kw_only=True):
        """A task as Spark's task list shows it."""

        id: str
        workflow_id: str
        schedule_id: str | None
        status: str
        input_data: str
        output_data: str | None
        error: str | None
        tries: int
        max_retries: int
        next_retry_at: datetime | None
        scheduled_for: datetime | None
        timeout: float | None
        session_id: str | None
        tweaks: dict[str, Any] | None
        started_at: datetime | None
        finished_at: datetime | None
        created_at: datetime
        updated_at: datetime

    class PageOut(msgspec.Struct, kw_only=True):
        """Spark's list envelope."""

        items: list[Row]
        total: int
        limit: int
        offset: int
        has_more: bool

    now = datetime(2026, 12, 6, 12, 0, 0, 123456, tzinfo=UTC)
    workflow = str(uuid.UUID(int=1))
    rows = [Row(id=str(uuid.UUID(int=1000 + number)), workflow_id=workflow, schedule_id=None,
                status="completed", input_data="benchmark input",
                output_data="benchmark output", error=None, tries=1, max_retries=3,
                next_retry_at=None, scheduled_for=None, timeout=None, session_id=None,
                tweaks=None, started_at=now, finished_at=now + timedelta(milliseconds=3),
                created_at=now, updated_at=now) for number in range(ROWS)]
    page = PageOut(items=rows, total=1000, limit=ROWS, offset=0, has_more=True)

    @get(PAGE_PATH, sync_to_thread=False)
    def page_handler() -> PageOut:
        """The page, encoded by Litestar as any handler's answer."""
        return page

    forward_to = forward_to or os.environ.get(FORWARD_TO_ENV) or None
    forward_key = forward_key or os.environ.get(FORWARD_KEY_ENV, "")
    handlers: list[Any] = [page_handler]
    lifespan: list[Any] = []
    if forward_to is not None:
        record_in = record_in or os.environ.get(RECORD_IN_ENV) or None
        runs, connections = run_routes(forward_to, forward_key, record_in)
        handlers += runs
        lifespan.append(connections)
    return Litestar(route_handlers=handlers, lifespan=lifespan, logging_config=None,
                    debug=False)


def run_routes(forward_to: str, forward_key: str,
               record_in: str | None) -> tuple[list[Any], Any]:
    """``POST /run/{flow_id}`` (and, with ``record_in``, ``POST /recorded-run/{flow_id}``)
    and the lifespan of what they share: one aiohttp session (and the recording pool)."""
    from contextlib import asynccontextmanager

    import aiohttp
    import msgspec
    from litestar import Litestar, Request, post

    made: dict[str, Any] = {}  # the session (and recorder), made in the server's own loop
    headers = {"x-api-key": forward_key, "Content-Type": "application/json"}

    @asynccontextmanager
    async def connections(app: Litestar) -> Any:
        made["session"] = aiohttp.ClientSession()
        if record_in is not None:
            made["recorder"] = await open_recorder(record_in)
        try:
            yield
        finally:
            await made.pop("session").close()
            if "recorder" in made:
                await made.pop("recorder").close()

    async def forward(flow_id: str, input_value: str) -> bytes:
        """The run sent on to the source as Spark's LangFlow client sends it; its answer."""
        body = msgspec.json.encode({"input_value": input_value, "input_type": "chat",
                                    "output_type": "chat", "session_id": flow_id})
        async with made["session"].post(f"{forward_to}/api/v1/run/{flow_id}?stream=false",
                                        data=body, headers=headers) as answer:
            return bytes(await answer.read())

    @post(RUN_PATH + "/{flow_id:str}", status_code=200)
    async def run_handler(request: Request[Any, Any, Any], flow_id: str) -> Any:
        """The run sent on to the source, its answer decoded and sent back."""
        run = msgspec.json.decode(await request.body())
        return msgspec.json.decode(await forward(flow_id, run.get("input_value", "")))

    @post(RECORDED_RUN_PATH + "/{flow_id:str}", status_code=200)
    async def recorded_run(request: Request[Any, Any, Any], flow_id: str) -> Any:
        """The run recorded: inserted (committed), sent on, its answer stored (committed)
        and sent back."""
        run = msgspec.json.decode(await request.body())
        input_value, run_id = run.get("input_value", ""), uuid.uuid4()
        await made["recorder"].started(run_id, flow_id, input_value)
        raw = await forward(flow_id, input_value)
        await made["recorder"].finished(run_id, raw.decode())
        return msgspec.json.decode(raw)

    return [run_handler] if record_in is None else [run_handler, recorded_run], connections


_RECORD_COLUMNS = ("(id {id} PRIMARY KEY, flow_id text NOT NULL, status text NOT NULL, "
                   "input text NOT NULL, output text, created_at {time} NOT NULL, "
                   "finished_at {time})")
SQLITE_URL = "sqlite:///"


async def open_recorder(url: str) -> "PostgresRecorder | SqliteRecorder":
    """The recorder of the runs of ``POST /recorded-run``: in the SQLite file of a
    ``sqlite:///`` URL, else in the PostgreSQL at ``url``; its table made if missing."""
    if url.startswith(SQLITE_URL):
        return SqliteRecorder(url.removeprefix(SQLITE_URL))
    return await PostgresRecorder.open(url)


class PostgresRecorder:
    """Runs recorded through a psycopg pool of ``RECORD_POOL_SIZE`` autocommit connections."""

    _INSERT = (f"INSERT INTO {RECORD_TABLE} (id, flow_id, status, input, created_at) "
               "VALUES (%s, %s, 'running', %s, now())")
    _UPDATE = (f"UPDATE {RECORD_TABLE} SET status = 'completed', output = %s, "
               "finished_at = now() WHERE id = %s")

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, url: str) -> "PostgresRecorder":
        """An open pool on the PostgreSQL at ``url``."""
        from psycopg_pool import AsyncConnectionPool

        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            url, min_size=RECORD_POOL_SIZE, max_size=RECORD_POOL_SIZE, open=False,
            kwargs={"autocommit": True})
        await pool.open(wait=True)
        async with pool.connection() as conn:
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {RECORD_TABLE} "
                               + _RECORD_COLUMNS.format(id="uuid", time="timestamptz"))
        return cls(pool)

    async def started(self, run_id: uuid.UUID, flow_id: str, input_value: str) -> None:
        """The run stored running, committed."""
        async with self._pool.connection() as conn:
            await conn.execute(self._INSERT, (run_id, flow_id, input_value))

    async def finished(self, run_id: uuid.UUID, output: str) -> None:
        """Its outcome stored, committed."""
        async with self._pool.connection() as conn:
            await conn.execute(self._UPDATE, (output, run_id))

    async def close(self) -> None:
        """Close the pool."""
        await self._pool.close()


class SqliteRecorder:
    """Runs recorded in a SQLite file on one connection used on the event loop, each
    statement its own transaction, the file opened as Spark opens its own (WAL,
    ``synchronous = NORMAL``)."""

    _INSERT = (f"INSERT INTO {RECORD_TABLE} (id, flow_id, status, input, created_at) "
               "VALUES (?, ?, 'running', ?, strftime('%Y-%m-%dT%H:%M:%f', 'now'))")
    _UPDATE = (f"UPDATE {RECORD_TABLE} SET status = 'completed', output = ?, "
               "finished_at = strftime('%Y-%m-%dT%H:%M:%f', 'now') WHERE id = ?")

    def __init__(self, path: str) -> None:
        from spark_adapters.sqlite.connection import connect

        # Spark's own settings, from the function that opens Spark's file; busy_timeout 0, as
        # Spark's writes on the event loop have (nothing else writes this file).
        self._conn = connect(path, busy_timeout_ms=0)
        self._conn.execute(f"CREATE TABLE IF NOT EXISTS {RECORD_TABLE} "
                           + _RECORD_COLUMNS.format(id="text", time="text"))

    async def started(self, run_id: uuid.UUID, flow_id: str, input_value: str) -> None:
        """The run stored running, committed."""
        self._conn.execute(self._INSERT, (str(run_id), flow_id, input_value))

    async def finished(self, run_id: uuid.UUID, output: str) -> None:
        """Its outcome stored, committed."""
        self._conn.execute(self._UPDATE, (output, str(run_id)))

    async def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def main() -> None:
    """Serve on 127.0.0.1 until killed; print the base URL first."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--forward-to", help="the LangFlow that POST /run/{flow_id} forwards to")
    parser.add_argument("--forward-key", help="that LangFlow's API key")
    parser.add_argument("--record-in", help="the PostgreSQL POST /recorded-run/{flow_id} "
                                            "records runs in")
    parser.add_argument("--no-uvloop", action="store_true",
                        help="serve on asyncio and h11, as plain uvicorn does")
    args = parser.parse_args()
    if args.no_uvloop:
        hide_uvloop()
    import uvicorn

    # The settings spark_cli/serve.py gives uvicorn (log level WARNING, as the bench sets).
    config = uvicorn.Config(build_app(args.forward_to, args.forward_key, args.record_in),
                            host="127.0.0.1",
                            port=args.port, log_level="warning", log_config=None,
                            lifespan="on")
    server = uvicorn.Server(config)
    print(f"http://127.0.0.1:{args.port}", flush=True)
    server.run()


def hide_uvloop() -> None:
    """Make uvloop and httptools unimportable, so uvicorn's ``auto`` picks asyncio and h11."""
    sys.modules["uvloop"] = None  # type: ignore[assignment]
    sys.modules["httptools"] = None  # type: ignore[assignment]


if __name__ == "__main__":
    main()
