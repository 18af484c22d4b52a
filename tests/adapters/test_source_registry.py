"""``SourceRegistry``: the source type -> client table behind the ``SourceConnector`` port."""

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import msgspec
import pytest

from spark_adapters.connector import SourceRegistry, normalise_source_type
from spark_adapters.hive import HiveSource
from spark_adapters.langflow import LangflowSource
from spark_core.errors import UnknownSourceTypeError, ValidationError
from spark_core.models import RemoteFlow, RunRequest, RunResult, Source, SourceId
from spark_core.ports import SourceConnector

pytest_plugins = ["tests.servers.fixtures"]

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def source_of_type(source_type: str) -> Source:
    """A source record of ``source_type`` (never contacted by these tests)."""
    return Source(id=SourceId("src-3"), name="s", source_type=source_type,
                  url="http://127.0.0.1:9", created_at=NOW, updated_at=NOW)


class StubSource:
    """A custom source type a plug-in might add."""

    def __init__(self, session: aiohttp.ClientSession, source: Source,
                 api_key: str | None) -> None:
        self.session = session
        self.source = source
        self.api_key = api_key

    async def check(self) -> dict[str, Any]:
        """Always healthy."""
        return {"source_type": "stub"}

    async def list_flows(self) -> list[RemoteFlow]:
        """Nothing to offer."""
        return []

    async def get_flow(self, remote_id: str) -> RemoteFlow:
        """Knows one flow by any id."""
        return RemoteFlow(remote_id=remote_id, name="stub", flow_type="stub")

    async def run(self, request: RunRequest) -> RunResult:
        """Echoes."""
        return RunResult(output_text=request.input_value, raw=None)


def test_default_registry_knows_langflow_and_hive(http_session: aiohttp.ClientSession) -> None:
    """The shipped source types are registered and listed sorted."""
    assert list(SourceRegistry.default(http_session).source_types()) == [
        "automagik-hive", "langflow"]


def test_default_registry_builds_the_matching_adapter(
    http_session: aiohttp.ClientSession,
) -> None:
    """``langflow`` gives a LangflowSource; ``automagik-hive`` and alias ``hive`` a HiveSource."""
    registry = SourceRegistry.default(http_session)
    assert isinstance(registry.connect(source_of_type("langflow"), "k"), LangflowSource)
    assert isinstance(registry.connect(source_of_type("automagik-hive"), "k"), HiveSource)
    assert isinstance(registry.connect(source_of_type("hive"), None), HiveSource)


def test_registry_satisfies_the_connector_port(http_session: aiohttp.ClientSession) -> None:
    """A registry can be handed to the core wherever a ``SourceConnector`` is wanted."""
    connector: SourceConnector = SourceRegistry.default(http_session)
    assert "langflow" in connector.source_types()


def test_connect_to_an_unknown_type_raises_and_names_the_known_ones(
    http_session: aiohttp.ClientSession,
) -> None:
    """An unregistered type is an UnknownSourceTypeError (a ValidationError on source_type)."""
    registry = SourceRegistry.default(http_session)
    with pytest.raises(UnknownSourceTypeError, match="automagik-hive, langflow") as caught:
        registry.connect(source_of_type("n8n"), None)
    assert isinstance(caught.value, ValidationError)
    assert caught.value.errors[0][0] == "source_type"


def test_register_adds_a_custom_type_built_with_the_shared_session(
    http_session: aiohttp.ClientSession,
) -> None:
    """Code outside the package can add a type; its factory gets the session, source and key."""
    registry = SourceRegistry.default(http_session)
    registry.register("Stub", StubSource)
    client = registry.connect(source_of_type("stub"), "secret")
    assert isinstance(client, StubSource)
    assert client.session is http_session
    assert client.api_key == "secret"
    assert "stub" in registry.source_types()


def test_a_client_is_made_once_per_source_as_it_stands_and_key(
    http_session: aiohttp.ClientSession,
) -> None:
    """Every run of a source asks for a client: the same source and key get the same one; a
    changed source (its ``updated_at`` moves), another key or a factory registered since get
    a new one, made from what is asked now."""
    registry = SourceRegistry.default(http_session)
    registry.register("stub", StubSource)
    source = source_of_type("stub")
    client = registry.connect(source, "key-1")
    assert registry.connect(source, "key-1") is client
    moved = msgspec.structs.replace(source, url="http://127.0.0.1:10",
                                    updated_at=NOW + timedelta(seconds=1))
    changed = registry.connect(moved, "key-1")
    assert isinstance(changed, StubSource)
    assert changed.source.url == "http://127.0.0.1:10"
    rekeyed = registry.connect(source, "key-2")
    assert isinstance(rekeyed, StubSource)
    assert rekeyed is not client
    assert rekeyed.api_key == "key-2"

    class OtherStub(StubSource):
        """A replacement factory."""

    registry.register("stub", OtherStub)
    assert isinstance(registry.connect(source, "key-1"), OtherStub)


def test_an_empty_registry_knows_nothing(http_session: aiohttp.ClientSession) -> None:
    """Built without factories, every connect fails and the error says none are known."""
    registry = SourceRegistry(http_session)
    assert list(registry.source_types()) == []
    with pytest.raises(UnknownSourceTypeError, match="known: none"):
        registry.connect(source_of_type("langflow"), None)


@pytest.mark.parametrize(("given", "expected"), [
    ("langflow", "langflow"),
    ("LangFlow", "langflow"),
    ("hive", "automagik-hive"),
    (" HIVE ", "automagik-hive"),
    ("automagik-hive", "automagik-hive"),
    ("other", "other"),
])
def test_normalise_source_type_maps_the_hive_alias(given: str, expected: str) -> None:
    """Source types are trimmed and lower-cased; ``hive`` means ``automagik-hive``."""
    assert normalise_source_type(given) == expected

