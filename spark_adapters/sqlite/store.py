"""``SqliteStore``: the ``Store`` port on one SQLite file, the embedded default.

WAL mode lets readers work while one writer commits; ``BEGIN IMMEDIATE`` on every write makes
two processes on the same file queue for the write lock (``busy_timeout``) rather than fail.
The methods live in one module per table; this class joins them to one connection.
"""

from pathlib import Path

import sqlite_utils

from spark_adapters.sqlite.connection import (
    Connection,
    open_database,
    scalar,
    translate_errors,
)
from spark_adapters.sqlite.migrations import LATEST_VERSION
from spark_adapters.sqlite.migrations import migrate as migrate_database
from spark_adapters.sqlite.migrations import schema_version as read_schema_version
from spark_adapters.sqlite.schedules import ScheduleTable
from spark_adapters.sqlite.sources import SourceTable
from spark_adapters.sqlite.tasks import TaskTable
from spark_adapters.sqlite.workflows import WorkflowTable
from spark_core.errors import SparkError
from spark_core.ports import Store


class SqliteStore(SourceTable, WorkflowTable, ScheduleTable, TaskTable, Store):
    """Spark's state in a SQLite file (or ``":memory:"``), migrated to the current schema on open.

    Example::

        store = SqliteStore(".spark/spark.db")
        page = store.list_workflows(WorkflowFilter(q="support"), limit=50, offset=0)
        store.close()
    """

    def __init__(self, path: str | Path) -> None:
        self.path = path
        try:
            with translate_errors():
                self._connection = Connection(open_database(path))
        except OSError as exc:
            raise SparkError(f"Cannot open the database at {path} ({exc.strerror})") from exc
        try:
            self.migrate()
        except BaseException:
            self._connection.close()
            raise

    @property
    def db(self) -> sqlite_utils.Database:
        """The underlying ``sqlite_utils.Database``, for diagnostics and tooling."""
        return self._connection.db

    def schema_version(self) -> int:
        """The schema version of the open database."""
        with self._connection.read() as db:
            return read_schema_version(db)

    def migrate(self) -> int:
        """Bring the database up to this code's schema version; returns that version."""
        with self._connection.lock():
            version = read_schema_version(self.db)
            if version > LATEST_VERSION:
                raise SparkError(
                    f"The database at {self.path} has schema version {version}, newer than this "
                    f"Spark understands ({LATEST_VERSION}); upgrade Spark"
                )
            return migrate_database(self.db)

    def is_healthy(self) -> bool:
        """True when the database answers ``SELECT 1``."""
        try:
            with self._connection.read() as db:
                return bool(scalar(db, "SELECT 1") == 1)
        except SparkError:
            return False

    def close(self) -> None:
        """Close the connection; the store cannot be used afterwards."""
        self._connection.close()

    def __enter__(self) -> "SqliteStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
