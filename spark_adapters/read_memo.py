"""``ReadMemo``: the last answers of a list read, reused only while the database is unchanged;
``RunTargets``: the run targets read, reused while the catalogue is unchanged.

A store reads a *change token* before each list read: something that differs whenever any
committed write, by this process or another, may have changed what the read returns (SQLite's
``PRAGMA data_version`` with the store's own commit count; PostgreSQL's current snapshot). The
answer is kept under the read's arguments with the token taken before it; a later read with the
same arguments and the same token gets the same (immutable) answer back without a query. A
token taken before the read can only make a kept answer look older than it is, never newer:
at worst a read is repeated, and an answer is never served after a write committed.

Where reads wait on I/O (PostgreSQL), callers missing the same key under the same token at
once share one read (``read_once``) instead of each reading the same page again.
"""

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from spark_core.ports import RunTarget

T = TypeVar("T")

DEFAULT_ENTRIES = 16
"""How many distinct reads (filters and page) a memo keeps, the least recently used dropped."""


class ReadMemo(Generic[T]):
    """Answers by read arguments, each with the change token taken before it was read."""

    def __init__(self, entries: int = DEFAULT_ENTRIES) -> None:
        self._entries = entries
        self._kept: OrderedDict[Hashable, tuple[Hashable, T]] = OrderedDict()
        self._reading: dict[tuple[Hashable, Hashable], asyncio.Future[T]] = {}

    def get(self, key: Hashable, token: Hashable) -> T | None:
        """The answer kept for ``key`` if it was read under ``token``, else ``None``."""
        kept = self._kept.get(key)
        if kept is None or kept[0] != token:
            return None
        self._kept.move_to_end(key)
        return kept[1]

    def put(self, key: Hashable, token: Hashable, answer: T) -> None:
        """Keep ``answer`` for ``key``, read under ``token`` (taken before the read)."""
        self._kept[key] = (token, answer)
        self._kept.move_to_end(key)
        while len(self._kept) > self._entries:
            self._kept.popitem(last=False)

    async def read_once(self, key: Hashable, token: Hashable,
                        read: Callable[[], Awaitable[T]]) -> T:
        """The answer kept for ``key`` under ``token``, else ``read()``'s, then kept; callers
        asking for the same key under the same token while it is read wait for that read (or
        its error) instead of reading again. A caller cancelled leaves the read to the others.
        """
        kept = self.get(key, token)
        if kept is not None:
            return kept
        flight = self._reading.get((key, token))
        if flight is None:
            flight = asyncio.ensure_future(read())
            self._reading[(key, token)] = flight
            flight.add_done_callback(lambda done: self._landed(key, token, done))
        return await asyncio.shield(flight)

    def _landed(self, key: Hashable, token: Hashable, done: asyncio.Future[T]) -> None:
        del self._reading[(key, token)]
        if not done.cancelled() and done.exception() is None:
            self.put(key, token, done.result())


KEPT_TARGETS = 1024
"""Run targets a store keeps at most (all dropped when this is hit)."""


class RunTargets:
    """The run targets a store has read, each answered again while the store's catalogue
    version (which every change to a workflow or a source raises, in any process) is the one
    it was read at (``RunTarget.catalogue``). A target read at another version drops the
    rest: they were read at an older one, or this one is."""

    def __init__(self) -> None:
        self._kept: dict[str, RunTarget] = {}
        self._version: int | None = None

    def get(self, key: str) -> RunTarget | None:
        """The target kept for ``key`` (a workflow's local or remote id), if any."""
        return self._kept.get(key)

    def keep(self, key: str, target: RunTarget) -> None:
        """Keep ``target``, read for ``key`` at ``target.catalogue``."""
        if target.catalogue != self._version or len(self._kept) >= KEPT_TARGETS:
            self._kept.clear()
            self._version = target.catalogue
        self._kept[key] = target
