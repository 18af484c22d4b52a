"""The facade's shortcuts and lifecycle helpers, over the core's hand-written fakes."""

import pytest

from spark_core.errors import ValidationError
from spark_core.facade import Spark
from spark_core.models import ScheduleType, TaskStatus, WorkflowId
from tests.fakes.clock import FakeClock
from tests.fakes.secrets import FakeSecretBox
from tests.fakes.sources import FakeConnector
from tests.fakes.store import FakeStore
from tests.unit.conftest import REMOTE_URL, World, build_world


async def _added_and_synced(world: World) -> WorkflowId:
    source = await world.spark.add_source(
        name="flows", source_type="langflow", url=REMOTE_URL, api_key="remote-key"
    )
    listings = await world.spark.remote_flows(source.id)
    assert [listing.flow.remote_id for listing in listings] == ["echo"]
    workflow = await world.spark.sync("echo", source_id=source.id)
    return workflow.id


async def test_run_waits_for_the_answer_while_the_worker_runs() -> None:
    """``run`` goes through the worker and returns the finished task with its answer."""
    world = build_world()
    workflow_id = await _added_and_synced(world)
    async with world.spark.running(scheduler=False, grace=1):
        task = await world.spark.run(workflow_id, "hello")
    assert task.status == TaskStatus.COMPLETED
    assert task.output_data == "hello"


async def test_run_without_wait_returns_the_pending_task_and_wait_finishes_it() -> None:
    """``run(wait=False)`` queues; ``wait`` returns the task once the worker finished it."""
    world = build_world()
    workflow_id = await _added_and_synced(world)
    queued = await world.spark.run(workflow_id, "later", wait=False)
    assert queued.status == TaskStatus.PENDING
    async with world.spark.running(scheduler=False, grace=1):
        finished = await world.spark.wait(queued.id, timeout=5)
    assert finished.output_data == "later"


async def test_running_stops_the_worker_and_scheduler_on_exit() -> None:
    """Leaving ``running()`` stops both background parts."""
    world = build_world()
    async with world.spark.running(grace=1) as spark:
        assert spark.health()["worker"] == "running"
        assert spark.health()["scheduler"] == "running"
    assert spark.health() == {"database": "ok", "scheduler": "stopped", "worker": "stopped"}


async def test_schedule_takes_exactly_one_of_cron_every_or_at() -> None:
    """``every`` makes an interval schedule; none or two expressions is a ``ValidationError``."""
    world = build_world()
    workflow_id = await _added_and_synced(world)
    schedule = await world.spark.schedule(workflow_id, every="30s", input_value="tick")
    assert schedule.schedule_type == ScheduleType.INTERVAL
    assert schedule.input_value == "tick"
    with pytest.raises(ValidationError):
        await world.spark.schedule(workflow_id)
    with pytest.raises(ValidationError):
        await world.spark.schedule(workflow_id, cron="* * * * *", at="now")


async def test_list_tasks_filters_by_workflow_and_status() -> None:
    """``list_tasks`` narrows by workflow and status, newest first."""
    world = build_world()
    workflow_id = await _added_and_synced(world)
    async with world.spark.running(scheduler=False, grace=1):
        await world.spark.run(workflow_id, "one")
        world.clock.advance(1)
        await world.spark.run(workflow_id, "two")
    page = await world.spark.list_tasks(workflow_id=workflow_id, status=TaskStatus.COMPLETED)
    assert [task.input_data for task in page.items] == ["two", "one"]
    assert (await world.spark.list_tasks(status=TaskStatus.FAILED)).total == 0


async def test_from_ports_wires_a_working_spark_over_your_own_adapters() -> None:
    """``Spark.from_ports`` builds every service over the adapters it is given."""
    connector = FakeConnector()
    connector.add_remote(REMOTE_URL).add_flow("echo")
    clock = FakeClock()
    spark = Spark.from_ports(
        store=FakeStore(clock), connector=connector, secrets=FakeSecretBox(), clock=clock
    )
    source = await spark.add_source(name="flows", source_type="langflow", url=REMOTE_URL)
    workflow = await spark.sync("echo", source_id=source.id)
    async with spark.running(scheduler=False, grace=1):
        task = await spark.run(workflow.id, "by hand")
    assert task.output_data == "by hand"
