"""``HiveSource`` against a loopback Automagik Hive fake."""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from spark_adapters.hive import HiveSource
from spark_core.errors import (
    RemoteNotFoundError,
    RemoteRunError,
    RunTimeoutError,
    SourceError,
    SourceProtocolError,
    SourceRejectedError,
    SourceUnavailableError,
)
from spark_core.models import RunRequest, Source, SourceId
from tests.servers import HIVE_KEY, FakeHive, unused_port
from tests.servers.base import CannedServer

pytest_plugins = ["tests.servers.fixtures"]

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def hive_source(url: str) -> Source:
    """A Hive source record pointing at ``url``."""
    return Source(id=SourceId("src-2"), name="hive", source_type="automagik-hive", url=url,
                  created_at=NOW, updated_at=NOW)


def run_request(remote_id: str = "echo-agent", text: str = "hello", *,
                flow_type: str = "hive_agent", timeout: float = 10.0,
                session_id: str = "task-1") -> RunRequest:
    """A run of one agent, team or workflow."""
    return RunRequest(remote_flow_id=remote_id, flow_type=flow_type, input_value=text,
                      session_id=session_id, timeout=timeout)


@pytest.fixture
def client(http_session: aiohttp.ClientSession, hive_server: FakeHive) -> HiveSource:
    """A ``HiveSource`` with the fake's key."""
    return HiveSource(http_session, hive_source(hive_server.url), HIVE_KEY)


@pytest.fixture
async def canned() -> AsyncIterator[list[CannedServer]]:
    """Starts ``CannedServer``s a test appends and stops them afterwards."""
    servers: list[CannedServer] = []
    yield servers
    for server in servers:
        await server.stop()


async def start_canned(servers: list[CannedServer], body: str, **options: object
                       ) -> CannedServer:
    """Start a ``CannedServer`` and keep it for cleanup."""
    server = CannedServer(body, **options)  # type: ignore[arg-type]
    await server.start()
    servers.append(server)
    return server


class HiveWithoutOwnHealth(FakeHive):
    """A Hive build whose ``/api/v1/health`` route is missing (plain AgentOS)."""

    async def _hive_health(self, request: web.Request) -> web.Response:
        return web.json_response({"detail": "Not Found"}, status=404)


# -- check ------------------------------------------------------------------------------------


async def test_check_returns_the_server_info_and_source_type(client: HiveSource) -> None:
    """A healthy server with a good key gives its ``/`` info plus the source type."""
    info = await client.check()
    assert info["source_type"] == "automagik-hive"
    assert info["version"] == "0.2.0"
    assert info["name"] == "AgentOS API"


async def test_check_proves_the_key_with_a_listing_after_the_public_routes(
    client: HiveSource, hive_server: FakeHive,
) -> None:
    """Health and info are public on Hive; only the ``/agents`` call tests the key."""
    await client.check()
    assert [path for _, path in hive_server.requests] == ["/api/v1/health", "/", "/agents"]


@pytest.mark.parametrize(("api_key", "detail"), [
    ("hive_wrong_key_0000000000000000000000000", "Invalid authentication token"),
    (None, "Authorization header required"),
])
async def test_check_with_a_wrong_or_missing_key_raises_rejected(
    http_session: aiohttp.ClientSession, hive_server: FakeHive, api_key: str | None,
    detail: str,
) -> None:
    """Hive's 401 is a SourceRejectedError carrying the server's reason."""
    source = HiveSource(http_session, hive_source(hive_server.url), api_key)
    with pytest.raises(SourceRejectedError, match="rejected the API key") as caught:
        await source.check()
    assert caught.value.status == 401
    assert detail in str(caught.value)


async def test_check_with_auth_off_accepts_no_key(
    http_session: aiohttp.ClientSession, hive_server: FakeHive,
) -> None:
    """With auth off, as Hive ships by default, a source without a key checks fine."""
    hive_server.api_key = None
    source = HiveSource(http_session, hive_source(hive_server.url), None)
    assert (await source.check())["source_type"] == "automagik-hive"


