"""``Rounds``: concurrent callers of one statement served together, one statement per round.

Under load a node spends most of its CPU per statement in the round trip (psycopg, the pool,
the socket) and the database one commit each. With rounds, callers arriving while a statement
is under way wait for it to end and are then served together by the next, which starts after
all of them asked: a caller alone goes at once, a crowd shares. Used for the snapshot token
every list reads (``SnapshotTokens``) and for the outcomes of runs (``PostgresTaskQueue``).
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from spark_core.errors import SparkError, StoreUnavailableError

I = TypeVar("I")  # noqa: E741 - an item, as R is a result
R = TypeVar("R")


class Rounds(Generic[I, R]):
    """Items served by ``serve`` (one statement for a whole list, answering one result per
    item in order), in rounds run by a task of their own.

    A caller cancelled while it waits is cancelled alone: its item stays in its round. A
    round the database refuses for a reason other than being unreachable is served again
    item by item, so an item it cannot take fails only its own caller. After a round that
    served several callers, the next waits ``join_passes`` passes of the event loop, so
    callers already on their way join it; a caller alone is not held up.
    """

    def __init__(self, serve: Callable[[list[I]], Awaitable[list[R]]], *, name: str,
                 join_passes: int = 0) -> None:
        self._serve = serve
        self._name = name
        self._join_passes = join_passes
        self._waiting: list[tuple[I, asyncio.Future[R]]] = []
        """One future per caller waiting for the next round."""
        self._rounds: asyncio.Task[None] | None = None

    async def submit(self, item: I) -> R:
        """``item``'s result, from a round that starts after this call."""
        loop = asyncio.get_running_loop()
        mine: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, mine))
        if self._rounds is None or self._rounds.done():
            self._rounds = loop.create_task(self._run_rounds(), name=self._name)
        return await mine

    async def close(self) -> None:
        """Stop the rounds; callers still waiting get ``StoreUnavailableError``."""
        rounds, self._rounds = self._rounds, None
        if rounds is not None and not rounds.done():
            rounds.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await rounds
        waiting, self._waiting = self._waiting, []
        _fail(waiting, StoreUnavailableError("The store was closed"))

    async def _run_rounds(self) -> None:
        crowded = False
        while self._waiting:
            if crowded:
                for _ in range(self._join_passes):
                    await asyncio.sleep(0)
            round_, self._waiting = self._waiting, []
            crowded = len(round_) > 1
            await self._serve_round(round_)

    async def _serve_round(self, round_: list[tuple[I, asyncio.Future[R]]]) -> None:
        try:
            results = await self._serve([item for item, _ in round_])
        except (SparkError, OSError) as exc:
            if len(round_) == 1 or isinstance(exc, StoreUnavailableError):
                _fail(round_, exc)
                return
            for one in round_:  # one item may be the one refused
                await self._serve_round([one])
            return
        except BaseException:
            _fail(round_, StoreUnavailableError("The store was closed"))
            raise
        for (_, future), result in zip(round_, results, strict=True):
            if not future.done():
                future.set_result(result)


def _fail(round_: list[tuple[I, "asyncio.Future[R]"]], exc: BaseException) -> None:
    for _, future in round_:
        if not future.done():
            future.set_exception(exc)
