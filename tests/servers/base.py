"""What both fakes share: binding to an ephemeral loopback port, and the test knobs."""

import abc
import asyncio
import ssl
from typing import Any

from aiohttp import web

HUGE_BODY_BYTES = 11 * 1024 * 1024
"""Size of the body a fake streams when ``huge`` is set: just over the adapters' 10 MB cap."""


class FakeServer(abc.ABC):
    """An aiohttp app on 127.0.0.1 with knobs tests turn to provoke failures.

    ``api_key``: None switches auth off. ``delay``: seconds every run sleeps first.
    ``fail_with``: an HTTP status every run answers with. ``garbage``: JSON routes answer
    non-JSON. ``healthy``: False makes the health routes fail. ``huge``: runs stream a body
    larger than the adapters' cap. ``runs``: one dict per run request received.
    """

    def __init__(self, *, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.delay = 0.0
        self.fail_with: int | None = None
        self.garbage = False
        self.healthy = True
        self.huge = False
        self.runs: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    @abc.abstractmethod
    def build_app(self) -> web.Application:
        """The application; each fake adds its routes."""

    async def start(self, *, ssl_context: ssl.SSLContext | None = None) -> str:
        """Bind an ephemeral port on 127.0.0.1, serve, and return the base URL.

        With ``ssl_context`` the server speaks HTTPS.
        """
        app = self.build_app()
        app.middlewares.append(self._record)
        # Short grace on stop: a test that timed out leaves a sleeping run behind.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"{'https' if ssl_context else 'http'}://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        """Stop serving (open connections are closed)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        response: web.StreamResponse = await handler(request)
        return response

    async def before_run(self) -> None:
        """Apply ``delay`` (the part of a run every fake shares)."""
        if self.delay:
            await asyncio.sleep(self.delay)

    @staticmethod
    def garbage_response() -> web.Response:
        """What a confused proxy might answer: 200 with an HTML page."""
        return web.Response(text="<html><body>Bad Gateway-ish</body></html>",
                            content_type="text/html")

    @staticmethod
    async def huge_response(request: web.Request) -> web.StreamResponse:
        """A JSON-looking body over the cap, streamed without a Content-Length."""
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b" " * (1024 * 1024)
        await response.write(b'{"content": "')
        try:
            for _ in range(HUGE_BODY_BYTES // len(chunk)):
                await response.write(chunk)
            await response.write(b'"}')
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client hung up once it had read enough, as it should
        return response


class CannedServer(FakeServer):
    """Answers every request with one fixed response; for shapes the fakes never produce.

    ``echo_header``: a request header whose value is appended to the body, to imitate a server
    that repeats credentials back.
    """

    def __init__(self, body: bytes | str, *, status: int = 200,
                 content_type: str = "application/json", echo_header: str | None = None) -> None:
        super().__init__()
        self.body = body.encode() if isinstance(body, str) else body
        self.status = status
        self.content_type = content_type
        self.echo_header = echo_header

    def build_app(self) -> web.Application:
        """One catch-all route."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        return app

    async def _answer(self, request: web.Request) -> web.Response:
        body = self.body
        if self.echo_header:
            body += request.headers.get(self.echo_header, "").encode()
        return web.Response(body=body, status=self.status, content_type=self.content_type)