async def test_check_of_an_unreachable_port_raises_unavailable(
    http_session: aiohttp.ClientSession,
) -> None:
    """Connection refused is a transient SourceUnavailableError naming the URL."""
    url = f"http://127.0.0.1:{unused_port()}"
    source = HiveSource(http_session, hive_source(url), HIVE_KEY)
    with pytest.raises(SourceUnavailableError, match="Could not reach") as caught:
        await source.check()
    assert url in str(caught.value)
    assert caught.value.transient


async def test_check_of_an_unhealthy_server_raises_unavailable(
    client: HiveSource, hive_server: FakeHive,
) -> None:
    """When both health routes fail, the error quotes what each answered."""
    hive_server.healthy = False
    with pytest.raises(SourceUnavailableError, match="not healthy") as caught:
        await client.check()
    assert "/api/v1/health 503: Database unreachable" in str(caught.value)
    assert "/health 500: Internal Server Error" in str(caught.value)


async def test_check_falls_back_to_the_agentos_health_route(
    http_session: aiohttp.ClientSession,
) -> None:
    """A server without Hive's own health route is checked through ``/health``."""
    server = HiveWithoutOwnHealth(api_key=HIVE_KEY)
    await server.start()
    try:
        source = HiveSource(http_session, hive_source(server.url), HIVE_KEY)
        await source.check()
        assert [path for _, path in server.requests][:2] == ["/api/v1/health", "/health"]
    finally:
        await server.stop()


# -- list and get -----------------------------------------------------------------------------


async def test_list_flows_gives_agents_teams_and_workflows_with_their_types(
    client: HiveSource,
) -> None:
    """Each kind maps to its flow type; agents and teams come without a description."""
    flows = {flow.remote_id: flow for flow in await client.list_flows()}
    assert {id_: flow.flow_type for id_, flow in flows.items()} == {
        "echo-agent": "hive_agent", "upper-agent": "hive_agent", "slow-agent": "hive_agent",
        "fail-agent": "hive_agent", "echo-team": "hive_team", "echo-workflow": "hive_workflow",
    }
    assert flows["echo-agent"].name == "Echo Agent"
    assert flows["echo-agent"].description is None
    assert flows["echo-team"].description is None
    assert (flows["echo-workflow"].description or "").startswith("Offline test workflow")
    assert flows["echo-agent"].data is not None
    assert flows["echo-agent"].data["model"]["provider"] == "Offline"


async def test_list_flows_reads_legacy_id_fields(
    http_session: aiohttp.ClientSession, canned: list[CannedServer],
) -> None:
    """Items that carry ``agent_id`` (older servers) rather than ``id`` are still listed."""
    server = await start_canned(canned, json.dumps([{"agent_id": "old", "name": "Old"}]))
    flows = await HiveSource(http_session, hive_source(server.url), HIVE_KEY).list_flows()
    assert [flow.remote_id for flow in flows] == ["old", "old", "old"]


async def test_get_flow_finds_a_team_by_id(client: HiveSource) -> None:
    """A team id resolves to the team, wherever it sits among the three listings."""
    flow = await client.get_flow("echo-team")
    assert flow.flow_type == "hive_team"
    assert flow.name == "Echo Team"


async def test_get_flow_of_an_unknown_id_raises_remote_not_found(client: HiveSource) -> None:
    """An id in no listing is a RemoteNotFoundError naming it."""
    with pytest.raises(RemoteNotFoundError, match="'ghost'"):
        await client.get_flow("ghost")


async def test_listing_with_a_wrong_key_raises_rejected(
    http_session: aiohttp.ClientSession, hive_server: FakeHive,
) -> None:
    """Listings need the key when auth is on."""
    source = HiveSource(http_session, hive_source(hive_server.url), "hive_nope")
    with pytest.raises(SourceRejectedError):
        await source.list_flows()


