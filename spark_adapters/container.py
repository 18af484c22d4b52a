"""The composition root: one dependency-injector container wiring adapters into the core.

The shared aiohttp session and the opened store are async resources (``store`` is the configured
adapter, which ``opened_store`` opens and migrates on the way in and closes on the way out; a
test or program overrides ``store`` with any other adapter and gets the same handling), so
providers that depend on them resolve to
awaitables: entrypoints call ``await container.init_resources()`` and then
``await container.spark()`` once, and ``await container.shutdown_resources()`` at the end.
``open_spark`` does all three. The facade itself is built by ``Spark.from_ports``, the same
path a program with adapters of its own takes.
"""

import contextlib
import importlib.metadata
import inspect
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
from dependency_injector import containers, providers

from spark_adapters.clock import SystemClock
from spark_adapters.connector import SourceRegistry
from spark_adapters.metrics import PrometheusMetrics
from spark_adapters.notifications import WebhookNotifier
from spark_adapters.secrets import FernetSecretBox
from spark_adapters.settings import Settings
from spark_adapters.sqlite import SqliteStore
from spark_core.facade import Spark
from spark_core.ports import Clock, Notifier, SecretBox, Store


async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    """One client session per process, closed on shutdown (the source clients count their
    own requests: ``SourceRegistry.default``)."""
    connector = aiohttp.TCPConnector(limit=256, limit_per_host=64, ttl_dns_cache=300)
    session = aiohttp.ClientSession(connector=connector, raise_for_status=False)
    try:
        yield session
    finally:
        await session.close()


def webhook_notifier(session: aiohttp.ClientSession, settings: Settings) -> Notifier:
    """Webhooks for failed and recovered runs: the one ``SPARK_WEBHOOK_URL`` names (if set)
    and each workflow's own, signed with ``SPARK_WEBHOOK_SECRET``."""
    return WebhookNotifier(session, url=settings.webhook_url or None,
                           secret=settings.webhook_secret)


def spark_version() -> str:
    """The installed version of Spark."""
    try:
        return importlib.metadata.version("spark")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def fire_retention(settings: Settings) -> timedelta:
    """How long the fire ledger keeps its records (``SPARK_FIRE_RETENTION_DAYS``)."""
    return timedelta(days=settings.fire_retention_days)


def task_retention(settings: Settings) -> timedelta | None:
    """How long finished tasks are kept (``SPARK_TASK_RETENTION_DAYS``; 0 keeps them)."""
    days = settings.task_retention_days
    return timedelta(days=days) if days > 0 else None


def secret_box(settings: Settings) -> SecretBox:
    """The box sealing source keys: from ``SPARK_ENCRYPTION_KEY`` or a generated key file."""
    if settings.encryption_key:
        return FernetSecretBox.from_passphrase(settings.encryption_key)
    return FernetSecretBox.from_key_file(settings.secret_key_path)


def configured_store(settings: Settings, clock: Clock | None = None) -> Store:
    """The store ``SPARK_DATABASE_URL`` names (SQLite under the data dir by default), not yet
    opened. SQLite judges due times and leases by ``clock`` (on one machine it is the
    database's clock); PostgreSQL always by its own ``now()``."""
    if settings.database_kind == "postgresql":
        from spark_adapters.postgres import PostgresStore  # psycopg loads only when used

        return PostgresStore(
            settings.postgres_url,
            pool_size=settings.database_pool_size,
            poll_only=settings.database_poll_only,
        )
    return SqliteStore(settings.database_path, clock=clock)


async def opened(store: Store, *, migrate: bool = True) -> AsyncIterator[Store]:
    """``store`` opened (and migrated) for the container's lifetime, then closed."""
    await store.open()
    try:
        if migrate:
            await store.migrate()
        yield store
    finally:
        await store.close()


class Container(containers.DeclarativeContainer):
    """Everything Spark is made of, built from ``settings``; override any provider in tests."""

    settings = providers.Dependency(instance_of=Settings)

    metrics = providers.Singleton(PrometheusMetrics, version=providers.Callable(spark_version))
    session = providers.Resource(http_session)
    clock = providers.Singleton(SystemClock)
    store = providers.Singleton(configured_store, settings, clock)  # override to swap stores
    opened_store = providers.Resource(opened, store)
    secrets = providers.Singleton(secret_box, settings)
    connector = providers.Singleton(SourceRegistry.default, session,
                                    count_requests=metrics.provided.count_source_request)
    notifier = providers.Singleton(webhook_notifier, session, settings)
    spark = providers.Singleton(
        Spark.from_ports,
        store=opened_store,
        connector=connector,
        secrets=secrets,
        clock=clock,
        concurrency=settings.provided.workers,
        default_timeout=settings.provided.http_timeout,
        lease_seconds=settings.provided.lease_seconds,
        task_retention=providers.Callable(task_retention, settings),
        metrics=metrics,
        fire_retention=providers.Callable(fire_retention, settings),
        notifier=notifier,
    )


def build_container(settings: Settings) -> Container:
    """A container for ``settings``; nothing is opened until its resources are initialised."""
    return Container(settings=providers.Object(settings))


@contextlib.asynccontextmanager
async def open_spark(container: Container) -> AsyncIterator[Spark]:
    """Open the container's resources, yield the facade, and close everything after."""
    await _settled(container.init_resources())
    try:
        spark = await _settled(container.spark())
        assert isinstance(spark, Spark)
        yield spark
    finally:
        await _settled(container.shutdown_resources())


async def _settled(value: object) -> object:
    """Await ``value`` if the container handed back an awaitable (it does when a provider
    depends on the async session, and not when a test has overridden that dependency)."""
    return await value if inspect.isawaitable(value) else value
