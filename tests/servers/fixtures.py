"""Pytest fixtures starting the fakes; register: ``pytest_plugins = ["tests.servers.fixtures"]``.

Each server fixture yields a started fake with auth on; its key is ``server.api_key``.
"""

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.servers import HIVE_KEY, LANGFLOW_KEY, FakeHive, FakeLangflow
from tests.servers.receiver import FakeReceiver


@pytest.fixture
async def langflow_server() -> AsyncIterator[FakeLangflow]:
    """A started ``FakeLangflow`` whose key is ``LANGFLOW_KEY``."""
    server = FakeLangflow(api_key=LANGFLOW_KEY)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def hive_server() -> AsyncIterator[FakeHive]:
    """A started ``FakeHive`` with auth on, whose key is ``HIVE_KEY``."""
    server = FakeHive(api_key=HIVE_KEY)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp session, as the container would make one per process."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def receiver() -> AsyncIterator[FakeReceiver]:
    """A started webhook receiver."""
    server = FakeReceiver()
    await server.start()
    yield server
    await server.stop()