# -- run --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("remote_id", "flow_type", "answer"), [
    ("echo-agent", "hive_agent", "echo: hello"),
    ("upper-agent", "hive_agent", "HELLO"),
    ("echo-team", "hive_team", "team: Agent Upper Agent: echo: helloAgent Upper Agent: HELLO"),
    ("echo-workflow", "hive_workflow", "ECHO: HELLO"),
])
async def test_run_returns_the_content_of_agents_teams_and_workflows(
    client: HiveSource, remote_id: str, flow_type: str, answer: str,
) -> None:
    """The answer is the top-level ``content``; ``raw`` is the whole response."""
    result = await client.run(run_request(remote_id, "hello", flow_type=flow_type))
    assert result.output_text == answer
    assert result.raw["status"] == "COMPLETED"
    assert result.raw["session_id"] == "task-1"


async def test_run_posts_a_form_with_bearer_auth(
    client: HiveSource, hive_server: FakeHive,
) -> None:
    """Runs send form fields (not JSON), ``stream=false``, the session, and both key headers."""
    await client.run(run_request(session_id="s-7"))
    [sent] = hive_server.runs
    assert sent["content_type"] == "application/x-www-form-urlencoded"
    assert sent["form"] == {"message": "hello", "stream": "false", "session_id": "s-7",
                            "user_id": "spark"}
    assert sent["headers"]["Authorization"] == f"Bearer {HIVE_KEY}"
    assert sent["headers"]["x-api-key"] == HIVE_KEY


async def test_each_run_uses_a_fresh_connection_so_a_run_after_a_failure_is_not_lost(
    client: HiveSource, hive_server: FakeHive,
) -> None:
    """A real Hive closes the connection of a failed run without notice; runs ask for
    ``Connection: close`` so the next run never rides that dying connection."""
    hive_server.fail_with = 500
    with pytest.raises(SourceUnavailableError):
        await client.run(run_request())
    hive_server.fail_with = None
    result = await client.run(run_request())
    assert result.output_text == "echo: hello"
    assert [run["headers"]["Connection"] for run in hive_server.runs] == ["close", "close"]


async def test_run_of_a_failing_agent_raises_transient_unavailable_with_excerpt(
    client: HiveSource,
) -> None:
    """Hive's plain-text 500 is a transient SourceUnavailableError with status and body."""
    with pytest.raises(SourceUnavailableError) as caught:
        await client.run(run_request("fail-agent"))
    assert caught.value.status == 500
    assert caught.value.transient
    assert "500" in str(caught.value)
    assert "Internal Server Error" in str(caught.value)


@pytest.mark.parametrize(("flow_type", "detail"), [
    ("hive_agent", "Agent not found"),
    ("hive_team", "Team not found"),
    ("hive_workflow", "Workflow not found"),
])
async def test_run_of_an_unknown_id_raises_remote_not_found(
    client: HiveSource, flow_type: str, detail: str,
) -> None:
    """Hive's 404 on a run is a RemoteNotFoundError with its detail."""
    with pytest.raises(RemoteNotFoundError, match=detail):
        await client.run(run_request("ghost", flow_type=flow_type))


async def test_run_of_an_unsupported_flow_type_fails_without_calling_the_server(
    client: HiveSource, hive_server: FakeHive,
) -> None:
    """A non-Hive flow type is a RemoteRunError and sends nothing."""
    with pytest.raises(RemoteRunError, match="'langflow'"):
        await client.run(run_request(flow_type="langflow"))
    assert hive_server.runs == []


async def test_run_answering_garbage_raises_protocol_error(
    client: HiveSource, hive_server: FakeHive,
) -> None:
    """A 200 that is not JSON is a SourceProtocolError, not retried."""
    hive_server.garbage = True
    with pytest.raises(SourceProtocolError) as caught:
        await client.run(run_request())
    assert not caught.value.transient


async def test_run_slower_than_its_timeout_raises_run_timeout(
    client: HiveSource, hive_server: FakeHive,
) -> None:
    """The slow agent outlasting ``RunRequest.timeout`` is a RunTimeoutError."""
    hive_server.slow_seconds = 2.0
    with pytest.raises(RunTimeoutError):
        await client.run(run_request("slow-agent", timeout=0.2))


