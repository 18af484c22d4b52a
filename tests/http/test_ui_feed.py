"""The dashboard's task feed over the core with fakes: what it announces, what it keeps quiet
about, and how it ends."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from spark_core.models import Workflow
from spark_http.ui.live import TaskChange, TaskFeed
from tests.unit.conftest import World, echo, world

__all__ = ["echo", "world"]

POLL = 0.01


async def _next_change(stream: AsyncIterator[TaskChange | None]) -> TaskChange:
    while True:
        item = await asyncio.wait_for(anext(stream), 5)
        if item is not None:
            return item


@pytest.fixture
def feed(world: World) -> TaskFeed:
    """A feed looking every 10 ms, on the world's clock."""
    return TaskFeed(poll_seconds=POLL, now=world.clock.now)


async def test_a_new_task_and_its_changes_are_announced(
    world: World, echo: Workflow, feed: TaskFeed,
) -> None:
    """A task created while a stream is open arrives as pending, then as cancelled."""
    stream = feed.stream(world.spark, keepalive=5)
    waiting = asyncio.ensure_future(_next_change(stream))
    await asyncio.sleep(POLL * 3)
    task = await world.spark.tasks.create(echo.id, input_data="hi")
    first = await waiting
    assert (first.id, first.status) == (task.id, "pending")
    world.clock.advance(1)
    await world.spark.tasks.cancel(task.id)
    second = await _next_change(stream)
    assert (second.id, second.status) == (task.id, "cancelled")
    await stream.aclose()


async def test_work_already_waiting_is_announced_only_when_it_changes(
    world: World, echo: Workflow, feed: TaskFeed,
) -> None:
    """A task pending before the stream opened is not news; its cancellation is."""
    older = await world.spark.tasks.create(echo.id, input_data="old")
    world.clock.advance(60)
    stream = feed.stream(world.spark, keepalive=5)
    waiting = asyncio.ensure_future(_next_change(stream))
    await asyncio.sleep(POLL * 5)
    assert not waiting.done()
    world.clock.advance(1)
    await world.spark.tasks.cancel(older.id)
    change = await waiting
    assert (change.id, change.status) == (older.id, "cancelled")
    await stream.aclose()


async def test_closing_the_feed_ends_every_stream_and_refuses_new_ones(
    world: World, feed: TaskFeed,
) -> None:
    """Open streams end at once (the server is stopping); a later one ends empty."""
    streams = [feed.stream(world.spark, keepalive=5) for _ in range(3)]
    readers = [asyncio.ensure_future(anext(stream, "ended")) for stream in streams]
    await asyncio.sleep(POLL * 3)
    assert feed.listeners == 3
    feed.close()
    assert await asyncio.wait_for(asyncio.gather(*readers), 2) == ["ended"] * 3
    assert feed.listeners == 0
    assert [item async for item in feed.stream(world.spark)] == []


async def test_a_quiet_stream_gets_keepalives(world: World, feed: TaskFeed) -> None:
    """Nothing happening still yields now and then, so proxies keep the connection."""
    stream = feed.stream(world.spark, keepalive=0.05)
    assert await asyncio.wait_for(anext(stream), 2) is None
    await stream.aclose()
    assert feed.listeners == 0


async def test_a_stream_ends_by_itself_after_its_lifetime(world: World, feed: TaskFeed) -> None:
    """So a server that waits for open responses before stopping never waits long; the
    browser reconnects."""
    stream = feed.stream(world.spark, keepalive=5, lifetime=0.1)
    assert [item async for item in stream] == []
    assert feed.listeners == 0
