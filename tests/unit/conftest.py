"""The core wired with hand-written fakes: an in-memory store, a settable clock, fake sources."""

from collections.abc import AsyncIterator

import msgspec
import pytest

from spark_core.facade import Spark
from spark_core.models import Schedule, Workflow
from spark_core.ports import Metrics, Notifier
from spark_core.services.schedules import ScheduleFields
from spark_core.worker import RetryPolicy, Worker
from tests.fakes.clock import FakeClock
from tests.fakes.secrets import FakeSecretBox
from tests.fakes.sources import FakeConnector, FakeRemote
from tests.fakes.store import FakeStore

REMOTE_URL = "http://flows.test:7860"


class World(msgspec.Struct, kw_only=True):
    """Everything a core test touches."""

    store: FakeStore
    clock: FakeClock
    connector: FakeConnector
    remote: FakeRemote
    spark: Spark


def build_world(*, concurrency: int = 4, metrics: Metrics | None = None,
                notifier: Notifier | None = None, lease_seconds: float = 30) -> World:
    """The core over fakes, with one fake LangFlow server offering an ``echo`` flow, wired by
    ``Spark.from_ports`` as every entrypoint wires it."""
    clock = FakeClock()
    store = FakeStore(clock)
    connector = FakeConnector()
    remote = connector.add_remote(REMOTE_URL, api_key="remote-key")
    remote.add_flow("echo", "Echo")
    spark = Spark.from_ports(
        store=store, connector=connector, secrets=FakeSecretBox(), clock=clock,
        concurrency=concurrency, lease_seconds=lease_seconds,
        retry=RetryPolicy(base_seconds=1, max_seconds=8), metrics=metrics, notifier=notifier,
    )
    return World(store=store, clock=clock, connector=connector, remote=remote, spark=spark)


@pytest.fixture
def world() -> World:
    """A fresh core over fakes."""
    return build_world()


async def synced_echo(world: World) -> Workflow:
    """Add the fake source and sync its ``echo`` flow; returns the workflow."""
    source = await world.spark.sources.add(
        name="flows", source_type="langflow", url=REMOTE_URL, api_key="remote-key"
    )
    return await world.spark.workflows.sync("echo", source_id=source.id)


async def make_schedule(world: World, workflow: Workflow, kind: str, expr: str,
                        **options: object) -> Schedule:
    """Create a schedule of ``workflow`` through the service, as the API or CLI would."""
    fields = msgspec.convert({"workflow_id": workflow.id, "schedule_type": kind,
                              "schedule_expr": expr, **options}, ScheduleFields)
    return await world.spark.schedules.create(fields)


@pytest.fixture
async def echo(world: World) -> Workflow:
    """The ``echo`` workflow, synced."""
    return await synced_echo(world)


@pytest.fixture
async def running_worker(world: World) -> AsyncIterator[Worker]:
    """The world's worker, started, and stopped after the test."""
    await world.spark.worker.start()
    yield world.spark.worker
    await world.spark.worker.stop(grace=1)
