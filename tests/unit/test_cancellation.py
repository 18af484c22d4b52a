"""Stopping a background loop works even when something inside it swallows a cancellation."""

import asyncio

from spark_core.cancellation import cancel_and_wait, raise_if_cancelled


async def test_a_task_that_swallows_the_first_cancel_is_still_stopped() -> None:
    """A loop that catches one ``CancelledError`` and carries on ends at the repeated request,
    so a stop never hangs."""
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait([task], every=0.01), 2)
    assert task.cancelled()
    assert swallowed == 1


async def test_a_loop_catching_errors_stops_when_a_library_turned_the_cancel_into_one() -> None:
    """A driver that converts the cancellation into its own error would keep a loop that
    catches errors alive; ``raise_if_cancelled`` in the handler ends it."""
    passes = 0

    async def driver_call() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError as exc:
            raise RuntimeError("query cancelled") from exc

    async def loop() -> None:
        nonlocal passes
        while True:
            try:
                await driver_call()
            except RuntimeError:
                raise_if_cancelled()
                passes += 1

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 2)
    assert task.cancelled()
    assert passes == 0
