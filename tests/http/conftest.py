"""Fixtures for the REST API: the real app over a real container, store and source adapters.

The container is built from ``Settings`` with a temporary data dir (a real SQLite file), and the
LangFlow and Hive adapters talk to the loopback fakes of ``tests.servers``.
"""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from spark_adapters.container import Container, build_container
from spark_adapters.settings import Settings
from spark_http.app import create_app
from tests.servers import FakeHive, FakeLangflow
from tests.servers.fixtures import hive_server, langflow_server

__all__ = ["hive_server", "langflow_server"]

API_KEY = "test-key"
SECOND_KEY = "rotated-second-key"
AUTH = {"X-API-Key": API_KEY}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for one test: two valid keys, a private data dir, quick timeouts."""
    return Settings(
        api_keys=(API_KEY, SECOND_KEY),
        data_dir=tmp_path,
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


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A client with a valid key, its app's lifespan entered."""
    async with AsyncTestClient(app=app, timeout=30) as test_client:
        test_client.headers.update(AUTH)
        yield test_client


@pytest.fixture
async def anonymous(app: Litestar, client: AsyncTestClient[Litestar]) -> AsyncTestClient[Litestar]:
    """A client sending no key, to the app ``client`` started."""
    # Not entered: ``client`` already runs the app's lifespan, which may run only once.
    return AsyncTestClient(app=app, timeout=30)


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
