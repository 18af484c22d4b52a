"""``LangflowSource`` against a loopback LangFlow fake."""

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from spark_adapters.langflow import LangflowSource
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
from tests.servers import LANGFLOW_KEY, FakeLangflow, unused_port
from tests.servers.base import CannedServer
from tests.servers.langflow import (
    COMPONENT_ID,
    ECHO_ID,
    FAIL_ID,
    FOLDER_ID,
    PROMPT_ID,
    SLOW_ID,
    SLOW_NODE,
)

pytest_plugins = ["tests.servers.fixtures"]

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def langflow_source(url: str, *, verify_tls: bool = True) -> Source:
    """A LangFlow source record pointing at ``url``."""
    return Source(id=SourceId("src-1"), name="lf", source_type="langflow", url=url,
                  verify_tls=verify_tls, created_at=NOW, updated_at=NOW)


def self_signed_context(directory: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(NOW).not_valid_after(datetime.now(UTC) + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


def run_request(flow_id: str = ECHO_ID, text: str = "hello", **changes: object) -> RunRequest:
    """A run of ``flow_id`` with ``text``, a fixed session and a generous timeout."""
    fields: dict[str, object] = {"remote_flow_id": flow_id, "flow_type": "langflow",
                                 "input_value": text, "session_id": "task-1", "timeout": 10.0}
    fields.update(changes)
    return RunRequest(**fields)  # type: ignore[arg-type]


@pytest.fixture
def client(http_session: aiohttp.ClientSession, langflow_server: FakeLangflow) -> LangflowSource:
    """A ``LangflowSource`` with the fake's key."""
    return LangflowSource(http_session, langflow_source(langflow_server.url), LANGFLOW_KEY)


@pytest.fixture
async def canned() -> AsyncIterator[list[CannedServer]]:
    """Starts ``CannedServer``s a test appends and stops them afterwards."""
    servers: list[CannedServer] = []
    yield servers
    for server in servers:
        await server.stop()


async def start_canned(servers: list[CannedServer], body: str | bytes, **options: object
                       ) -> CannedServer:
    """Start a ``CannedServer`` and keep it for cleanup."""
    server = CannedServer(body, **options)  # type: ignore[arg-type]
    await server.start()
    servers.append(server)
    return server


# -- check ------------------------------------------------------------------------------------


async def test_check_returns_the_servers_version_info(client: LangflowSource) -> None:
    """A healthy server with a good key gives its version dict plus the source type."""
    info = await client.check()
    assert info == {"version": "1.13.0", "main_version": "1.13.0", "package": "Langflow",
                    "source_type": "langflow"}


async def test_check_calls_health_then_version_then_an_authenticated_listing(
    client: LangflowSource, langflow_server: FakeLangflow,
) -> None:
    """The key is proven by a listing call, after the public health and version routes."""
    await client.check()
    paths = [path.split("?")[0] for _, path in langflow_server.requests]
    assert paths == ["/health", "/api/v1/version", "/api/v1/flows/"]


@pytest.mark.parametrize("api_key", ["wrong-key", None])
async def test_check_with_a_wrong_or_missing_key_raises_rejected(
    http_session: aiohttp.ClientSession, langflow_server: FakeLangflow, api_key: str | None,
) -> None:
    """LangFlow's 403 for a bad or missing key is a SourceRejectedError saying so."""
    source = LangflowSource(http_session, langflow_source(langflow_server.url), api_key)
    with pytest.raises(SourceRejectedError, match="rejected the API key") as caught:
        await source.check()
    assert caught.value.status == 403
    assert not caught.value.transient


async def test_check_of_an_unreachable_port_raises_unavailable(
    http_session: aiohttp.ClientSession,
) -> None:
    """Connection refused is a transient SourceUnavailableError naming the URL."""
    url = f"http://127.0.0.1:{unused_port()}"
    source = LangflowSource(http_session, langflow_source(url), LANGFLOW_KEY)
    with pytest.raises(SourceUnavailableError, match="Could not reach") as caught:
        await source.check()
    assert url in str(caught.value)
    assert caught.value.transient


async def test_check_of_an_unhealthy_server_raises_unavailable(
    client: LangflowSource, langflow_server: FakeLangflow,
) -> None:
    """A failing health route is a SourceUnavailableError with the remote status."""
    langflow_server.healthy = False
    with pytest.raises(SourceUnavailableError, match="not healthy") as caught:
        await client.check()
    assert caught.value.status == 503


async def test_check_of_a_server_that_is_not_langflow_raises_protocol_error(
    http_session: aiohttp.ClientSession, canned: list[CannedServer],
) -> None:
    """An HTML page where JSON health was promised is a SourceProtocolError."""
    server = await start_canned(canned, "<html>hello</html>", content_type="text/html")
    source = LangflowSource(http_session, langflow_source(server.url), LANGFLOW_KEY)
    with pytest.raises(SourceProtocolError, match="not the JSON expected"):
        await source.check()


# -- list and get -----------------------------------------------------------------------------


async def test_list_flows_skips_components_and_carries_folder_names(
    client: LangflowSource,
) -> None:
    """Every seeded flow but the component is listed, each with its project's name."""
    flows = await client.list_flows()
    names = sorted(flow.name for flow in flows)
    assert names == ["spark-echo", "spark-fail", "spark-prompt", "spark-slow"]
    assert COMPONENT_ID not in {flow.remote_id for flow in flows}
    assert {flow.folder_id for flow in flows} == {FOLDER_ID}
    assert {flow.folder_name for flow in flows} == {"Spark Tests"}
    assert {flow.flow_type for flow in flows} == {"langflow"}


async def test_list_flows_finds_the_chat_input_and_output_nodes(client: LangflowSource) -> None:
    """Default input and output components are the ids of the ChatInput and ChatOutput nodes."""
    flows = {flow.remote_id: flow for flow in await client.list_flows()}
    echo = flows[ECHO_ID]
    assert echo.input_component == "ChatInput-ec40I"
    assert echo.output_component == "ChatOutput-ec40O"
    assert echo.data is not None
    assert len(echo.data["nodes"]) == 2


async def test_list_flows_accepts_a_paginated_listing(
    client: LangflowSource, langflow_server: FakeLangflow,
) -> None:
    """A ``{"items": [...]}`` page is read like a bare list."""
    langflow_server.paginated = True
    assert len(await client.list_flows()) == 4


async def test_list_flows_survives_a_server_without_projects_or_folders(
    client: LangflowSource, langflow_server: FakeLangflow,
) -> None:
    """Folder names are a nicety: when neither route answers, flows come without them."""
    langflow_server.projects = None
    flows = await client.list_flows()
    assert len(flows) == 4
    assert {flow.folder_name for flow in flows} == {None}
    assert ("GET", "/api/v1/folders/") in langflow_server.requests


async def test_get_flow_returns_one_flow_with_its_graph(client: LangflowSource) -> None:
    """A known id gives the flow, its nodes and its folder name."""
    flow = await client.get_flow(SLOW_ID)
    assert flow.name == "spark-slow"
    assert flow.folder_name == "Spark Tests"
    assert flow.data is not None
    assert SLOW_NODE in [node["id"] for node in flow.data["nodes"]]


async def test_get_flow_of_an_unknown_id_raises_remote_not_found(client: LangflowSource) -> None:
    """LangFlow's 404 is a RemoteNotFoundError, not transient."""
    with pytest.raises(RemoteNotFoundError, match="404") as caught:
        await client.get_flow("00000000-0000-0000-0000-000000000000")
    assert not caught.value.transient


# -- run --------------------------------------------------------------------------------------


async def test_run_of_the_echo_flow_returns_the_answer_text_and_raw_response(
    client: LangflowSource,
) -> None:
    """The answer is the first chat message text; ``raw`` is the whole decoded response."""
    result = await client.run(run_request(text="hello"))
    assert result.output_text == "hello"
    assert result.raw["session_id"] == "task-1"
    assert result.raw["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "hello"


async def test_run_by_endpoint_name_answers_like_the_prompt_flow(client: LangflowSource) -> None:
    """LangFlow runs a flow by endpoint name as well as by id."""
    result = await client.run(run_request("spark-prompt", "hi"))
    assert result.output_text == "Spark received: hi"


async def test_run_sends_session_id_tweaks_chat_types_and_the_key(
    client: LangflowSource, langflow_server: FakeLangflow,
) -> None:
    """The body carries input, chat types, tweaks and session; the key rides in x-api-key."""
    tweaks = {SLOW_NODE: {"delay_seconds": 0}}
    result = await client.run(run_request(SLOW_ID, "x", session_id="s-42", tweaks=tweaks))
    assert result.output_text == "x"
    [sent] = langflow_server.runs
    assert sent["json"] == {"input_value": "x", "input_type": "chat", "output_type": "chat",
                            "session_id": "s-42", "tweaks": tweaks}
    assert sent["query"] == {"stream": "false"}
    assert sent["headers"]["x-api-key"] == LANGFLOW_KEY


async def test_run_sends_json_that_keeps_any_text_as_written(
    client: LangflowSource, langflow_server: FakeLangflow,
) -> None:
    """The body is JSON (declared so) and text beyond ASCII arrives unchanged."""
    text = 'héllo ✓ "quoted" \\ \n 日本'
    result = await client.run(run_request(text=text))
    assert result.output_text == text
    [sent] = langflow_server.runs
    assert sent["headers"]["Content-Type"].startswith("application/json")
    assert sent["json"]["input_value"] == text


async def test_every_request_is_counted_with_its_status_or_why_it_failed(
    http_session: aiohttp.ClientSession, langflow_server: FakeLangflow,
) -> None:
    """The metrics hear of each request once: its HTTP status, ``timeout`` when the answer did
    not come in time, ``error`` when the source could not be reached."""
    counted: list[tuple[str, str]] = []

    def count(source_type: str, status: str) -> None:
        counted.append((source_type, status))

    def counting(url: str) -> LangflowSource:
        return LangflowSource(http_session, langflow_source(url), LANGFLOW_KEY,
                              count_requests=count)

    await counting(langflow_server.url).run(run_request())
    with pytest.raises(RemoteNotFoundError):
        await counting(langflow_server.url).run(run_request("no-such-flow"))
    langflow_server.delay = 2.0
    with pytest.raises(RunTimeoutError):
        await counting(langflow_server.url).run(run_request(timeout=0.2))
    with pytest.raises(SourceUnavailableError):
        await counting(f"http://127.0.0.1:{unused_port()}").run(run_request())
    assert counted == [("langflow", "200"), ("langflow", "404"), ("langflow", "timeout"),
                       ("langflow", "error")]


async def test_run_without_tweaks_leaves_them_out_of_the_body(
    client: LangflowSource, langflow_server: FakeLangflow,
) -> None:
    """``tweaks=None`` sends no ``tweaks`` key at all."""
    await client.run(run_request())
    assert "tweaks" not in langflow_server.runs[0]["json"]


async def test_a_flow_that_reports_an_error_fails_at_once_with_its_message(
    client: LangflowSource,
) -> None:
    """A 500 whose detail is a JSON string is the flow's own failure (as a real LangFlow 1.13
    answers spark-fail): not retried, and unwrapped to its ``message`` in the error."""
    with pytest.raises(RemoteRunError) as caught:
        await client.run(run_request(FAIL_ID))
    error = caught.value
    assert error.status == 500
    assert not error.transient
    assert "500" in str(error)
    assert "Error running graph: Error building Component Spark Fail: always fails" in str(error)
    assert '\\"message\\"' not in str(error)


async def test_run_of_an_unknown_flow_raises_remote_not_found(client: LangflowSource) -> None:
    """A 404 on run names the flow identifier LangFlow could not find."""
    with pytest.raises(RemoteNotFoundError, match="Flow identifier nope not found"):
        await client.run(run_request("nope"))


@pytest.mark.parametrize(("status", "error_type", "transient"), [
    (400, RemoteRunError, False),
    (422, RemoteRunError, False),
    (429, SourceUnavailableError, True),
    (500, SourceUnavailableError, True),
    (502, SourceUnavailableError, True),
    (503, SourceUnavailableError, True),
])
async def test_run_maps_remote_statuses_to_spark_errors(
    client: LangflowSource, langflow_server: FakeLangflow, status: int,
    error_type: type[SourceError], transient: bool,
) -> None:
    """Other 4xx fail at once; 429 and a server's own 5xx are transient; each error keeps the
    status."""
    langflow_server.fail_with = status
    with pytest.raises(error_type) as caught:
        await client.run(run_request())
    assert caught.value.status == status
    assert caught.value.transient is transient


async def test_run_answering_garbage_raises_protocol_error(
    client: LangflowSource, langflow_server: FakeLangflow,
) -> None:
    """A 200 with an HTML body is a SourceProtocolError quoting a short excerpt."""
    langflow_server.garbage = True
    with pytest.raises(SourceProtocolError, match="Bad Gateway-ish") as caught:
        await client.run(run_request())
    assert not caught.value.transient


async def test_run_slower_than_its_timeout_raises_run_timeout(
    client: LangflowSource, langflow_server: FakeLangflow,
) -> None:
    """A run that outlasts ``RunRequest.timeout`` is a transient RunTimeoutError."""
    langflow_server.delay = 2.0
    with pytest.raises(RunTimeoutError, match=r"within 0\.2 s") as caught:
        await client.run(run_request(timeout=0.2))
    assert caught.value.transient


async def test_run_with_a_body_over_the_cap_raises_protocol_error(
    client: LangflowSource, langflow_server: FakeLangflow,
) -> None:
    """A streamed body past 10 MB is refused rather than read into memory."""
    langflow_server.huge = True
    with pytest.raises(SourceProtocolError, match="larger than"):
        await client.run(run_request())


@pytest.mark.parametrize(("body", "expected"), [
    ({"outputs": [{"outputs": [{"results": {}, "messages": [{"message": "from messages"}]}]}]},
     "from messages"),
    ({"outputs": [{"outputs": [{"results": {"message": {"x": 1}},
                                "artifacts": {"message": "from artifacts"}}]}]},
     "from artifacts"),
    ({"outputs": [{"outputs": [None, {"results": {"message": {"text": "second"}}}]}]},
     "second"),
    ({"outputs": []}, None),
    ({"session_id": "s"}, None),
])
async def test_run_answer_falls_back_from_results_to_messages_to_artifacts(
    http_session: aiohttp.ClientSession, canned: list[CannedServer], body: object,
    expected: str | None,
) -> None:
    """Without a results message text, the answer comes from messages, then artifacts, or None."""
    server = await start_canned(canned, json.dumps(body))
    source = LangflowSource(http_session, langflow_source(server.url), LANGFLOW_KEY)
    result = await source.run(run_request())
    assert result.output_text == expected
    assert result.raw == body


async def test_run_answer_prefers_the_requested_output_component(
    http_session: aiohttp.ClientSession, canned: list[CannedServer],
) -> None:
    """When the run names an output component, that component's message wins."""
    body = {"outputs": [{"outputs": [
        {"component_id": "ChatOutput-A", "results": {"message": {"text": "from A"}}},
        {"component_id": "ChatOutput-B", "results": {"message": {"text": "from B"}}},
    ]}]}
    server = await start_canned(canned, json.dumps(body))
    source = LangflowSource(http_session, langflow_source(server.url), LANGFLOW_KEY)
    assert (await source.run(run_request())).output_text == "from A"
    result = await source.run(run_request(output_component="ChatOutput-B"))
    assert result.output_text == "from B"


# -- TLS --------------------------------------------------------------------------------------


async def test_tls_is_verified_unless_the_source_opts_out(
    http_session: aiohttp.ClientSession, tmp_path: Path,
) -> None:
    """A self-signed server fails verification (not transient); ``verify_tls=False`` runs."""
    body = {"outputs": [{"outputs": [{"results": {"message": {"text": "over tls"}}}]}]}
    server = CannedServer(msgspec.json.encode(body))
    await server.start(ssl_context=self_signed_context(tmp_path))
    try:
        assert server.url.startswith("https://")
        verified = LangflowSource(http_session, langflow_source(server.url), LANGFLOW_KEY)
        with pytest.raises(SourceUnavailableError, match="TLS") as caught:
            await verified.run(run_request())
        assert not caught.value.transient
        trusting = LangflowSource(http_session, langflow_source(server.url, verify_tls=False),
                                  LANGFLOW_KEY)
        assert (await trusting.run(run_request())).output_text == "over tls"
    finally:
        await server.stop()


# -- secrets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [403, 404, 422, 500])
async def test_the_api_key_never_appears_in_an_error_even_when_the_server_echoes_it(
    http_session: aiohttp.ClientSession, canned: list[CannedServer], status: int,
) -> None:
    """Error excerpts are scrubbed of the key, whatever the server puts in its body."""
    server = await start_canned(canned, '{"detail": "you sent ', status=status,
                                content_type="text/plain", echo_header="x-api-key")
    source = LangflowSource(http_session, langflow_source(server.url), LANGFLOW_KEY)
    calls = (source.check, source.list_flows, lambda: source.get_flow("x"),
             lambda: source.run(run_request()))
    for call in calls:
        with pytest.raises(SourceError) as caught:
            await call()
        assert LANGFLOW_KEY not in str(caught.value)
        assert "[redacted]" in str(caught.value)


async def test_the_api_key_never_appears_in_errors_from_the_fake(
    client: LangflowSource, langflow_server: FakeLangflow,
) -> None:
    """None of the ordinary failures mention the key."""
    messages = []
    for knob in ("garbage", "fail_with", "huge"):
        setattr(langflow_server, knob, 500 if knob == "fail_with" else True)
        with pytest.raises(SourceError) as caught:
            await client.run(run_request())
        messages.append(str(caught.value))
        setattr(langflow_server, knob, None if knob == "fail_with" else False)
    assert all(LANGFLOW_KEY not in message for message in messages)


# -- run history (reconciliation after a crash) -------------------------------------------------


async def test_find_run_gives_the_answer_of_a_finished_run_from_the_message_history(
    client: LangflowSource,
) -> None:
    """After a run, the session's history holds its input and answer: that is the run."""
    assert await client.find_run(run_request(text="send it"), since=None) is None
    await client.run(run_request(text="send it"))
    past = await client.find_run(run_request(text="send it"), since=None)
    assert past is not None
    assert past.result is not None
    assert past.result.output_text == "send it"
    assert [m["sender"] for m in past.result.raw["messages"]] == ["User", "Machine"]
    assert past.started_at is not None


async def test_find_run_sees_a_run_still_under_way_then_its_answer(
    client: LangflowSource,
) -> None:
    """The user's message is stored when the run starts: a run under way is seen as such,
    and once it ends its answer is there."""
    slow = run_request(SLOW_ID, "slowly", tweaks={SLOW_NODE: {"delay_seconds": 0.5}})
    running = asyncio.create_task(client.run(slow))
    await asyncio.sleep(0.2)
    past = await client.find_run(slow, since=None)
    assert past is not None
    assert past.running
    await running
    past = await client.find_run(slow, since=None)
    assert past is not None
    assert past.result is not None
    assert past.result.output_text == "slowly"


async def test_find_run_of_a_failed_run_says_it_failed(client: LangflowSource) -> None:
    """A failing component leaves an error message after the input: the run failed."""
    with pytest.raises(RemoteRunError):
        await client.run(run_request(FAIL_ID, "boom"))
    past = await client.find_run(run_request(FAIL_ID, "boom"), since=None)
    assert past is not None
    assert past.failed
    assert past.result is None


async def test_find_run_matches_input_session_and_time(client: LangflowSource) -> None:
    """Another input, another session, or a run older than ``since`` is not the run."""
    await client.run(run_request(text="first"))
    assert await client.find_run(run_request(text="second"), since=None) is None
    assert await client.find_run(run_request(text="first", session_id="other"),
                                 since=None) is None
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await client.find_run(run_request(text="first"), since=later) is None


async def test_find_run_pairs_each_input_with_its_own_answer(client: LangflowSource) -> None:
    """In a session with several runs, the latest run of the input is taken, with its own
    answer, not a neighbour's."""
    for text in ("one", "two", "one"):
        await client.run(run_request("spark-prompt", text, session_id="chat"))
    past = await client.find_run(
        run_request(PROMPT_ID, "two", session_id="chat"), since=None)
    assert past is not None
    assert past.result is not None
    assert past.result.output_text == "Spark received: two"


async def test_find_run_with_a_refused_key_raises_rejected(
    http_session: aiohttp.ClientSession, langflow_server: FakeLangflow,
) -> None:
    """The history needs the key like every other route."""
    client = LangflowSource(http_session, langflow_source(langflow_server.url), "wrong")
    with pytest.raises(SourceRejectedError):
        await client.find_run(run_request(), since=None)
