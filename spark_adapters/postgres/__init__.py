"""The networked store: the ``Store`` port on PostgreSQL, for N Spark processes at once."""

from spark_adapters.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
