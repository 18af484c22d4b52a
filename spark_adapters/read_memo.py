"""``ReadMemo``: the last answers of a list read, reused only while the database is unchanged.

A store reads a *change token* before each list read: something that differs whenever any
committed write, by this process or another, may have changed what the read returns (SQLite's
``PRAGMA data_version`` with the store's own commit count; PostgreSQL's current snapshot). The
answer is kept under the read's arguments with the token taken before it; a later read with the
same arguments and the same token gets the same (immutable) answer back without a query. A
token taken before the read can only make a kept answer look older than it is, never newer:
at worst a read is repeated, and an answer is never served after a write committed.
"""

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_ENTRIES = 16
"""How many distinct reads (filters and page) a memo keeps, the least recently used dropped."""


class ReadMemo(Generic[T]):
    """Answers by read arguments, each with the change token taken before it was read."""

    def __init__(self, entries: int = DEFAULT_ENTRIES) -> None:
        self._entries = entries
        self._kept: OrderedDict[Hashable, tuple[Hashable, T]] = OrderedDict()

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
