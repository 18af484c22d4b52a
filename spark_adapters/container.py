"""The composition root: one dependency-injector container wiring adapters into the core.

The shared aiohttp session is an async resource, so providers that depend on it resolve to
awaitables: entrypoints call ``await container.init_resources()`` and then
``await container.spark()`` once, and ``await container.shutdown_resources()`` at the end.
``open_spark`` does all three.
"""

import contextlib
import inspect
from collections.abc import AsyncIterator

import aiohttp
from dependency_injector import containers, providers

from spark_adapters.clock import SystemClock
from spark_adapters.connector import SourceRegistry
from spark_adapters.secrets import FernetSecretBox
from spark_adapters.settings import Settings
from spark_adapters.sqlite import SqliteStore
from spark_core.facade import Spark
from spark_core.ports import SecretBox
from spark_core.scheduler import Scheduler
from spark_core.services.schedules import ScheduleService
from spark_core.services.sources import SourceService
from spark_core.services.tasks import TaskService
from spark_core.services.workflows import WorkflowService
from spark_core.signals import TaskSignals
from spark_core.worker import Worker


async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    """One client session per process, closed on shutdown."""
    connector = aiohttp.TCPConnector(limit=256, limit_per_host=64, ttl_dns_cache=300)
    session = aiohttp.ClientSession(connector=connector, raise_for_status=False)
    try:
        yield session
    finally:
        await session.close()


def secret_box(settings: Settings) -> SecretBox:
    """The box sealing source keys: from ``SPARK_ENCRYPTION_KEY`` or a generated key file."""
    if settings.encryption_key:
        return FernetSecretBox.from_passphrase(settings.encryption_key)
    return FernetSecretBox.from_key_file(settings.secret_key_path)


def sqlite_store(settings: Settings) -> SqliteStore:
    """The embedded store at the configured path, migrated to the current schema."""
    return SqliteStore(settings.database_path)


class Container(containers.DeclarativeContainer):
    """Everything Spark is made of, built from ``settings``; override any provider in tests."""

    settings = providers.Dependency(instance_of=Settings)

    session = providers.Resource(http_session)
    store = providers.Singleton(sqlite_store, settings)
    clock = providers.Singleton(SystemClock)
    secrets = providers.Singleton(secret_box, settings)
    connector = providers.Singleton(SourceRegistry.default, session)
    signals = providers.Singleton(TaskSignals)

    source_service = providers.Singleton(
        SourceService, store=store, connector=connector, secrets=secrets, clock=clock
    )
    workflow_service = providers.Singleton(
        WorkflowService, store=store, sources=source_service, clock=clock
    )
    task_service = providers.Singleton(
        TaskService, store=store, workflows=workflow_service, clock=clock, signals=signals
    )
    schedule_service = providers.Singleton(
        ScheduleService, store=store, workflows=workflow_service, clock=clock, signals=signals
    )
    worker = providers.Singleton(
        Worker,
        store=store,
        sources=source_service,
        clock=clock,
        signals=signals,
        concurrency=settings.provided.workers,
        default_timeout=settings.provided.http_timeout,
        lease_seconds=settings.provided.lease_seconds,
    )
    scheduler = providers.Singleton(
        Scheduler, store=store, schedules=schedule_service, clock=clock, signals=signals
    )
    spark = providers.Singleton(
        Spark,
        sources=source_service,
        workflows=workflow_service,
        tasks=task_service,
        schedules=schedule_service,
        worker=worker,
        scheduler=scheduler,
        store=store,
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
        close = getattr(container.store(), "close", None)
        if callable(close):  # the port has no close(); a store replaced in tests may not either
            close()


async def _settled(value: object) -> object:
    """Await ``value`` if the container handed back an awaitable (it does when a provider
    depends on the async session, and not when a test has overridden that dependency)."""
    return await value if inspect.isawaitable(value) else value
