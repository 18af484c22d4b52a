"""A node whose PostgreSQL goes away mid-run: `/health` says so, nothing is lost, and it
recovers by itself when the database is back.

The node reaches PostgreSQL through a loopback TCP proxy that the test can cut (every open
connection reset, new ones refused) and restore, as a network partition or a database restart
would look from the node.
"""

import asyncio
import contextlib
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.processes import SparkProcess, synced_workflow, wait_for
from tests.servers import FakeLangflow
from tests.servers.langflow import SLOW_ID, SLOW_NODE

pytestmark = pytest.mark.slow


class CuttableProxy:
    """A TCP proxy on loopback, in its own thread, that forwards to ``target`` until cut."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.cut_off = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def __enter__(self) -> "CuttableProxy":
        self._thread.start()
        self._call(self._start)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._call(self._stop)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def cut(self) -> None:
        """Reset every open connection and refuse new ones."""
        self._call(self._cut)

    def restore(self) -> None:
        """Forward new connections again."""
        self.cut_off = False

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine(), self._loop).result(timeout=10)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        await self._cut()
        if self._server is not None:
            self._server.close()

    async def _cut(self) -> None:
        self.cut_off = True
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update({writer, upstream_writer})
        await asyncio.gather(self._pipe(reader, upstream_writer),
                             self._pipe(upstream_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._writers.discard(writer)


@pytest.fixture
def proxied_url(postgres_url: str) -> Iterator[tuple[str, CuttableProxy]]:
    """The test schema's URL, reached through a cuttable proxy."""
    parts = urllib.parse.urlsplit(postgres_url)
    with CuttableProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        user = f"{parts.username}@" if parts.username else ""
        yield urllib.parse.urlunsplit(
            parts._replace(netloc=f"{user}127.0.0.1:{proxy.port}")), proxy


def _health(node: SparkProcess) -> str:
    status, body = node.request("GET", "/health")
    return str(body["status"]) if status == 200 else f"http {status}"


def test_a_run_in_flight_survives_a_database_outage_and_health_tells_the_story(
    tmp_path: Path, proxied_url: tuple[str, CuttableProxy], langflow: FakeLangflow
) -> None:
    """Cut the database while a run is in flight: `/health` turns `degraded` and API calls
    answer 503; the run's answer arrives during the outage and is kept; once the database is
    back the node is `healthy` again on its own and the task is `completed` with that answer."""
    url, proxy = proxied_url
    node = SparkProcess(tmp_path, env={"SPARK_DATABASE_URL": url,
                                       "SPARK_ENCRYPTION_KEY": "outage-test-passphrase"})
    try:
        workflow = synced_workflow(node, langflow, SLOW_ID)
        task = node.call("POST", f"/api/v1/workflows/{workflow['id']}/run",
                         {"input_value": "through the outage",
                          "tweaks": {SLOW_NODE: {"delay_seconds": 2}}},
                         params={"wait": "false"}, expect=202)
        wait_for(lambda: langflow.open_runs == 1, within=15, what="the source to get the run")
        proxy.cut()
        wait_for(lambda: _health(node) == "degraded", within=10, what="/health to say degraded")
        status, body = node.request("GET", "/api/v1/tasks")
        assert status == 503, body
        wait_for(lambda: langflow.open_runs == 0, within=10, what="the source to answer")
        time.sleep(1)  # the answer is now only in the node's memory
        proxy.restore()
        wait_for(lambda: _health(node) == "healthy", within=15, what="/health to recover")
        done = wait_for(lambda: (t if (t := node.call("GET", f"/api/v1/tasks/{task['id']}"))
                                 ["status"] != "running" else None),
                        within=20, what="the kept outcome to be written")
        assert (done["status"], done["output_data"], done["tries"]) == (
            "completed", "through the outage", 1)
    finally:
        node.stop()
