"""Real `spark serve` processes on a temporary data dir, and a loopback LangFlow they call.

The tests are synchronous: the server is a subprocess, the fake LangFlow serves from its own
event loop in a background thread (``ServerThread`` from the CLI tests), and HTTP calls use
``urllib``. Every wait is a bounded poll; nothing assumes a fast machine.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.cli.conftest import ServerThread
from tests.servers import LANGFLOW_KEY, FakeLangflow

API_KEY = "system-test-key-0123456789abcdefghijklmnopqrstuvwxyz"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
POLL_SECONDS = 0.1

T = TypeVar("T")


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_time(text: str) -> datetime:
    """An API datetime (ISO-8601 with offset)."""
    return datetime.fromisoformat(text)


def wait_for(probe: Callable[[], T | None], *, within: float, what: str) -> T:
    """Poll ``probe`` until it returns something other than None/False; fail after ``within``
    seconds saying ``what`` was awaited."""
    deadline = time.monotonic() + within
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within:g} s waiting for {what}")
        time.sleep(POLL_SECONDS)


class SparkProcess:
    """One `spark serve` subprocess on ``data_dir``; its stderr goes to a log file so that a
    chatty server can never block on a full pipe."""

    def __init__(self, workdir: Path, log_name: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = workdir / log_name
        clean = {name: value for name, value in os.environ.items()
                 if not name.startswith(("SPARK_", "API_", "AUTOMAGIK_"))}
        env = {**clean, "SPARK_API_KEY": API_KEY, "SPARK_LOG_LEVEL": "WARNING"}
        command = [sys.executable, "-m", "spark_cli", "--data-dir", str(workdir / "data"),
                   "serve", "--port", str(self.port)]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, cwd=workdir, env=env,
                                            stdout=subprocess.DEVNULL, stderr=log)
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        def healthy() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"spark serve exited early:\n{self.output()}")
            try:
                with urllib.request.urlopen(f"{self.base}/health", timeout=2) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        wait_for(healthy, within=START_TIMEOUT, what="spark serve to answer /health")

    def output(self) -> str:
        """What the server logged so far."""
        return self.log.read_text(errors="replace")

    def request(self, method: str, path: str, body: Any = None,
                params: dict[str, str] | None = None) -> tuple[int, Any]:
        """Call the API with the key; returns (status, decoded JSON body)."""
        url = f"{self.base}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers={
            "X-API-Key": API_KEY, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def call(self, method: str, path: str, body: Any = None, *, expect: int = 200,
             params: dict[str, str] | None = None) -> Any:
        """``request`` that fails the test unless the status is ``expect``."""
        status, answer = self.request(method, path, body, params)
        assert status == expect, f"{method} {path} -> {status}: {answer}"
        return answer

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as a crash or power loss would leave things."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop in time."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()


class Servers:
    """Starts `spark serve` processes on one data dir and stops whatever is left at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[SparkProcess] = []

    def start(self) -> SparkProcess:
        """A new server process on the shared data dir, answering /health."""
        process = SparkProcess(self.workdir, f"serve-{len(self.started) + 1}.log")
        self.started.append(process)
        return process

    def close(self) -> None:
        """Stop every process still running."""
        for process in self.started:
            process.stop()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    """A factory of `spark serve` processes sharing ``tmp_path/data``."""
    started = Servers(tmp_path)
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def langflow() -> Iterator[FakeLangflow]:
    """A fake LangFlow 1.13 on loopback, serving from its own thread, key ``LANGFLOW_KEY``."""
    server = FakeLangflow(api_key=LANGFLOW_KEY)
    with ServerThread(server):
        yield server


def echo_workflow(server: SparkProcess, langflow: FakeLangflow, flow_id: str) -> dict[str, Any]:
    """Add ``langflow`` as a source through the API and sync ``flow_id``; the workflow."""
    source = server.call("POST", "/api/v1/sources", {
        "name": "lf", "source_type": "langflow", "url": langflow.url,
        "api_key": LANGFLOW_KEY}, expect=201)
    workflow: dict[str, Any] = server.call(
        "POST", f"/api/v1/workflows/sync/{flow_id}", params={"source_id": source["id"]})
    return workflow


__all__ = ["API_KEY", "Servers", "SparkProcess", "echo_workflow", "parse_time", "wait_for"]
