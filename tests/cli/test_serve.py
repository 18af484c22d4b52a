"""`spark serve` and `spark worker` as real processes, stopped with SIGTERM; and the server
they run, in process."""

import asyncio
import gc
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import uvicorn
from litestar import Litestar

from spark_adapters.settings import read_dotenv
from spark_cli.serve import spark_server
from tests.processes import SparkProcess, synced_workflow, wait_for
from tests.servers import FakeLangflow
from tests.servers.langflow import SLOW_ID, SLOW_NODE

pytestmark = pytest.mark.slow

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
API_KEY = "cli-serve-test-key-0123456789abcdefghijklmnopqrstuvwxyz"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str, key: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


def _wait_healthy(process: subprocess.Popen[str], base: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stderr.read() if process.stderr else ""
            pytest.fail(f"spark serve exited early:\n{output}")
        try:
            if _get(f"{base}/health") == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail("spark serve did not answer /health in time")


def _stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("spark did not stop within the timeout after SIGTERM")
    return process.returncode, stderr


def _environment(**extra: str) -> dict[str, str]:
    clean = {name: value for name, value in os.environ.items()
             if not name.startswith(("SPARK_", "API_", "AUTOMAGIK_"))}
    return {**clean, "SPARK_LOG_LEVEL": "WARNING", **extra}


@pytest.fixture
def serve(workdir: Path) -> tuple[list[str], int]:
    """The command line of `spark serve` on a free port with a temporary data dir."""
    port = _free_port()
    return ([sys.executable, "-m", "spark_cli", "--data-dir", str(workdir / "data"), "serve",
             "--port", str(port)], port)


def test_serve_answers_with_the_key_and_stops_on_sigterm(
    serve: tuple[list[str], int], workdir: Path
) -> None:
    """With SPARK_API_KEY set, the server answers authenticated requests and SIGTERM stops it
    cleanly with exit status 0."""
    command, port = serve
    process = subprocess.Popen(command, cwd=workdir, env=_environment(SPARK_API_KEY=API_KEY),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(process, base)
        assert _get(f"{base}/api/v1/sources", API_KEY) == 200
        assert _get(f"{base}/api/v1/sources") == 401
    finally:
        started = time.monotonic()
        code, stderr = _stop(process)
    assert code == 0, stderr
    assert time.monotonic() - started < 5
    assert API_KEY not in stderr
    assert not (workdir / ".env").exists()


def test_serve_without_a_key_generates_one_and_prints_it_once(
    serve: tuple[list[str], int], workdir: Path
) -> None:
    """With no key configured, the server generates one, writes it to `.env` (0600), prints it
    once on stderr, and requests with it succeed."""
    command, port = serve
    process = subprocess.Popen(command, cwd=workdir, env=_environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(process, base)
        key = read_dotenv(workdir / ".env")["SPARK_API_KEY"]
        assert (workdir / ".env").stat().st_mode & 0o777 == 0o600
        assert _get(f"{base}/api/v1/sources", key) == 200
        assert _get(f"{base}/api/v1/sources", "not-the-key") == 401
    finally:
        code, stderr = _stop(process)
    assert code == 0, stderr
    assert re.search(rf"SPARK_API_KEY={re.escape(key)}", stderr)
    assert stderr.count(key) == 1


def test_worker_runs_until_sigterm(workdir: Path) -> None:
    """`spark worker` runs without HTTP until SIGTERM, then stops with exit status 0."""
    command = [sys.executable, "-m", "spark_cli", "--data-dir", str(workdir / "data"), "worker",
               "--grace", "1"]
    process = subprocess.Popen(command, cwd=workdir, env=_environment(SPARK_LOG_LEVEL="INFO"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + START_TIMEOUT
    while not (workdir / "data" / "spark.db").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    code, stderr = _stop(process)
    assert code == 0, stderr
    assert "Worker stopped" in stderr


def test_serve_on_a_port_in_use_starts_nothing_and_exits_2(workdir: Path) -> None:
    """`spark serve` on a port something already listens on says so in one line, exits 2,
    and starts nothing: no store, no generated key."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "spark_cli", "--data-dir", str(workdir / "data"),
                   "serve", "--port", str(port)]
        finished = subprocess.run(command, cwd=workdir, env=_environment(), capture_output=True,
                                  text=True, timeout=START_TIMEOUT, check=False)
    assert finished.returncode == 2, finished.stderr
    assert finished.stderr.strip().splitlines() == [
        f"Error: Cannot listen on 127.0.0.1:{port}: already in use. Stop what uses it or "
        "choose another port with --port (or API_PORT)."]
    assert not (workdir / "data").exists()
    assert not (workdir / ".env").exists()


def test_ctrl_c_says_what_the_stop_waits_for_and_a_second_one_stops_at_once(
    workdir: Path, langflow: FakeLangflow
) -> None:
    """The first Ctrl-C during a slow run prints how many runs the stop waits for and for how
    long; a second Ctrl-C interrupts them and the server exits at once, not after the grace."""
    server = SparkProcess(workdir)
    try:
        workflow_id = synced_workflow(server, langflow, SLOW_ID)["id"]
        server.call("POST", f"/api/v1/workflows/{workflow_id}/run",
                    {"input_value": "slow", "tweaks": {SLOW_NODE: {"delay_seconds": 60}}},
                    params={"wait": "false"}, expect=202)
        # The source holding the call open means the worker counts the run as in flight.
        wait_for(lambda: langflow.open_runs == 1, within=START_TIMEOUT,
                 what="the slow run to reach the source")
        server.process.send_signal(signal.SIGINT)
        wait_for(lambda: "Stopping:" in server.output(), within=STOP_TIMEOUT,
                 what="the first Ctrl-C to be answered")
        assert "Stopping: waiting up to 10 s for 1 run in flight." in server.output()
        assert server.process.poll() is None  # still inside its grace period
        started = time.monotonic()
        server.process.send_signal(signal.SIGINT)
        server.process.wait(timeout=STOP_TIMEOUT)
        # Well inside the 10 s grace, with room for a loaded machine to close the store.
        assert time.monotonic() - started < 6
        assert "Stopping now: interrupting 1 run(s) in flight" in server.output()
        assert "Traceback" not in server.output()
    finally:
        server.stop()


async def test_a_started_server_keeps_its_startup_objects_out_of_full_collections() -> None:
    """Once serving, what the process holds until it stops is frozen (``gc.freeze``): a full
    collection no longer scans it, stalling every request in flight, under load."""
    app = Litestar(route_handlers=[])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_config=None)
    server = spark_server(config, app=app, grace=0)
    gc.unfreeze()
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while not (server.started or serving.done()):  # noqa: ASYNC110 - a plain flag
                await asyncio.sleep(0.01)
        assert server.started
        assert gc.get_freeze_count() > 0
    finally:
        server.should_exit = True
        await serving
        gc.unfreeze()  # the rest of the suite collects as usual
