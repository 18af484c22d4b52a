"""Fixtures shared by every test package: the loopback LangFlow and Hive fakes, and a fresh
PostgreSQL schema per test where a server is configured (``tests/postgres.py``)."""

from tests.postgres import postgres_url

pytest_plugins = ["tests.servers.fixtures"]

__all__ = ["postgres_url"]
