"""``spark serve`` and ``spark worker``: the long-running processes."""

import errno
import gc
import logging
import math
import signal
import socket
from types import FrameType
from typing import TYPE_CHECKING

import click

from spark_cli.output import note
from spark_cli.state import CliState, InvalidValue, pass_state

if TYPE_CHECKING:
    import uvicorn
    from litestar import Litestar

    from spark_adapters.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def configure_logging(settings: "Settings") -> None:
    """Log at SPARK_LOG_LEVEL to stderr, as text or JSON lines (SPARK_LOG_FORMAT), secrets
    redacted."""
    from spark_adapters.logs import configure_logging as configure

    configure(settings)


def ensure_api_key(settings: "Settings") -> "Settings":
    """``settings`` with an API key: when none is configured, generate one, store it in
    ``.env`` (mode 0600) and print it once on stderr. The server never runs open."""
    import msgspec

    from spark_adapters.settings import generate_api_key
    from spark_cli.keys import API_KEY_VARIABLE, DOTENV, store_api_key

    if settings.api_keys:
        return settings
    key = generate_api_key()
    store_api_key(key)
    note(
        f"No API key was configured. Generated one and wrote it to {DOTENV.resolve()} "
        f"(mode 0600); clients send it as X-API-Key, and it signs you in to the dashboard "
        f"at http://{settings.api_host}:{settings.api_port}/ui. It is shown only this once:\n"
        f"  {API_KEY_VARIABLE}={key}"
    )
    return msgspec.structs.replace(settings, api_keys=(key,))


GRACE_OPTION = click.option(
    "--grace", type=click.FloatRange(min=0), default=10.0, show_default=True, metavar="SECONDS",
    help="On stop, how long runs in flight may take to finish before they are interrupted.",
)


@click.command()
@click.option("--host", help="Address to bind [env: API_HOST; default: 127.0.0.1].")
@click.option("--port", type=click.IntRange(0, 65535), help="Port [env: API_PORT; default: 8883].")
@GRACE_OPTION
@pass_state
def serve(state: CliState, *, host: str | None, port: int | None, grace: float) -> None:
    """Run the REST API, the scheduler and the worker in one process until SIGTERM or Ctrl-C,
    then finish runs in flight and stop cleanly.

    Without a configured API key (SPARK_API_KEY), a new one is generated, written to ./.env
    (mode 0600) and printed once on stderr.

    \b
    Example: spark serve --host 0.0.0.0 --port 8883 --grace 30
    """
    import uvicorn

    from spark_adapters.container import build_container
    from spark_http.app import create_app

    state.overrides.update(api_host=host, api_port=port)
    settings = state.settings()
    check_port_free(settings.api_host, settings.api_port)
    settings = ensure_api_key(settings)
    configure_logging(settings)
    prepare_store(settings)
    app = create_app(build_container(settings), run_background=True, shutdown_grace=grace)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM (the app lifespan stops the worker and
    # scheduler), then re-raises the signal it caught; a no-op handler makes that planned stop
    # exit 0 instead of looking like a crash.
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, lambda *_: None)
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's lines go through Spark's handler: one format, redacted
        # uvloop and httptools (uvicorn[standard], a dependency) where installed, else asyncio
        # and h11: /health answers about twice as many requests per second on them.
        loop="auto",
        http="auto",
        lifespan="on",
        # Requests waiting on a run must not hold the shutdown open past the grace period.
        timeout_graceful_shutdown=math.ceil(grace),
    )
    server = spark_server(config, app=app, grace=grace)
    server.run()
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


STARTUP_FAILURE = 3
"""uvicorn's exit status when the server could not start (kept as uvicorn.run had it)."""


