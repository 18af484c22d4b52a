"""Misbehaving sources through the whole stack: the REST app, its worker and the LangFlow
adapter, against a loopback LangFlow whose flows each misbehave in their own way.

Each run must end in a final state with a readable ``error`` (or complete, where the answer is
still usable), Spark must never answer 5xx, no task may hang, and the API must stay responsive
while the hostile runs are under way.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from spark_adapters.container import build_container
from spark_adapters.settings import Settings
from spark_http.app import create_app
from tests.http.conftest import API_KEY, AUTH, add_source, http_client, lifespan, sync_flow
from tests.robustness.conftest import FINAL, report
from tests.servers import LANGFLOW_KEY, FakeLangflow
from tests.servers.langflow import _flow

RUN_TIMEOUT = 2.0
SETTLE_WITHIN = 60.0
DRIP_INTERVAL = 0.3

# Each hostile flow: its behaviour, and the final statuses Spark may give its task.
BEHAVIOURS: dict[str, tuple[str, ...]] = {
    "garbage-json": ("failed",),
    "huge-body": ("failed",),
    "slow-drip": ("failed",),
    "reset": ("failed",),
    "429-then-ok": ("completed",),
    "500-html": ("failed",),
    "bad-content-type": ("completed", "failed"),
    "html-content-type": ("failed",),
}
# What a readable error says about each failing behaviour (case-insensitive).
ERROR_WORDS = {
    "garbage-json": "json",
    "huge-body": "larger than",
    "slow-drip": "timed out",
    "reset": "could not reach",
    "500-html": "500",
    "html-content-type": "json",
}


class HostileLangflow(FakeLangflow):
    """A fake LangFlow with one extra flow per hostile behaviour (endpoint ``hostile-<name>``);
    running one misbehaves accordingly, every other route answers as LangFlow does."""

    def __init__(self) -> None:
        super().__init__(api_key=LANGFLOW_KEY)
        self.ids = {name: f"0000dead-0000-4000-8000-{index:012d}"
                    for index, name in enumerate(BEHAVIOURS)}
        self.flows += [_flow(flow_id, f"hostile-{name}", f"Misbehaves: {name}")
                       for name, flow_id in self.ids.items()]
        self.attempts: dict[str, int] = dict.fromkeys(BEHAVIOURS, 0)

    def build_app(self) -> web.Application:
        """LangFlow's routes, with hostile runs answered before the normal run handler."""
        app = super().build_app()
        app.middlewares.append(self._hostile)
        return app

    @web.middleware
    async def _hostile(self, request: web.Request, handler: Any) -> web.StreamResponse:
        name = next((n for n, flow_id in self.ids.items()
                     if request.path == f"/api/v1/run/{flow_id}"), None)
        if name is None:
            response: web.StreamResponse = await handler(request)
            return response
        await request.read()
        self.attempts[name] += 1
        return await self._misbehave(name, request)

    # One branch per behaviour; splitting them up would hide the catalogue.
    async def _misbehave(  # noqa: PLR0911
        self, name: str, request: web.Request
    ) -> web.StreamResponse:
        if name == "garbage-json":
            return web.Response(body=b'{"outputs": [{"outputs": [tru', status=200,
                                content_type="application/json")
        if name == "huge-body":
            return await self.huge_response(request)
        if name == "slow-drip":
            return await self._drip(request)
        if name == "reset":
            return await self._reset(request)
        if name == "429-then-ok" and self.attempts[name] == 1:
            return web.json_response({"detail": "Too many requests"}, status=429)
        if name == "500-html":
            return web.Response(text="<html><body><h1>500 Internal Server Error</h1>"
                                     "</body></html>", status=500, content_type="text/html")
        answer = self._answer(self._find(self.ids[name]) or {}, "hostile", "hostile", "s")
        if name == "bad-content-type":
            return web.Response(body=web.json_response(answer).body, status=200,
                                headers={"Content-Type": "}{ not/a type;;="})
        if name == "html-content-type":
            return web.Response(text="<!doctype html><p>Login required</p>",
                                content_type="text/html")
        return web.json_response(answer)

    @staticmethod
    async def _drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(200):  # a byte at a time, for far longer than the run may take
                await response.write(b" ")
                await asyncio.sleep(DRIP_INTERVAL)
        except (ConnectionError, RuntimeError):
            pass  # the client gave up, as it should
        return response

    @staticmethod
    async def _reset(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = 10_000
        await response.prepare(request)
        await response.write(b'{"outputs": [{"outputs": [')
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.abort()  # a reset in the middle of the body
        return response


@pytest.fixture
async def hostile() -> AsyncIterator[HostileLangflow]:
    """The hostile LangFlow, started in this event loop."""
    server = HostileLangflow()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The REST app over a real container, its worker running in this loop, a short run
    timeout, and a client sending the key."""
    settings = Settings(api_keys=(API_KEY,), data_dir=tmp_path, http_timeout=RUN_TIMEOUT,
                        workers=8)
    app = create_app(build_container(settings), shutdown_grace=0.5)
    async with lifespan(app), http_client(app, AUTH) as test_client:
        yield test_client


async def _health_latencies(client: httpx.AsyncClient, stop: asyncio.Event) -> list[float]:
    latencies = []
    while not stop.is_set():
        started = time.monotonic()
        response = await client.get("/health")
        latencies.append(time.monotonic() - started)
        assert response.status_code == 200, response.text
        await asyncio.sleep(0.1)
    return latencies


async def test_misbehaving_sources_end_every_run_with_a_readable_error(
    client: httpx.AsyncClient, hostile: HostileLangflow
) -> None:
    """Garbage JSON, a body over the cap, a slow drip, a reset mid-body, a 429 then success,
    a 500 with HTML and broken content types each end their task in a final state with a
    readable error (the 429 retried to completion), never a 5xx from Spark, while /health
    keeps answering."""
    source = await add_source(client, hostile)
    workflows = {name: (await sync_flow(client, flow_id, source["id"]))["id"]
                 for name, flow_id in hostile.ids.items()}

    stop = asyncio.Event()
    health = asyncio.create_task(_health_latencies(client, stop))
    queued: dict[str, str] = {}
    for name, workflow_id in workflows.items():
        response = await client.post(f"/api/v1/workflows/{workflow_id}/run",
                                     json={"input_value": name, "max_retries": 1,
                                           "wait": False})
        assert response.status_code == 202, response.text
        queued[name] = response.json()["id"]

    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_WITHIN
    tasks: dict[str, dict[str, Any]] = {}
    while len(tasks) < len(queued):
        for name, task_id in queued.items():
            response = await client.get(f"/api/v1/tasks/{task_id}")
            assert response.status_code == 200, response.text
            if response.json()["status"] in FINAL:
                tasks[name] = response.json()
        assert loop.time() < deadline, f"still running: {set(queued) - set(tasks)}"
        await asyncio.sleep(0.1)
    stop.set()
    latencies = await health

    report("hostile-sources", runs=len(queued),
           finished={name: task["status"] for name, task in tasks.items()},
           health_checks=len(latencies), slowest_health_ms=round(max(latencies) * 1000))
    for name, task in tasks.items():
        print(f"  {name}: {task['status']} after {task['tries']} tries: {task['error']}")
    for name, task in tasks.items():
        assert task["status"] in BEHAVIOURS[name], (name, task)
        if task["status"] == "failed":
            error = task["error"]
            assert isinstance(error, str), (name, task)
            assert error.strip(), (name, task)
            assert not error.startswith("Internal error"), (name, error)
            assert ERROR_WORDS[name] in error.lower(), (name, error)
            assert len(error) < 1000, (name, error)
            assert LANGFLOW_KEY not in error
    assert tasks["429-then-ok"]["tries"] == 2
    assert tasks["429-then-ok"]["output_data"] == "hostile"
    assert tasks["slow-drip"]["tries"] == 2  # a timeout is transient: retried once
    assert max(latencies) < 2.0
