"""A loopback webhook server speaking the protocol of ``examples/webhook_source.py``."""

from typing import Any

from aiohttp import web

from tests.servers.base import FakeServer

WEBHOOK_KEY = "webhook-fixture-key-5d4c3b2a"
"""The bearer token the fake webhook accepts."""


class FakeWebhook(FakeServer):
    """``GET /`` is the health check; ``POST /shout`` upper-cases, ``POST /echo`` echoes,
    ``POST /broken`` fails with 500; other paths are 404."""

    def build_app(self) -> web.Application:
        """Two routes: the root and one per flow."""
        app = web.Application()
        app.router.add_get("/", self._root)
        app.router.add_post("/{flow}", self._run)
        return app

    def _refused(self, request: web.Request) -> bool:
        return self.api_key is not None and (
            request.headers.get("Authorization") != f"Bearer {self.api_key}"
        )

    async def _root(self, request: web.Request) -> web.Response:
        if self._refused(request):
            return web.json_response({"detail": "bad token"}, status=401)
        return web.json_response({"status": "ok"})

    async def _run(self, request: web.Request) -> web.Response:
        if self._refused(request):
            return web.json_response({"detail": "bad token"}, status=401)
        body: dict[str, Any] = await request.json()
        self.runs.append({"flow": request.match_info["flow"], "json": body})
        await self.before_run()
        text = str(body.get("input", ""))
        answers = {"shout": text.upper(), "echo": text}
        flow = request.match_info["flow"]
        if flow == "broken":
            return web.json_response({"detail": "webhook exploded"}, status=500)
        if flow not in answers:
            return web.json_response({"detail": "no such hook"}, status=404)
        return web.json_response({"output": answers[flow]})
