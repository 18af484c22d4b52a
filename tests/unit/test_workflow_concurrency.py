"""A workflow's ``max_concurrency``: set through the library, kept by syncing, and held by
every worker sharing one store."""

import asyncio

import msgspec
import pytest

from spark_core.errors import NotFoundError, ValidationError
from spark_core.facade import Spark
from spark_core.models import TaskStatus, Workflow
from spark_core.services.workflows import WorkflowChanges
from spark_core.worker import RetryPolicy
from tests.fakes.secrets import FakeSecretBox
from tests.unit.conftest import World


def _second_node(world: World) -> Spark:
    """Another process's core on the same store: its own worker, the same database."""
    return Spark.from_ports(
        store=world.store, connector=world.connector, secrets=FakeSecretBox(),
        clock=world.clock, concurrency=4, lease_seconds=30,
        retry=RetryPolicy(base_seconds=1, max_seconds=8),
    )


async def test_setting_the_limit_stamps_the_workflow_and_null_lifts_it(
    world: World, echo: Workflow
) -> None:
    """``set_max_concurrency`` stores the limit with a new ``updated_at``; None removes it."""
    world.clock.advance(60)
    limited = await world.spark.workflows.set_max_concurrency(echo.id, 2)
    assert (limited.max_concurrency, limited.updated_at) == (2, world.clock.now())
    assert (await world.spark.workflows.get(echo.remote_flow_id)).max_concurrency == 2
    lifted = await world.spark.workflows.set_max_concurrency(echo.id, None)
    assert lifted.max_concurrency is None


@pytest.mark.parametrize("limit", [0, -3])
async def test_a_limit_below_one_is_refused(world: World, echo: Workflow, limit: int) -> None:
    """Zero or a negative limit is a validation error naming the field."""
    with pytest.raises(ValidationError) as raised:
        await world.spark.workflows.set_max_concurrency(echo.id, limit)
    assert raised.value.errors == [("max_concurrency", "must be at least 1, or null")]
    assert (await world.spark.workflows.get(echo.id)).max_concurrency is None


async def test_limiting_an_unknown_workflow_is_not_found(world: World) -> None:
    """The workflow must exist."""
    with pytest.raises(NotFoundError):
        await world.spark.workflows.set_max_concurrency("nope", 1)


async def test_syncing_again_keeps_the_limit(world: World, echo: Workflow) -> None:
    """The limit is a local setting: a second sync updates the flow and keeps it."""
    await world.spark.workflows.set_max_concurrency(echo.id, 3)
    resynced = await world.spark.workflows.sync("echo", source_id=echo.source_id)
    assert (resynced.id, resynced.max_concurrency) == (echo.id, 3)


async def test_an_update_without_changes_reads_the_workflow(
    world: World, echo: Workflow
) -> None:
    """``update`` with nothing set changes nothing; with a limit it sets it."""
    assert await world.spark.workflows.update(echo.id, WorkflowChanges()) == echo
    changed = await world.spark.workflows.update(echo.id, WorkflowChanges(max_concurrency=1))
    assert changed.max_concurrency == 1


async def test_two_workers_on_one_store_run_no_more_than_the_limit(
    world: World, echo: Workflow
) -> None:
    """Two nodes with four slots each start two runs of a workflow limited to two; the others
    wait pending, and all finish once the runs end."""
    await world.spark.workflows.set_max_concurrency(echo.id, 2)
    other = _second_node(world)
    world.remote.release = asyncio.Event()
    await world.spark.worker.start()
    await other.worker.start()
    try:
        tasks = [await world.spark.tasks.create(echo.id, input_data=str(n)) for n in range(6)]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while len(world.remote.runs) < 2:
            assert loop.time() < deadline, "two runs never started"
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert len(world.remote.runs) == 2
        statuses = [(await world.store.tasks.get(t.id)).status for t in tasks]
        assert statuses.count(TaskStatus.RUNNING) == 2
        assert statuses.count(TaskStatus.PENDING) == 4
        world.remote.release.set()
        finished = [await world.spark.tasks.wait(t.id, timeout=10) for t in tasks]
        assert {t.status for t in finished} == {TaskStatus.COMPLETED}
    finally:
        await other.worker.stop(grace=1)
        await world.spark.worker.stop(grace=1)


def test_changes_refuse_unknown_fields() -> None:
    """A change body naming another field is refused, not ignored."""
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"max_concurency": 2}, WorkflowChanges)