def check_port_free(host: str, port: int) -> None:
    """Refuse to start (exit status 2, one line) when ``host:port`` cannot be bound, before
    anything else starts: no worker or scheduler runs, no key is generated."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # The same option uvicorn binds with, so a port in TIME_WAIT is not taken for busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise InvalidValue(
                f"Cannot listen on {host}:{port}: {reason}. Stop what uses it or choose "
                f"another port with --port (or API_PORT)."
            ) from exc


def spark_server(config: "uvicorn.Config", *, app: "Litestar", grace: float) -> "uvicorn.Server":
    """A uvicorn server that says what a stop waits for: on the first SIGINT or SIGTERM it
    prints how many runs are in flight and how long they may take; a second Ctrl-C interrupts
    them at once instead of waiting out the grace period."""
    import asyncio

    import uvicorn

    class SparkServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            stopping = self.should_exit
            super().handle_exit(sig, frame)
            # uvicorn waits for open responses before the app's lifespan ends: the dashboard's
            # event streams never end by themselves, so they are ended now.
            feed = getattr(app.state, "ui_feed", None)
            if feed is not None:
                asyncio.get_running_loop().call_soon_threadsafe(feed.close)
            spark = getattr(app.state, "spark", None)
            if spark is None:  # not started yet: nothing runs
                return
            if not stopping:
                runs = spark.worker.inflight
                note(f"Stopping: waiting up to {grace:g} s for {runs} run"
                     f"{'' if runs == 1 else 's'} in flight. Press Ctrl-C again to "
                     "interrupt them now." if runs else "Stopping: no runs in flight.")
            elif sig == signal.SIGINT:
                note(f"Stopping now: interrupting {spark.worker.inflight} run(s) in flight "
                     "(they are retried later if they have retries left).")
                # A signal handler runs between two steps of the event loop: hand the call
                # to the loop, which the thread-safe path also wakes up.
                asyncio.get_running_loop().call_soon_threadsafe(spark.hurry)

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)  # the app's lifespan has started: Spark is open
            settle_heap()

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            await super().shutdown(sockets)
            # On a second Ctrl-C uvicorn skips the app's shutdown altogether; Spark's is quick
            # once hurried and must still record the interrupted runs and close the store.
            if self.force_exit and not self.lifespan.shutdown_event.is_set():
                await self.lifespan.shutdown()

    return SparkServer(config)


def settle_heap() -> None:
    """Once the process has started, take what it will keep until it stops (modules, the app
    and its routes, the store, the worker) out of the garbage collector's full collections
    (``gc.freeze``): each of those scanned every one of them, ~90,000 objects and ~25 ms on
    the bench's machine, stalling every request and run in flight every few seconds under
    load. A process of its own only: frozen objects are never collected, which is right for
    what lives as long as the process, not for an embedding program's."""
    gc.freeze()


@click.command()
@GRACE_OPTION
@pass_state
def worker(state: CliState, *, grace: float) -> None:
    """Fire schedules and run queued tasks, without the HTTP API, until SIGTERM or Ctrl-C.
    Several workers (and servers) may share one store; no schedule fires twice.

    \b
    Example: SPARK_WORKERS=32 spark worker --grace 30
    """
    settings = state.settings()
    configure_logging(settings)
    log = logging.getLogger("spark_cli.worker")

    import asyncio

    async def main() -> None:
        from spark_adapters.container import build_container, open_spark

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for stop_signal in STOP_SIGNALS:
            loop.add_signal_handler(stop_signal, stop.set)
        async with open_spark(build_container(settings)) as spark:
            await spark.start()
            settle_heap()
            log.info("Worker started on %s (%d concurrent runs)", spark.store.description,
                     settings.workers)
            await stop.wait()
            log.info("Stopping: letting runs in flight finish for up to %ss", grace)
            await spark.stop(grace=grace)
        log.info("Worker stopped")

    asyncio.run(main())


def prepare_store(settings: "Settings") -> None:
    """Open and migrate the configured store once before serving, so that a database that
    cannot be reached is one readable line and exit status 2, not a server that starts and
    dies in its lifespan."""
    import asyncio

    from spark_adapters.clock import SystemClock
    from spark_adapters.container import configured_store

    async def run() -> None:
        store = configured_store(settings, SystemClock())
        await store.open()
        try:
            await store.migrate()
        finally:
            await store.close()

    asyncio.run(run())
