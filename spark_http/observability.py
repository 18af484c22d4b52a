"""Every HTTP answer carries ``X-Request-ID`` (the caller's own when it sent a sane one) and
is counted in ``spark_http_requests_total`` by method, route template and status; every line
logged while a request is handled carries the id (``spark_adapters.logs.REQUEST_ID``).

It wraps the whole Litestar app, so unknown routes (404), wrong methods (405) and errors are
covered as well as routed answers.
"""

import itertools
import re
import secrets
import time
from typing import Any

from litestar import Litestar
from litestar.types import HTTPResponseStartEvent, Message, Receive, Scope, Send

from spark_adapters.logs import REQUEST_ID
from spark_adapters.metrics import PrometheusMetrics

HEADER = "X-Request-ID"
UNMATCHED = "unmatched"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ID_PREFIX = secrets.token_hex(8)
"""This process's random half of every request id it makes (64 bits: unique across
processes); the other half counts requests."""
_ID_NUMBERS = itertools.count(secrets.randbelow(2**32))
_STATE_KEY = "request_id"
HEALTH_PATHS = frozenset({"/health", "/api/v1/health"})
"""Where the health check answers (its route, and the quick answer here)."""


def request_id(scope: Scope | dict[str, Any]) -> str:
    """The request's id: the one already chosen for it, else the caller's ``X-Request-ID``
    when it is short and plain, else a new random one."""
    state = scope.setdefault("state", {})
    found = state.get(_STATE_KEY)
    if isinstance(found, str):
        return found
    chosen = None
    for key, value in scope.get("headers", ()):
        if key.lower() == b"x-request-id":
            caller = value.decode("latin-1").strip()
            if _SANE_ID.match(caller):
                chosen = caller
            break
    if chosen is None:
        # 32 hex digits like uuid4().hex, unique rather than unpredictable (an id names a
        # request in the logs, it guards nothing): 0.3 us against token_hex's 2.5 us syscall
        chosen = f"{_ID_PREFIX}{next(_ID_NUMBERS) & 0xFFFFFFFFFFFFFFFF:016x}"
    state[_STATE_KEY] = chosen
    return chosen


class ObservedApp(Litestar):
    """A Litestar app that stamps request ids and counts every answer in ``metrics``."""

    spark_metrics: PrometheusMetrics | None = None

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:  # type: ignore[override]
        """Handle one connection; HTTP requests get an id, a header and a count."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        rid = request_id(scope)
        token = REQUEST_ID.set(rid)
        started = time.monotonic()
        status = 500

        async def stamped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers") or [])
                if not any(key.lower() == b"x-request-id" for key, _ in headers):
                    headers.append((b"x-request-id", rid.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            body = self._quick_health(scope)
            if body is None:
                await super().__call__(scope, receive, stamped)
            else:
                scope["path_template"] = scope["path"]
                start: HTTPResponseStartEvent = {
                    "type": "http.response.start", "status": 200, "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())]}
                await stamped(start)
                await send({"type": "http.response.body", "body": body, "more_body": False})
        finally:
            REQUEST_ID.reset(token)
            if self.spark_metrics is not None:
                self.spark_metrics.http_request(
                    method=str(scope.get("method", "")),
                    route=str(scope.get("path_template") or UNMATCHED),
                    status=status, seconds=time.monotonic() - started)

    def _quick_health(self, scope: Any) -> bytes | None:
        """The body of a plain ``GET /health`` (or ``/api/v1/health``), answered here without
        the middleware, routing and dependency resolution it does not need: the answer comes
        from state the process already holds, encoded once per state. ``None`` for anything
        else, and for a request with an ``Origin`` (CORS headers are Litestar's to add) or
        before the lifespan has built the facade."""
        if scope["path"] not in HEALTH_PATHS or scope.get("method") != "GET":
            return None
        # Imported here: the routes import the error mapping, which imports this module.
        from spark_http.routes.health import encoded_health

        spark = self.state.get("spark")
        if spark is None or any(key == b"origin" for key, _ in scope.get("headers", ())):
            return None
        return encoded_health(spark, background=bool(self.state.get("run_background", True)))
