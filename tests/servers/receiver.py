"""A loopback webhook receiver for run notifications: keeps what it is sent, checks nothing."""

from typing import Any

import msgspec
from aiohttp import web

from tests.servers.base import FakeServer


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One POST the receiver got: its headers and exact body."""

    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body decoded."""
        return msgspec.json.decode(self.body)


class FakeReceiver(FakeServer):
    """``POST /hook`` records the delivery and answers 204; the first ``fail_first`` POSTs
    answer 503 instead (recorded too)."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_first = 0
        self.deliveries: list[Delivery] = []

    @property
    def hook_url(self) -> str:
        """Where to send notifications."""
        return f"{self.url}/hook"

    def build_app(self) -> web.Application:
        """One route."""
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        return app

    async def _hook(self, request: web.Request) -> web.Response:
        self.deliveries.append(Delivery(headers=dict(request.headers), body=await request.read()))
        if len(self.deliveries) <= self.fail_first:
            return web.Response(status=503, text="not now")
        return web.Response(status=204)
