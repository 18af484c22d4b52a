"""``LangflowSource``: the ``WorkflowSource`` port over LangFlow's REST API (1.x)."""

from datetime import datetime
from typing import Any, TypeVar

import aiohttp
import msgspec

from spark_adapters.http_session import (
    HttpResponse,
    RequestCounter,
    SourceHttp,
    flow_reported_error,
)
from spark_core.errors import (
    RemoteNotFoundError,
    RemoteRunError,
    SourceError,
    SourceProtocolError,
    SourceUnavailableError,
)
from spark_core.models import (
    FlowType,
    PastRun,
    RemoteFlow,
    RunRequest,
    RunResult,
    Source,
    SourceType,
)

T = TypeVar("T")

# -- wire types (LangFlow's JSON; unknown fields are ignored) ---------------------------------


class _Health(msgspec.Struct):
    status: str | None = None


class _Node(msgspec.Struct):
    id: str | None = None
    data: dict[str, Any] | None = None


class _Graph(msgspec.Struct):
    nodes: list[_Node] | None = None


class _Flow(msgspec.Struct):
    id: str
    name: str = ""
    description: str | None = None
    data: dict[str, Any] | None = None
    folder_id: str | None = None
    icon: str | None = None
    icon_bg_color: str | None = None
    tags: list[str] | None = None
    is_component: bool | None = None


class _FlowPage(msgspec.Struct):
    items: list[_Flow]


class _Folder(msgspec.Struct):
    id: str
    name: str = ""


class _ResultData(msgspec.Struct):
    results: Any = None
    messages: Any = None
    artifacts: Any = None
    component_id: str | None = None


class _RunOutput(msgspec.Struct):
    outputs: list[_ResultData | None] | None = None


class _RunResponse(msgspec.Struct):
    outputs: list[_RunOutput | None] | None = None


class _MessageSource(msgspec.Struct):
    id: str | None = None


class _MessageProperties(msgspec.Struct):
    state: str | None = None
    source: _MessageSource | None = None


class _Message(msgspec.Struct):
    """A stored chat message: the user's input when a run starts, the flow's answer (or the
    failing component's error) when it ends."""

    sender: str | None = None
    text: str | None = None
    timestamp: str | None = None
    category: str | None = None
    properties: _MessageProperties | None = None
    session_metadata: dict[str, Any] | None = None

    @property
    def run_id(self) -> str | None:
        run_id = (self.session_metadata or {}).get("graph_run_id")
        return run_id if isinstance(run_id, str) else None


_HEALTH = msgspec.json.Decoder(_Health)
_VERSION = msgspec.json.Decoder(dict[str, Any])
_FLOWS = msgspec.json.Decoder(list[_Flow] | _FlowPage)
_FLOW = msgspec.json.Decoder(_Flow)
_FOLDERS = msgspec.json.Decoder(list[_Folder] | dict[str, Any])
_MESSAGES = msgspec.json.Decoder(list[dict[str, Any]])

_FLOWS_PATH = "/api/v1/flows/"  # LangFlow 404s without the trailing slash


