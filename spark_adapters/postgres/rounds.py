"""``WriteRounds``: concurrent writes of one kind sent together, one statement per round.

Every run writes its outcome with a statement of its own: under load, a node spends most of its
CPU per run in those statements' round trips (psycopg, the pool, the socket) and the database
one commit each. With rounds, a caller on its own writes at once, as before; callers arriving
while a write is under way wait for it to end and are then written together, in one statement
and one commit. Nothing waits on a timer, so a lone caller pays nothing and a crowd shares.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from spark_core.errors import SparkError, StoreUnavailableError

I = TypeVar("I")  # noqa: E741 - an item, as R is a result
R = TypeVar("R")


class WriteRounds(Generic[I, R]):
    """Items written by ``write`` (one statement for a whole list, answering one result per
    item in order), in rounds.

    A round the database refuses for a reason other than being unreachable is written again
    item by item, so an item it cannot take fails only its own caller. A caller cancelled
    while it waits does not take its item out of the round: the write goes on without it.
    """

    def __init__(self, write: Callable[[list[I]], Awaitable[list[R]]]) -> None:
        self._write = write
        self._busy = False
        self._waiting: list[tuple[I, asyncio.Future[R]]] = []
        self._rounds: asyncio.Task[None] | None = None
        """The task writing the next rounds, kept: the event loop holds tasks weakly."""

    async def submit(self, item: I) -> R:
        """Write ``item``: at once when no round is under way, else in the next round."""
        if self._busy:
            future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
            self._waiting.append((item, future))
            return await future
        self._busy = True
        try:
            [result] = await self._write([item])
        finally:
            self._next()
        return result

    def _next(self) -> None:
        """After a write: the callers who arrived meanwhile go in the next round."""
        if self._waiting:
            self._rounds = asyncio.get_running_loop().create_task(
                self._run_rounds(), name="spark-pg-write-rounds")
        else:
            self._busy = False

    async def _run_rounds(self) -> None:
        try:
            while self._waiting:
                round_, self._waiting = self._waiting, []
                await self._write_round(round_)
        finally:
            self._busy = False
            for _, future in self._waiting:  # only when cancelled: nobody writes them now
                if not future.done():
                    future.set_exception(StoreUnavailableError("The store was closed"))
            self._waiting = []

    async def _write_round(self, round_: list[tuple[I, asyncio.Future[R]]]) -> None:
        try:
            results = await self._write([item for item, _ in round_])
        except (SparkError, OSError) as exc:
            if len(round_) == 1 or isinstance(exc, StoreUnavailableError):
                _fail(round_, exc)
                return
            for item, future in round_:  # one item may be the one refused
                await self._write_round([(item, future)])
            return
        except BaseException as exc:
            _fail(round_, exc)
            raise
        for (_, future), result in zip(round_, results, strict=True):
            if not future.done():
                future.set_result(result)


def _fail(round_: list[tuple[I, "asyncio.Future[R]"]], exc: BaseException) -> None:
    for _, future in round_:
        if not future.done():
            future.set_exception(exc if not isinstance(exc, asyncio.CancelledError)
                                 else StoreUnavailableError("The store was closed"))
