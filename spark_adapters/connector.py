"""``SourceRegistry``: the ``SourceConnector`` port, a table of source type -> client factory."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp

from spark_adapters.hive import HiveSource
from spark_adapters.http_session import RequestCounter
from spark_adapters.langflow import LangflowSource
from spark_core.errors import UnknownSourceTypeError
from spark_core.models import Source, SourceType
from spark_core.ports import WorkflowSource

SourceFactory = Callable[[aiohttp.ClientSession, Source, str | None], WorkflowSource]
"""Builds a client for one source from the shared session, its record and its opened key.
The registry hands the client out again for every call to that source, concurrent ones too:
a client keeps no state of a call."""

_KEPT_CLIENTS = 256
"""Clients kept at most (all are dropped when it is reached, or a factory is registered)."""

_ALIASES = {"hive": SourceType.HIVE.value}


def normalise_source_type(value: str) -> str:
    """A source type as stored: trimmed, lower-cased, alias ``hive`` -> ``automagik-hive``."""
    name = value.strip().lower()
    return _ALIASES.get(name, name)


class SourceRegistry:
    """Builds ``WorkflowSource`` clients for source records, one factory per source type."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        factories: Mapping[str, SourceFactory] | None = None,
    ) -> None:
        self._session = session
        self._factories: dict[str, SourceFactory] = {}
        self._clients: dict[tuple[Any, ...], WorkflowSource] = {}
        """Clients made before, by what they were made from: every run of a source asks for
        the same one (the clients keep no state of a call)."""
        for source_type, factory in (factories or {}).items():
            self.register(source_type, factory)

    @classmethod
    def default(
        cls, session: aiohttp.ClientSession, *, request_timeout: float = 10.0,
        count_requests: RequestCounter | None = None,
    ) -> "SourceRegistry":
        """A registry that knows LangFlow and Automagik Hive; ``count_requests`` is told of
        every HTTP request their clients make (the metrics)."""

        def langflow(session: aiohttp.ClientSession, source: Source,
                     api_key: str | None) -> WorkflowSource:
            return LangflowSource(session, source, api_key, request_timeout=request_timeout,
                                  count_requests=count_requests)

        def hive(session: aiohttp.ClientSession, source: Source,
                 api_key: str | None) -> WorkflowSource:
            return HiveSource(session, source, api_key, request_timeout=request_timeout,
                              count_requests=count_requests)

        return cls(session, {SourceType.LANGFLOW.value: langflow, SourceType.HIVE.value: hive})

    def register(self, source_type: str, factory: SourceFactory) -> None:
        """Add (or replace) the factory for ``source_type``."""
        self._factories[normalise_source_type(source_type)] = factory
        self._clients.clear()

    def source_types(self) -> Sequence[str]:
        """The source types this registry can build clients for, sorted."""
        return sorted(self._factories)

    def connect(self, source: Source, api_key: str | None) -> WorkflowSource:
        """A client for ``source``; ``UnknownSourceTypeError`` if its type is not registered.

        The client made for the same source as it stands (its ``updated_at`` moves with every
        change) and the same key is made once and handed out again."""
        made_from = (source.id, source.updated_at, source.source_type, source.url,
                     source.verify_tls, source.name, api_key)
        client = self._clients.get(made_from)
        if client is None:
            client = self._make(source, api_key)
            if len(self._clients) >= _KEPT_CLIENTS:
                self._clients.clear()
            self._clients[made_from] = client
        return client

    def _make(self, source: Source, api_key: str | None) -> WorkflowSource:
        source_type = normalise_source_type(source.source_type)
        factory = self._factories.get(source_type)
        if factory is None:
            known = ", ".join(self.source_types()) or "none"
            raise UnknownSourceTypeError(
                f"Unknown source type {source.source_type!r} (known: {known})",
                errors=[("source_type", f"must be one of: {known}")],
            )
        return factory(self._session, source, api_key)
