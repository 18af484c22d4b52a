"""Numbered SQL migrations shipped as package files, applied once however many processes start.

``migrations/NNNN_name.sql`` takes the schema to version ``NNNN``. Each runs in its own
transaction after ``pg_advisory_xact_lock`` on a key for this schema, and the applied versions
are read again under the lock, so N processes booting together migrate once (a transaction-level
lock also works behind PgBouncer). Never edit a released migration: append a new one.
"""

import hashlib
import importlib.resources
import re

import msgspec

from spark_adapters.postgres.connection import Conn, Database, fetch_all, fetch_one
from spark_core.errors import StoreUnavailableError

_FILE_NAME = re.compile(r"^(\d{4})_(\w+)\.sql$")

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('spark:migrate:' || current_schema(), 0))"

_CREATE_TABLE = """
    CREATE TABLE IF NOT EXISTS spark_schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
    )
"""


class Migration(msgspec.Struct, frozen=True, kw_only=True):
    """One packaged migration file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """The SHA-256 of the file, recorded to notice a released migration edited later."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """Every packaged migration, in version order (numbered 1, 2, … without gaps)."""
    folder = importlib.resources.files("spark_adapters.postgres").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(version=int(match[1]), name=match[2],
                                   sql=entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError("Packaged PostgreSQL migrations must be numbered 1..n without gaps")
    return found


async def _applied(conn: Conn) -> dict[int, str]:
    table = await fetch_one(conn, "SELECT to_regclass('spark_schema_migrations') AS t")
    if table is None or table["t"] is None:
        return {}
    rows = await fetch_all(conn, "SELECT version, checksum FROM spark_schema_migrations")
    return {int(row["version"]): str(row["checksum"]) for row in rows}


def _check_known(applied: dict[int, str], migrations: list[Migration], where: str) -> None:
    latest = len(migrations)
    newer = max(applied, default=0)
    if newer > latest:
        raise StoreUnavailableError(
            f"The database at {where} is at schema version {newer}, newer than this Spark "
            f"knows ({latest}); upgrade Spark")
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise StoreUnavailableError(
                f"Migration {migration.version} ({migration.name}) was changed after it was "
                f"applied to the database at {where}")


async def migrate(db: Database) -> int:
    """Apply the migrations the schema lacks; return the version reached."""
    migrations = load_migrations()
    async with db.connection() as conn:
        applied = await _applied(conn)
        _check_known(applied, migrations, db.description)
        for migration in migrations:
            if migration.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(_LOCK)
                await conn.execute(_CREATE_TABLE)
                # Read again under the lock: another process may have just migrated.
                applied = await _applied(conn)
                _check_known(applied, migrations, db.description)
                if migration.version in applied:
                    continue
                await conn.execute(migration.sql.encode())
                await conn.execute(
                    "INSERT INTO spark_schema_migrations (version, name, checksum) "
                    "VALUES (%s, %s, %s)",
                    [migration.version, migration.name, migration.checksum])
                applied[migration.version] = migration.checksum
    return max(applied, default=0)
