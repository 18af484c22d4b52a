"""The core wired with hand-written fakes: an in-memory store, a settable clock, fake sources."""

from collections.abc import AsyncIterator

import msgspec
import pytest

from spark_core.facade import Spark
from spark_core.models import Workflow
from spark_core.scheduler import Scheduler
from spark_core.services.schedules import ScheduleService
from spark_core.services.sources import SourceService
from spark_core.services.tasks import TaskService
from spark_core.services.workflows import WorkflowService
from spark_core.signals import TaskSignals
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
    signals: TaskSignals
    spark: Spark


def build_world(*, concurrency: int = 4) -> World:
    """The core over fakes, with one fake LangFlow server offering an ``echo`` flow."""
    store, clock, signals = FakeStore(), FakeClock(), TaskSignals()
    connector = FakeConnector()
    remote = connector.add_remote(REMOTE_URL, api_key="remote-key")
    remote.add_flow("echo", "Echo")
    sources = SourceService(store=store, connector=connector, secrets=FakeSecretBox(), clock=clock)
    workflows = WorkflowService(store=store, sources=sources, clock=clock)
    tasks = TaskService(store=store, workflows=workflows, clock=clock, signals=signals)
    schedules = ScheduleService(store=store, workflows=workflows, clock=clock, signals=signals)
    worker = Worker(
        store=store, sources=sources, clock=clock, signals=signals, concurrency=concurrency,
        poll_seconds=0.05, lease_seconds=30, retry=RetryPolicy(base_seconds=1, max_seconds=8),
    )
    scheduler = Scheduler(store=store, schedules=schedules, clock=clock, signals=signals)
    spark = Spark(sources=sources, workflows=workflows, tasks=tasks, schedules=schedules,
                  worker=worker, scheduler=scheduler, store=store)
    return World(store=store, clock=clock, connector=connector, remote=remote, signals=signals,
                 spark=spark)


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
