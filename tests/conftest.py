"""Fixtures shared by every test package: the loopback LangFlow and Hive fakes."""

pytest_plugins = ["tests.servers.fixtures"]
