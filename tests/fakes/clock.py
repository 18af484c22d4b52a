"""A settable clock: time moves only when a test says so, and sleepers wake exactly then."""

import asyncio
from datetime import UTC, datetime, timedelta


class FakeClock:
    """The ``Clock`` port under the test's control."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        """The current fake time."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until the fake time has advanced by ``seconds``."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + timedelta(seconds=seconds), future))
        try:
            await future
        finally:
            self._sleepers = [(at, f) for at, f in self._sleepers if f is not future]

    def set(self, when: datetime) -> None:
        """Jump to ``when`` and wake every sleeper whose time has come."""
        self._now = when
        for at, future in list(self._sleepers):
            if at <= when and not future.done():
                future.set_result(None)

    def advance(self, seconds: float = 0, **delta: float) -> datetime:
        """Move time forward (``advance(30)`` or ``advance(minutes=5)``) and return it."""
        self.set(self._now + timedelta(seconds=seconds, **delta))
        return self._now
