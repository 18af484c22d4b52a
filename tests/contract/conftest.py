"""The store under contract: the fake and every real adapter, each empty, on one fake clock."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from spark_core.ports import Store
from tests.contract.builders import T0
from tests.fakes.clock import FakeClock
from tests.fakes.store import FakeStore


@pytest.fixture
def clock() -> FakeClock:
    """The clock every store judges dueness and leases by, at ``T0``."""
    return FakeClock(T0)


@pytest.fixture(params=["fake", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path,
                clock: FakeClock) -> AsyncIterator[Store]:
    """Each store implementation, opened, migrated and empty; closed afterwards."""
    real: Store
    if request.param == "fake":
        yield FakeStore(clock)
        return
    if request.param == "sqlite":
        from spark_adapters.sqlite import SqliteStore

        real = SqliteStore(tmp_path / "spark.db", clock=clock)
    else:
        # Only this param asks for the server, so without one it alone skips, saying why.
        url: str = request.getfixturevalue("postgres_url")
        from spark_adapters.postgres import PostgresStore

        real = PostgresStore(url, clock=clock)
    await real.open()
    await real.migrate()
    try:
        yield real
    finally:
        await real.close()