async def test_run_with_a_body_over_the_cap_raises_protocol_error(
    client: HiveSource, hive_server: FakeHive,
) -> None:
    """A streamed body past 10 MB is refused rather than read into memory."""
    hive_server.huge = True
    with pytest.raises(SourceProtocolError, match="larger than"):
        await client.run(run_request())


async def test_run_json_encodes_structured_content(
    http_session: aiohttp.ClientSession, canned: list[CannedServer],
) -> None:
    """Content that is not a string (structured output) becomes its JSON text."""
    server = await start_canned(canned, json.dumps({"content": {"a": [1, 2]},
                                                    "status": "COMPLETED"}))
    source = HiveSource(http_session, hive_source(server.url), HIVE_KEY)
    result = await source.run(run_request())
    assert json.loads(result.output_text or "") == {"a": [1, 2]}


async def test_run_reported_as_an_error_raises_remote_run_error(
    http_session: aiohttp.ClientSession, canned: list[CannedServer],
) -> None:
    """A 200 with ``status: ERROR`` is the flow reporting failure: not transient."""
    server = await start_canned(canned, json.dumps({"content": "model exploded",
                                                    "status": "ERROR"}))
    source = HiveSource(http_session, hive_source(server.url), HIVE_KEY)
    with pytest.raises(RemoteRunError, match="model exploded") as caught:
        await source.run(run_request())
    assert not caught.value.transient


# -- secrets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 404, 422, 500])
async def test_the_api_key_never_appears_in_an_error_even_when_the_server_echoes_it(
    http_session: aiohttp.ClientSession, canned: list[CannedServer], status: int,
) -> None:
    """Errors are scrubbed of the key, even from a body that repeats the bearer header."""
    server = await start_canned(canned, "you sent ", status=status, content_type="text/plain",
                                echo_header="Authorization")
    source = HiveSource(http_session, hive_source(server.url), HIVE_KEY)
    calls = (source.list_flows, lambda: source.get_flow("x"),
             lambda: source.run(run_request()))
    for call in calls:
        with pytest.raises(SourceError) as caught:
            await call()
        assert HIVE_KEY not in str(caught.value)
        assert "[redacted]" in str(caught.value)


# -- run history (reconciliation after a crash) -------------------------------------------------


@pytest.mark.parametrize(("remote_id", "flow_type", "answer"), [
    ("echo-agent", "hive_agent", "echo: send it"),
    ("echo-team", "hive_team", "team: Agent Upper Agent: echo: send itAgent Upper Agent: SEND IT"),
])
async def test_find_run_gives_the_content_of_an_ended_run_from_its_session(
    client: HiveSource, hive_server: FakeHive, remote_id: str, flow_type: str, answer: str,
) -> None:
    """An ended agent or team run is read back from its database's session runs."""
    request = run_request(remote_id, "send it", flow_type=flow_type)
    assert await client.find_run(request, since=None) is None
    await client.run(request)
    past = await client.find_run(request, since=None)
    assert past is not None
    assert past.result is not None
    assert past.result.output_text == answer
    assert past.result.raw["run_input"] == "send it"
    asked = [path for _, path in hive_server.requests if path.startswith("/sessions/")]
    database = "agent-echo-agent" if flow_type == "hive_agent" else "team-echo-team"
    assert asked[-1].endswith(f"db_id={database}")


async def test_find_run_matches_input_component_and_time(client: HiveSource) -> None:
    """Another input, another agent or a run older than ``since`` is not the run."""
    await client.run(run_request("echo-agent", "first"))
    assert await client.find_run(run_request("echo-agent", "second"), since=None) is None
    assert await client.find_run(run_request("upper-agent", "first"), since=None) is None
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await client.find_run(run_request("echo-agent", "first"), since=later) is None


async def test_find_run_of_a_workflow_without_a_database_cannot_tell(client: HiveSource) -> None:
    """A workflow that names no database keeps no runs Spark can read: a protocol error (the
    worker then runs it again), not a false 'never ran'."""
    request = run_request("echo-workflow", "x", flow_type="hive_workflow")
    await client.run(request)
    with pytest.raises(SourceProtocolError, match="which database"):
        await client.find_run(request, since=None)
