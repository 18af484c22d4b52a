"""Loopback fakes of the servers Spark talks to, built to answer as the real ones do.

``FakeLangflow`` imitates LangFlow 1.13 and ``FakeHive`` Automagik Hive 0.2.0, following what
``/work/shared/peers/README.md`` records of the real servers. Pytest fixtures that start them
live in ``tests.servers.fixtures``.
"""

import socket

from tests.servers.hive import FakeHive
from tests.servers.langflow import FakeLangflow

__all__ = ["HIVE_KEY", "LANGFLOW_KEY", "FakeHive", "FakeLangflow", "unused_port"]

LANGFLOW_KEY = "sk-langflow-fixture-key-9f8e7d6c5b4a"
"""The key the ``langflow_server`` fixture's fake accepts."""

HIVE_KEY = "hive_fixture_key_0123456789abcdefghijklmnop"
"""The bearer token the ``hive_server`` fixture's fake accepts."""


def unused_port() -> int:
    """A loopback TCP port nothing listens on (free a moment ago), for unreachable sources."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
