"""Starting and stopping the processes under test: the fake LangFlow and ``spark serve`` (one
node, or N nodes sharing one database)."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.baseline import FORWARD_KEY_ENV, FORWARD_TO_ENV, RECORD_IN_ENV
from bench.fake_langflow import API_KEY as LANGFLOW_KEY

SPARK_KEY = "bench-spark-key-0123456789abcdefghijklmnopqrstuvwxyz"
HEALTH_TIMEOUT = 30.0
HIDE_UVLOOP = "import sys; sys.modules['uvloop'] = sys.modules['httptools'] = None; "
"""Makes uvloop and httptools unimportable, so uvicorn's ``auto`` serves on asyncio and h11
(``server="asyncio"``): plain uvicorn, for comparing with ``uvicorn[standard]``."""
SERVERS = ("auto", "asyncio", "granian")
"""What serves Spark and the bare page: ``spark serve``'s own uvicorn (``auto``: uvloop and
httptools), plain uvicorn (``asyncio``), or granian (Rust's hyper and tokio) on the same ASGI
apps, its settings left at their defaults, for choosing the server by measurement."""


def granian(target: str, port: int, *extra: str) -> list[str]:
    """The command serving the ASGI app ``target`` with granian on 127.0.0.1:``port``."""
    return [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning", "--no-ws", *extra, target]


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def spark_executable() -> list[str]:
    """How to run the ``spark`` command installed next to this Python."""
    script = Path(sys.executable).with_name("spark")
    if script.exists():
        return [str(script)]
    found = shutil.which("spark")
    return [found] if found else [sys.executable, "-m", "spark_cli"]


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its children, in bytes (psutil, or /proc on Linux)."""
    try:
        import psutil
    except ImportError:
        return _proc_rss(pid)
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


def _proc_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"No VmRSS for process {pid}")


