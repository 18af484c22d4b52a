"""Fixtures for the REST API: the real app over a real container, store and source adapters.

The container is built from ``Settings`` with a temporary data dir, over a real SQLite file and
again over a real PostgreSQL schema, and the LangFlow and Hive adapters talk to the loopback
fakes of ``tests.servers``: every API test runs on both stores.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from spark_adapters.container import Container, build_container
from spark_adapters.settings import Settings
from spark_http.app import create_app
from tests.servers import FakeHive, FakeLangflow
from tests.servers.fixtures import hive_server, langflow_server

__all__ = ["hive_server", "langflow_server"]

API_KEY = "test-key"
SECOND_KEY = "rotated-second-key"
AUTH = {"X-API-Key": API_KEY}


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for one test: two valid keys, a private data dir, quick timeouts; the store
    is the embedded SQLite file, then a fresh PostgreSQL schema (skipped without a server)."""
    database_url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return Settings(
        api_keys=(API_KEY, SECOND_KEY),
        data_dir=tmp_path,
        database_url=database_url,
        cors_origins=("https://ui.example",),
        http_timeout=20.0,
        workers=4,
    )


@pytest.fixture
def container(settings: Settings) -> Container:
    """The composition root for ``settings``."""
    return build_container(settings)


@pytest.fixture
def app(container: Container) -> Litestar:
    """The app, running its worker and scheduler in the test's event loop."""
    return create_app(container, shutdown_grace=0.5)


@contextlib.asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[Litestar]:
    """Run the app's ASGI lifespan in a task of this event loop, as a server would.

    Litestar's ``AsyncTestClient`` runs the lifespan in a portal thread with another loop,
    where the worker could not reach the loopback fakes running in this one; and
    ``app.lifespan()`` holds a task group that a fixture's teardown would exit from another task.
    """
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    server = asyncio.create_task(app(scope, inbox.get, outbox.put))  # type: ignore[arg-type]
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    assert started["type"] == "lifespan.startup.complete", started
    try:
        yield app
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        stopped = await outbox.get()
        await server
        assert stopped["type"] == "lifespan.shutdown.complete", stopped


@pytest.fixture
async def running_app(app: Litestar) -> AsyncIterator[Litestar]:
    """The app with its lifespan entered in the test's own event loop."""
    async with lifespan(app):
        yield app


def http_client(app: Litestar, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    """An httpx client calling ``app`` in-process."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers=headers,
        timeout=30,
    )


@pytest.fixture
async def client(running_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """A client sending a valid key."""
    async with http_client(running_app, AUTH) as test_client:
        yield test_client


@pytest.fixture
async def anonymous(running_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """A client sending no key."""
    async with http_client(running_app) as test_client:
        yield test_client


async def add_source(
    client: httpx.AsyncClient, server: FakeLangflow | FakeHive, **extra: Any
) -> dict[str, Any]:
    """Register ``server`` as a source and return the created source."""
    source_type = "langflow" if isinstance(server, FakeLangflow) else "hive"
    body = {
        "name": f"{source_type} fake",
        "source_type": source_type,
        "url": server.url,
        "api_key": server.api_key,
        **extra,
    }
    response = await client.post("/api/v1/sources", json=body)
    assert response.status_code == 201, response.text
    source: dict[str, Any] = response.json()
    return source


async def sync_flow(client: httpx.AsyncClient, flow_id: str, source_id: str) -> dict[str, Any]:
    """Sync one remote flow into the catalogue and return the workflow."""
    response = await client.post(
        f"/api/v1/workflows/sync/{flow_id}", params={"source_id": source_id}
    )
    assert response.status_code == 200, response.text
    workflow: dict[str, Any] = response.json()
    return workflow


async def wait_for_task(
    client: httpx.AsyncClient, task_id: str, *, within: float = 15.0
) -> dict[str, Any]:
    """Poll a task until it is final (completed, failed or cancelled)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        task: dict[str, Any] = (await client.get(f"/api/v1/tasks/{task_id}")).json()
        if task["status"] in ("completed", "failed", "cancelled"):
            return task
        assert asyncio.get_running_loop().time() < deadline, f"task still {task['status']}"
        await asyncio.sleep(0.05)
