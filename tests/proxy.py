"""A loopback TCP proxy a test can cut (a network partition, a database restart) or freeze (a
server that stops answering)."""

import asyncio
import contextlib
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any


class CuttableProxy:
    """A TCP proxy on loopback, in its own thread, that forwards to ``target`` until cut (or,
    frozen, holds every byte while keeping the connections open, as a hung server would)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.cut_off = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._flowing = asyncio.Event()
        self._flowing.set()
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

    def route(self, url: str) -> str:
        """``url`` (a PostgreSQL URL to ``target``) redirected through this proxy."""
        parts = urllib.parse.urlsplit(url)
        user = f"{parts.username}@" if parts.username else ""
        return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{self.port}"))

    @classmethod
    @contextlib.contextmanager
    def before(cls, url: str) -> Iterator["CuttableProxy"]:
        """A proxy, running, to the server of the PostgreSQL URL ``url``."""
        parts = urllib.parse.urlsplit(url)
        with cls(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
            yield proxy

    def cut(self) -> None:
        """Reset every open connection and refuse new ones."""
        self._call(self._cut)

    def restore(self) -> None:
        """Forward new connections again."""
        self.cut_off = False

    def freeze(self) -> None:
        """Hold every byte, both ways, on open and new connections, until ``thaw`` (held
        from the moment this returns)."""
        self._call(self._hold)

    def thaw(self) -> None:
        """Forward what was held, and what comes next."""
        self._call(self._release)

    async def _hold(self) -> None:
        self._flowing.clear()

    async def _release(self) -> None:
        self._flowing.set()

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine(), self._loop).result(timeout=10)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        await self._cut()
        if self._server is not None:
            self._server.close()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

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
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._writers.discard(writer)
