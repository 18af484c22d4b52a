"""The real clock."""

import asyncio
from datetime import UTC, datetime


class SystemClock:
    """The ``Clock`` port on the system's wall clock and asyncio's sleep."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of real time."""
        await asyncio.sleep(max(0.0, seconds))
