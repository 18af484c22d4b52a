"""Real processes for the tests that go through the whole stack: `spark serve` subprocesses on a
temporary data dir, and loopback fakes serving from a background thread.

The tests using them are synchronous: the server is a subprocess, a fake serves from its own
event loop in a daemon thread, and HTTP calls use ``urllib``. Every wait is a bounded poll with
a generous deadline: the machine may be slow and shared.

The fixtures ``servers`` and ``langflow`` are defined once here; a package's conftest imports
the ones it offers.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

import pytest

from tests.servers import LANGFLOW_KEY, FakeLangflow, unused_port
from tests.servers.base import FakeServer

API_KEY = "process-test-key-0123456789abcdefghijklmnopqrstuvwxyz"
"""The key every `spark serve` started here accepts."""
AUTH = {"X-API-Key": API_KEY}
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
REQUEST_TIMEOUT = 30.0
POLL_SECONDS = 0.1

T = TypeVar("T")
S = TypeVar("S", bound=FakeServer)

free_port = unused_port
"""A loopback port nothing listens on right now (``tests.servers.unused_port``, not a copy)."""


def wait_for(probe: Callable[[], T | None], *, within: float, what: str) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``within`` seconds saying
    ``what`` was awaited."""
    deadline = time.monotonic() + within
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within:g} s waiting for {what}")
        time.sleep(POLL_SECONDS)


class SparkProcess:
    """One `spark serve` subprocess with ``workdir`` as its cwd and ``workdir/data`` as its data
    dir, answering /health; ``env`` adds settings such as ``SPARK_LEASE_SECONDS``.

    Its stderr goes to the log file ``workdir/log_name``, so a chatty server can never block on
    a full pipe. Starting another one on the same ``workdir`` is a restart on the same data.
    """

    def __init__(self, workdir: Path, log_name: str = "serve.log",
                 env: Mapping[str, str] | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = workdir / log_name
        clean = {name: value for name, value in os.environ.items()
                 if not name.startswith(("SPARK_", "API_", "AUTOMAGIK_"))}
        environment = {**clean, "SPARK_API_KEY": API_KEY, "SPARK_LOG_LEVEL": "WARNING",
                       **(env or {})}
        command = [sys.executable, "-m", "spark_cli", "--data-dir", str(workdir / "data"),
                   "serve", "--port", str(self.port)]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, cwd=workdir, env=environment,
                                            stdout=subprocess.DEVNULL, stderr=log)
        wait_for(self._healthy, within=START_TIMEOUT, what="spark serve to answer /health")

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"spark serve exited early:\n{self.output()}")
        try:
            with urllib.request.urlopen(f"{self.base}/health", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def output(self) -> str:
        """What the server logged so far."""
        return self.log.read_text(errors="replace")

    def request(self, method: str, path: str, body: Any = None,
                params: dict[str, str] | None = None) -> tuple[int, Any]:
        """Call the API with the key; (status, decoded JSON body)."""
        url = f"{self.base}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers={
            **AUTH, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def call(self, method: str, path: str, body: Any = None, *, expect: int = 200,
             params: dict[str, str] | None = None) -> Any:
        """``request`` that fails the test unless the status is ``expect``."""
        status, answer = self.request(method, path, body, params)
        assert status == expect, f"{method} {path} -> {status}: {answer}"
        return answer

    def tasks(self, **filters: str) -> list[dict[str, Any]]:
        """Every task (all pages), newest first."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.call("GET", "/api/v1/tasks",
                             params={**filters, "limit": "100", "offset": str(len(found))})
            found.extend(page["items"])
            if not page["has_more"]:
                return found

    def kill(self) -> None:
        """SIGKILL: no shutdown and no cleanup, as a crash or a power loss leaves things."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)

    def terminate(self, *, within: float) -> int:
        """SIGTERM and wait up to ``within`` seconds for the exit status."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"spark serve did not stop within {within:g} s of SIGTERM")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop in time (test clean-up)."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()


class Servers:
    """Starts `spark serve` processes on one data dir (a later one is a restart on the same
    data); on exit stops whatever is left."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[SparkProcess] = []

    def start(self, **env: str) -> SparkProcess:
        """A new server on the shared data dir, answering /health; ``env`` adds settings."""
        process = SparkProcess(self.workdir, f"serve-{len(self.started) + 1}.log", env)
        self.started.append(process)
        return process

    def close(self) -> None:
        """Stop every process still running."""
        for process in self.started:
            process.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ServerThread(Generic[S]):
    """A fake server serving from its own event loop in a daemon thread, for callers that are
    synchronous or run their own loop (``CliRunner``, a subprocess under test)."""

    def __init__(self, server: S) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def call(self, coroutine: Callable[[], Any]) -> Any:
        """Run ``coroutine()`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine(), self.loop).result(timeout=10)

    def __enter__(self) -> S:
        self.thread.start()
        self.call(self.server.start)
        return self.server

    def __exit__(self, *exc_info: object) -> None:
        self.call(self.server.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    """A factory of `spark serve` processes sharing ``tmp_path/data``."""
    with Servers(tmp_path) as started:
        yield started


@pytest.fixture
def langflow() -> Iterator[FakeLangflow]:
    """A fake LangFlow 1.13 on loopback, serving from its own thread, key ``LANGFLOW_KEY``."""
    with ServerThread(FakeLangflow(api_key=LANGFLOW_KEY)) as server:
        yield server


def synced_workflow(server: SparkProcess, langflow: FakeLangflow,
                    flow_id: str) -> dict[str, Any]:
    """Add ``langflow`` as a source through the REST API, sync ``flow_id``; the workflow."""
    source = server.call("POST", "/api/v1/sources", {
        "name": "lf", "source_type": "langflow", "url": langflow.url,
        "api_key": LANGFLOW_KEY}, expect=201)
    workflow: dict[str, Any] = server.call(
        "POST", f"/api/v1/workflows/sync/{flow_id}", params={"source_id": source["id"]})
    return workflow


__all__ = ["API_KEY", "AUTH", "ServerThread", "Servers", "SparkProcess", "free_port",
           "langflow", "servers", "synced_workflow", "wait_for"]
