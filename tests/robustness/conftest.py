"""Real `spark serve` processes with tunable settings, a loopback LangFlow, and the figures the
robustness tests report.

Every wait is a bounded poll with a generous deadline: the machine may be slow and shared.
Figures are printed as one ``ROBUSTNESS <name>: key=value …`` line each, so they show in
``pytest -s`` output and can be quoted (grep for ``ROBUSTNESS``).
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.cli.conftest import ServerThread
from tests.servers import LANGFLOW_KEY, FakeLangflow, unused_port

API_KEY = "robustness-test-key-0123456789abcdefghijklmnopqrstuvwxyz"
AUTH = {"X-API-Key": API_KEY}
START_TIMEOUT = 30.0
POLL_SECONDS = 0.2
FINAL = ("completed", "failed", "cancelled")

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], *, within: float, what: str) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within:g} s waiting for {what}")
        time.sleep(POLL_SECONDS)


def report(name: str, **figures: object) -> str:
    """Print one quotable line of figures (visible with ``pytest -s``) and return it."""
    line = f"ROBUSTNESS {name}: " + " ".join(f"{key}={value}" for key, value in figures.items())
    print(f"\n{line}", flush=True)
    return line


class ServeProcess:
    """One `spark serve` subprocess on ``workdir/data``; ``env`` adds settings such as
    ``SPARK_LEASE_SECONDS``. Its stderr goes to a log file, so it can never block on a pipe."""

    def __init__(self, workdir: Path, log_name: str, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.port = unused_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = workdir / log_name
        clean = {name: value for name, value in os.environ.items()
                 if not name.startswith(("SPARK_", "API_", "AUTOMAGIK_"))}
        environment = {**clean, "SPARK_API_KEY": API_KEY, "SPARK_LOG_LEVEL": "WARNING", **env}
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
            with urllib.request.urlopen(request, timeout=30) as response:
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
        self.process.wait(timeout=15)

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
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


class Servers:
    """Starts `spark serve` processes on one data dir; stops whatever is left at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[ServeProcess] = []

    def start(self, **env: str) -> ServeProcess:
        """A new server on the shared data dir, answering /health."""
        process = ServeProcess(self.workdir, f"serve-{len(self.started) + 1}.log", env)
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
def threaded_langflow() -> Iterator[FakeLangflow]:
    """A fake LangFlow 1.13 serving from its own thread (for subprocess servers)."""
    server = FakeLangflow(api_key=LANGFLOW_KEY)
    with ServerThread(server):
        yield server


def synced_workflow(server: ServeProcess, langflow: FakeLangflow, flow_id: str) -> str:
    """Add ``langflow`` as a source, sync ``flow_id`` and return the workflow id."""
    source = server.call("POST", "/api/v1/sources", {
        "name": "lf", "source_type": "langflow", "url": langflow.url,
        "api_key": LANGFLOW_KEY}, expect=201)
    workflow = server.call("POST", f"/api/v1/workflows/sync/{flow_id}",
                           params={"source_id": source["id"]})
    return str(workflow["id"])


__all__ = ["API_KEY", "AUTH", "FINAL", "ServeProcess", "Servers", "report",
           "synced_workflow", "wait_for"]