def _get(url: str, timeout: float = 1.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return int(answer.status)
    except OSError:
        return 0


class FakeLangflowProcess:
    """``python -m bench.fake_langflow`` in its own process."""

    def __init__(self, flows: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_key = LANGFLOW_KEY
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.fake_langflow", "--port", str(self.port),
             "--flows", str(flows)],
            stdout=subprocess.PIPE, text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if line != self.url:
            self.stop()
            raise RuntimeError(f"The fake LangFlow did not start (said {line!r})")

    def stop(self) -> None:
        """Stop the fake."""
        _stop(self._process)


class BaselineProcess:
    """``python -m bench.baseline``: the bare Litestar page every HTTP figure is compared
    with, on the same server flavour as Spark (``auto``, or ``asyncio`` for plain uvicorn);
    with ``forward_to``, also the bare run (``POST /run/{flow_id}`` sent on to that fake),
    and with ``record_in`` (a PostgreSQL URL, or ``sqlite:///`` and a file's path) too, the
    bare run recorded there (``POST /recorded-run/{flow_id}``)."""

    def __init__(self, server: str = "auto",
                 forward_to: "FakeLangflowProcess | None" = None,
                 record_in: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.records = forward_to is not None and record_in is not None
        """Whether ``POST /recorded-run/{flow_id}`` is served."""
        env = dict(os.environ)
        env.pop(RECORD_IN_ENV, None)
        if forward_to is not None:
            env.update({FORWARD_TO_ENV: forward_to.url, FORWARD_KEY_ENV: forward_to.api_key})
        if record_in is not None:
            env[RECORD_IN_ENV] = record_in
        if server == "granian":
            command = granian("bench.baseline:build_app", self.port, "--factory")
        else:
            flags = ["--no-uvloop"] if server == "asyncio" else []
            command = [sys.executable, "-m", "bench.baseline", "--port", str(self.port), *flags]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env,
                                         cwd=Path(__file__).parent.parent)
        deadline = time.perf_counter() + HEALTH_TIMEOUT
        while _get(f"{self.url}/page", timeout=0.5) != 200:
            if self._process.poll() is not None or time.perf_counter() > deadline:
                self.stop()
                raise RuntimeError("The bare Litestar baseline did not start")
            time.sleep(0.01)

    @property
    def pid(self) -> int:
        """The baseline's process id."""
        return self._process.pid

    def stop(self) -> None:
        """Stop the baseline."""
        _stop(self._process)


class SparkProcess:
    """``spark serve`` on a free loopback port with a fresh data dir (or ``data_dir``), on the
    embedded SQLite store in it unless ``database_url`` names another (``SPARK_DATABASE_URL``).
    """

    def __init__(self, *, data_dir: Path | None = None, workers: int | None = None,
                 database_url: str | None = None, pool_size: int | None = None,
                 server: str = "auto") -> None:
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="spark-bench-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_key = SPARK_KEY
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("SPARK_", "AUTOMAGIK_SPARK_", "API_"))}
        env.update(SPARK_API_KEY=SPARK_KEY, SPARK_DATA_DIR=str(self.data_dir),
                   API_PORT=str(self.port), SPARK_LOG_LEVEL="WARNING",
                   SPARK_ENCRYPTION_KEY="bench-encryption-passphrase")
        if workers is not None:
            env["SPARK_WORKERS"] = str(workers)
        if database_url is not None:
            env["SPARK_DATABASE_URL"] = database_url
        if pool_size is not None:
            env["SPARK_DATABASE_POOL_SIZE"] = str(pool_size)
        self.started = time.perf_counter()
        # cwd is the data dir so that no .env of the caller's is read.
        if server == "granian":  # the module-level app, settings from the environment
            command = granian("spark_http.asgi:app", self.port)
        elif server == "asyncio":
            command = [sys.executable, "-c",
                       HIDE_UVLOOP + "from spark_cli.main import main; main()", "serve"]
        else:
            command = [*spark_executable(), "serve"]
        self._process = subprocess.Popen(command, env=env,
                                         cwd=self.data_dir, stdout=subprocess.DEVNULL)
        self.seconds_to_healthy = self._wait_healthy()

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self._process.pid

    @property
    def database_path(self) -> Path:
        """The SQLite file the server uses."""
        return self.data_dir / "spark.db"

    def _wait_healthy(self) -> float:
        deadline = self.started + HEALTH_TIMEOUT
        while time.perf_counter() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"spark serve exited with {self._process.returncode}")
            if _get(f"{self.url}/health", timeout=0.5) == 200:
                return time.perf_counter() - self.started
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"spark serve was not healthy within {HEALTH_TIMEOUT} s")

    def rss(self) -> int:
        """Resident memory of the server now, in bytes."""
        return rss_bytes(self.pid)

    def stop(self, *, keep_data: bool = False) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its data dir unless kept."""
        _stop(self._process)
        if self._own_dir and not keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class Cluster:
    """Spark nodes on one store, measured together."""

    def __init__(self, nodes: list[SparkProcess]) -> None:
        self.nodes = list(nodes)

    @classmethod
    def start(cls, count: int, *, database_url: str | None = None,
              pool_size: int | None = None, server: str = "auto") -> "Cluster":
        """``count`` nodes on PostgreSQL at ``database_url``, or (without one) on the first
        node's SQLite file, which the others open through ``SPARK_DATABASE_URL``. Every node
        has its own data dir; the API and encryption keys are the same on all."""
        cluster = cls([])
        try:
            for _ in range(max(1, count)):
                url = database_url
                if url is None and cluster.nodes:
                    url = f"sqlite:///{cluster.nodes[0].database_path}"
                cluster.nodes.append(SparkProcess(database_url=url, pool_size=pool_size,
                                                  server=server))
        except BaseException:
            cluster.stop()
            raise
        return cluster

    @property
    def first(self) -> SparkProcess:
        """The node that single-connection measurements use."""
        return self.nodes[0]

    def node(self, number: int) -> SparkProcess:
        """Node ``number`` modulo the node count: round-robin."""
        return self.nodes[number % len(self.nodes)]

    def rss(self) -> int:
        """The largest resident memory of one node now, in bytes."""
        return max(node.rss() for node in self.nodes)

    def stop(self) -> None:
        """Stop every node, the first (which may hold the SQLite file) last."""
        for node in reversed(self.nodes):
            node.stop()


def _stop(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def help_seconds() -> float:
    """Wall time of one ``spark --help``."""
    started = time.perf_counter()
    subprocess.run([*spark_executable(), "--help"], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started