class LangflowSource:
    """A LangFlow server: flows listed, fetched and run through its ``/api/v1`` routes."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        source: Source,
        api_key: str | None,
        *,
        request_timeout: float = 10.0,
        count_requests: RequestCounter | None = None,
    ) -> None:
        self._http = SourceHttp(
            session,
            base_url=source.url,
            label=f"LangFlow at {source.url}",
            source_type=source.source_type,
            headers={"x-api-key": api_key} if api_key else {},
            secrets=[api_key],
            verify_tls=source.verify_tls,
            request_timeout=request_timeout,
            count_requests=count_requests,
        )

    async def check(self) -> dict[str, Any]:
        """Health, then version, then an authenticated listing; returns the version info."""
        health = await self._http.get("/health")
        if not health.ok:
            raise self._unhealthy(health)
        if self._http.decode(health, _HEALTH).status != "ok":
            raise self._unhealthy(health)
        version = self._own(await self._http.get("/api/v1/version"), _VERSION)
        # The version route is public; only a listing tells whether the key is accepted.
        self._own(
            await self._http.get(_FLOWS_PATH, params={"header_flows": "true", "get_all": "true"}),
            _FLOWS,
        )
        return {**version, "source_type": SourceType.LANGFLOW.value}

    def _own(self, response: HttpResponse, decoder: msgspec.json.Decoder[T]) -> T:
        """``response`` decoded as LangFlow's own route answers; a 404 or another shape means
        the server is not LangFlow (an Automagik Hive's /health answers like ours)."""
        if response.status != 404:
            self._http.ensure_ok(response)  # a refused key or an outage, as it is
        try:
            return self._http.decode(response, decoder)
        except SourceError as exc:
            raise SourceProtocolError(
                f"{self._http.label} is not a LangFlow server: {response.method} "
                f"{response.path} answered {response.status} "
                f"({self._http.excerpt(response) or 'no body'}). An Automagik Hive server is "
                "added with source_type automagik-hive.",
                status=response.status,
            ) from exc

    async def list_flows(self) -> list[RemoteFlow]:
        """Every flow the key's owner can see, without components, with folder names."""
        response = await self._http.get(_FLOWS_PATH, params={"get_all": "true"})
        decoded = self._http.decode(response, _FLOWS)
        flows = decoded.items if isinstance(decoded, _FlowPage) else decoded
        folders = await self._folder_names()
        return [
            self._remote_flow(flow, folders.get(flow.folder_id or ""))
            for flow in flows
            if not flow.is_component
        ]

    async def get_flow(self, remote_id: str) -> RemoteFlow:
        """One flow with its graph; ``RemoteNotFoundError`` if LangFlow does not know it."""
        response = await self._http.get(f"{_FLOWS_PATH}{remote_id}")
        if response.status == 422:  # an id that is not a UUID: LangFlow cannot have it
            raise RemoteNotFoundError(
                self._http.scrub(f"{self._http.label} has no flow {remote_id!r} (422: "
                                 f"{self._http.excerpt(response)})"),
                status=404,
            )
        flow = self._http.decode(response, _FLOW)
        folders = await self._folder_names() if flow.folder_id else {}
        return self._remote_flow(flow, folders.get(flow.folder_id or ""))

    async def run(self, request: RunRequest) -> RunResult:
        """Run a flow once (not streamed) and extract the first chat message it answered."""
        body: dict[str, Any] = {
            "input_value": request.input_value,
            "input_type": "chat",
            "output_type": "chat",
            "session_id": request.session_id,
        }
        if request.tweaks is not None:
            body["tweaks"] = request.tweaks
        response = await self._http.request(
            "POST",
            f"/api/v1/run/{request.remote_flow_id}?stream=false",
            json_body=body,
            run_timeout=request.timeout,
        )
        if response.status >= 500 and flow_reported_error(response.body):
            # The flow ran and failed (a component raised): running it again will not help.
            raise RemoteRunError(self._http.error_for(response).message, status=response.status)
        raw = self._http.decode_any(response)
        parsed = self._http.convert(response, raw, _RunResponse)
        return RunResult(output_text=_answer(parsed, request.output_component), raw=raw)

    async def find_run(self, request: RunRequest, *, since: datetime | None) -> PastRun | None:
        """The latest run of this input in the session, from LangFlow's message history: the
        user's message is stored when a run starts, the answer (or the failing component's
        error message) when it ends, even after the caller went away."""
        response = await self._http.get(
            "/api/v1/monitor/messages",
            params={"flow_id": request.remote_flow_id, "session_id": request.session_id},
        )
        records = self._http.decode(response, _MESSAGES)
        messages = [self._http.convert(response, record, _Message) for record in records]
        start = _last_input(messages, request.input_value, since)
        if start is None:
            return None
        started_at = _timestamp(messages[start].timestamp)
        ended = _run_messages(messages, start)
        if any(message.category == "error" for _, message in ended):
            return PastRun(started_at=started_at, failed=True)
        answers = [message for _, message in ended
                   if message.sender == "Machine" and (message.properties is None
                                                       or message.properties.state != "partial")]
        if not answers:
            return PastRun(started_at=started_at)
        answer = next((message for message in answers
                       if _source_id(message) == request.output_component), answers[0])
        raw = {"messages": [records[start], *(records[i] for i, _ in ended)]}
        return PastRun(started_at=started_at, result=RunResult(output_text=answer.text, raw=raw))

    async def _folder_names(self) -> dict[str, str]:
        # Projects replaced folders in LangFlow 1.5; older servers only have /folders/.
        for path in ("/api/v1/projects/", "/api/v1/folders/"):
            try:
                decoded = self._http.decode(await self._http.get(path), _FOLDERS)
            except SourceError:
                continue
            if isinstance(decoded, list):
                return {folder.id: folder.name for folder in decoded}
        return {}

    def _unhealthy(self, response: HttpResponse) -> SourceUnavailableError:
        return SourceUnavailableError(
            f"{self._http.label} is not healthy ({response.status}: "
            f"{self._http.excerpt(response)})",
            status=response.status,
        )

    @staticmethod
    def _remote_flow(flow: _Flow, folder_name: str | None) -> RemoteFlow:
        input_component, output_component = _chat_components(flow.data)
        return RemoteFlow(
            remote_id=flow.id,
            name=flow.name,
            flow_type=FlowType.LANGFLOW.value,
            description=flow.description,
            data=flow.data,
            folder_id=flow.folder_id,
            folder_name=folder_name,
            icon=flow.icon,
            icon_bg_color=flow.icon_bg_color,
            tags=list(flow.tags or []),
            is_component=bool(flow.is_component),
            input_component=input_component,
            output_component=output_component,
        )


def _last_input(messages: list[_Message], text: str, since: datetime | None) -> int | None:
    """The index of the latest user message with ``text`` sent at or after ``since``."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.sender != "User" or message.text != text:
            continue
        sent = _timestamp(message.timestamp)
        if since is None or sent is None or sent >= since:
            return index
    return None


def _run_messages(messages: list[_Message], start: int) -> list[tuple[int, _Message]]:
    """The messages the run begun at ``start`` wrote after its input: those of the same graph
    run when LangFlow tags them, else those up to the session's next user message."""
    run_id = messages[start].run_id
    found = []
    for index in range(start + 1, len(messages)):
        message = messages[index]
        if run_id is not None and message.run_id is not None:
            if message.run_id == run_id:
                found.append((index, message))
            continue
        if message.sender == "User":
            break
        found.append((index, message))
    return found


def _source_id(message: _Message) -> str | None:
    source = message.properties.source if message.properties else None
    return source.id if source else None


def _timestamp(value: str | None) -> datetime | None:
    """LangFlow's ``2026-12-06 19:02:04.539205 UTC`` (or ISO 8601) as an aware datetime."""
    if not value:
        return None
    text = value.strip()
    if text.endswith(" UTC"):
        text = text[:-4] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _chat_components(data: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """The ids of a flow graph's first ``ChatInput`` and ``ChatOutput`` nodes."""
    if not data:
        return None, None
    try:
        graph = msgspec.convert(data, _Graph)
    except msgspec.ValidationError:
        return None, None
    found: dict[str, str] = {}
    for node in graph.nodes or []:
        node_type = (node.data or {}).get("type")
        node_id = node.id or (node.data or {}).get("id")
        if not isinstance(node_id, str):
            continue
        for kind in ("ChatInput", "ChatOutput"):
            if kind not in found and (node_type == kind or node_id.startswith(f"{kind}-")):
                found[kind] = node_id
    return found.get("ChatInput"), found.get("ChatOutput")


def _answer(response: _RunResponse, output_component: str | None) -> str | None:
    """The first message text, searched in ``results``, then ``messages``, then artifacts.

    Outputs of the requested output component, when given, are searched first.
    """
    results = [
        result
        for run_output in response.outputs or []
        if run_output is not None
        for result in run_output.outputs or []
        if result is not None
    ]
    if output_component:
        results.sort(key=lambda result: result.component_id != output_component)
    for extract in (_from_results, _from_messages, _from_artifacts):
        for result in results:
            text = extract(result)
            if text is not None:
                return text
    return None


def _from_results(result: _ResultData) -> str | None:
    message = result.results.get("message") if isinstance(result.results, dict) else None
    if isinstance(message, dict):
        return _text(message.get("text"))
    return _text(message)


def _from_messages(result: _ResultData) -> str | None:
    if not isinstance(result.messages, list):
        return None
    for message in result.messages:
        if isinstance(message, dict):
            text = _text(message.get("message"))
            if text is not None:
                return text
    return None


def _from_artifacts(result: _ResultData) -> str | None:
    if not isinstance(result.artifacts, dict):
        return None
    return _text(result.artifacts.get("message"))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
