"""The fake store's test hooks imitate the failures they stand for."""

import asyncio

import pytest

from spark_core.errors import StoreUnavailableError
from spark_core.models import SourceId
from spark_core.ports import SourceFilter, TaskFilter, WakeUp, WakeUpKind
from tests.contract.builders import a_workflow, make_source, make_task
from tests.fakes.clock import FakeClock
from tests.fakes.store import FakeStore


@pytest.fixture
def fake(clock: FakeClock) -> FakeStore:
    """An empty fake store."""
    return FakeStore(clock)


async def test_a_broken_fake_fails_every_operation_until_mended(fake: FakeStore) -> None:
    """``broken`` stands for a database that went away: calls raise, ping answers false."""
    source = await make_source(fake)
    fake.broken = True
    with pytest.raises(StoreUnavailableError):
        await fake.sources.get(source.id)
    with pytest.raises(StoreUnavailableError):
        await fake.queue.claim(owner="w1", limit=1, lease_seconds=60)
    assert not await fake.ping()
    fake.broken = False
    assert await fake.ping()
    assert await fake.sources.get(source.id) == source


async def test_fail_next_fails_only_that_many_operations(fake: FakeStore) -> None:
    """A short outage: the next ``n`` calls fail, the following ones work."""
    fake.fail_next(2)
    for _ in range(2):
        with pytest.raises(StoreUnavailableError):
            await fake.sources.list(SourceFilter(), limit=10, offset=0)
    assert (await fake.sources.list(SourceFilter(), limit=10, offset=0)).total == 0


async def test_a_failed_operation_writes_nothing(fake: FakeStore) -> None:
    """An operation that failed did not happen, as a rolled-back transaction."""
    workflow = await a_workflow(fake)
    fake.fail_next()
    with pytest.raises(StoreUnavailableError):
        await make_task(fake, workflow)
    assert not any(hint.kind is WakeUpKind.WORK for hint in fake.wakeups.published)
    assert (await fake.tasks.list(TaskFilter(), limit=10, offset=0)).total == 0


async def test_a_closed_fake_cannot_be_used(fake: FakeStore) -> None:
    """After ``close`` every call fails; ``open`` makes it usable again."""
    await fake.close()
    with pytest.raises(StoreUnavailableError, match="closed"):
        await fake.sources.get(SourceId("x"))
    assert not await fake.ping()
    await fake.open()
    assert await fake.ping()


async def test_a_node_marked_dead_is_reported_until_it_unregisters(fake: FakeStore) -> None:
    """``mark_dead`` stands for a process whose session ended."""
    await fake.nodes.register("alive")
    fake.nodes.mark_dead("gone")
    assert await fake.nodes.dead() == ["gone"]
    await fake.nodes.register("gone")
    assert await fake.nodes.dead() == []
    fake.nodes.mark_dead("gone")
    await fake.nodes.unregister("gone")
    assert await fake.nodes.dead() == []


async def test_muted_hints_are_recorded_but_lost_and_a_reconnect_announces_both(
        fake: FakeStore) -> None:
    """A lost hint reaches nobody; a reconnection delivers ``WORK`` and ``SCHEDULES`` again."""
    received: list[WakeUp] = []
    listener = asyncio.create_task(fake.wakeups.listen(received.append))
    await asyncio.sleep(0)
    fake.wakeups.muted = True
    fake.wakeups.publish(WakeUp(kind=WakeUpKind.CANCEL, id="t1"))
    fake.wakeups.reconnect()
    for _ in range(5):
        await asyncio.sleep(0)
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)
    assert [h.kind for h in received] == [WakeUpKind.WORK, WakeUpKind.SCHEDULES,
                                          WakeUpKind.WORK, WakeUpKind.SCHEDULES]
    assert fake.wakeups.published == [WakeUp(kind=WakeUpKind.CANCEL, id="t1")]
    assert fake.wakeups.listeners == 0
