"""Fixtures for the system tests: ``servers`` (real `spark serve` processes on a temporary data
dir) and ``langflow`` (a loopback LangFlow they call, serving from its own thread), both from
``tests.processes``."""

from datetime import datetime

from tests.processes import langflow, servers


def parse_time(text: str) -> datetime:
    """An API datetime (ISO-8601 with offset)."""
    return datetime.fromisoformat(text)


__all__ = ["langflow", "parse_time", "servers"]
