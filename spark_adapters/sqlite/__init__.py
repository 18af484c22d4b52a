"""The embedded store: the ``Store`` port on SQLite, with versioned migrations."""

from spark_adapters.sqlite.migrations import LATEST_VERSION, migrate
from spark_adapters.sqlite.store import SqliteStore

__all__ = ["LATEST_VERSION", "SqliteStore", "migrate"]
