"""Cancellation that nothing can swallow.

A background loop catches errors so that one bad pass does not end it. If a library it calls
(a database driver, say) turns the ``CancelledError`` of a stop into an error of its own, the
loop would catch that too and run on, and whoever stopped it would wait forever. Every loop
calls ``raise_if_cancelled`` where it catches errors, and every stop goes through
``cancel_and_wait``, which repeats the request until the task has really ended.
"""

import asyncio
from collections.abc import Iterable
from typing import Any


def raise_if_cancelled() -> None:
    """Raise ``CancelledError`` if the current task has been asked to stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def cancel_and_wait(tasks: Iterable["asyncio.Task[Any]"], *, every: float = 0.1) -> None:
    """Cancel ``tasks`` and return once all have ended, cancelling again every ``every``
    seconds any that swallowed the request (a library that catches ``CancelledError``; a
    cancellation that lands as an inner future completes, which Python 3.11 can lose)."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every)
