"""``connect``: Spark for a program in one line, as an ``async with`` block.

It builds the container from settings (or takes one you built and overrode), registers any extra
source types, opens the shared HTTP session and the store, runs the worker and scheduler in the
current event loop, and on exit stops them cleanly and closes everything.
"""

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
from dependency_injector import providers

from spark_adapters.connector import SourceFactory, SourceRegistry
from spark_adapters.container import Container, build_container, open_spark
from spark_adapters.settings import Settings, load_settings
from spark_core.facade import Spark

SHUTDOWN_GRACE = 10.0


@contextlib.asynccontextmanager
async def connect(
    settings: Settings | None = None,
    *,
    container: Container | None = None,
    source_types: Mapping[str, SourceFactory] | None = None,
    run_background: bool = True,
    shutdown_grace: float = SHUTDOWN_GRACE,
    **overrides: Any,
) -> AsyncIterator[Spark]:
    """Open Spark and yield its facade; stop and close everything when the block ends.

    Settings come from ``settings``, or else from ``.env`` and the environment with
    ``overrides`` (``Settings`` field names such as ``data_dir`` or ``workers``) on top. Give
    ``container`` instead to use one you built and overrode (another store, clock or
    connector). ``source_types`` adds source types (``{"webhook": WebhookSource}``) next to
    LangFlow and Hive. With ``run_background`` (the default) the worker and scheduler run in
    this event loop while the block lasts, so runs execute and schedules fire; runs in flight
    get ``shutdown_grace`` seconds to finish on exit.
    """
    if container is not None and (settings is not None or overrides):
        raise TypeError("connect() takes either a container or settings/overrides, not both")
    unknown = sorted(set(overrides) - set(Settings.__struct_fields__))
    if unknown:
        raise TypeError(f"connect() got unknown settings: {', '.join(unknown)}")
    if container is None:
        container = build_container(settings or load_settings(overrides=overrides))
    if source_types:
        container.connector.override(
            providers.Singleton(_registry_with, container.session, dict(source_types))
        )
    async with open_spark(container) as spark:
        if not run_background:
            yield spark
            return
        async with spark.running(grace=shutdown_grace):
            yield spark


def _registry_with(
    session: aiohttp.ClientSession, source_types: dict[str, SourceFactory]
) -> SourceRegistry:
    """The default registry (LangFlow, Hive) plus ``source_types``."""
    registry = SourceRegistry.default(session)
    for source_type, factory in source_types.items():
        registry.register(source_type, factory)
    return registry
