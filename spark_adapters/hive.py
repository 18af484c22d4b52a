"""``HiveSource``: the ``WorkflowSource`` port over Automagik Hive (an Agno AgentOS server)."""

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import msgspec

from spark_adapters.http_session import RequestCounter, SourceHttp
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

# -- wire types (Hive's JSON; unknown fields are ignored) -------------------------------------


class _Health(msgspec.Struct):
    status: str | None = None


class _Item(msgspec.Struct):
    """An agent, team or workflow in a listing; which id field is set varies by version."""

    id: str | None = None
    agent_id: str | None = None
    team_id: str | None = None
    workflow_id: str | None = None
    name: str | None = None
    description: str | None = None


class _RunResponse(msgspec.Struct):
    content: Any = None
    status: str | None = None


class _RunMessage(msgspec.Struct):
    role: str | None = None
    created_at: int | float | None = None
    from_history: bool | None = None


class _SessionRun(msgspec.Struct):
    """A run as Agno keeps it in its session (only once it has ended)."""

    run_id: str | None = None
    agent_id: str | None = None
    team_id: str | None = None
    workflow_id: str | None = None
    run_input: str | None = None
    content: Any = None
    status: str | None = None
    created_at: int | float | str | None = None
    messages: list[_RunMessage] | None = None


class _Detail(msgspec.Struct):
    db_id: str | None = None


_HEALTH = msgspec.json.Decoder(_Health)
_INFO = msgspec.json.Decoder(dict[str, Any] | list[Any] | str)
_LISTING = msgspec.json.Decoder(list[dict[str, Any]])
_DETAIL = msgspec.json.Decoder(_Detail)

# flow type -> the collection path that lists and runs it
_COLLECTIONS: dict[str, str] = {
    FlowType.HIVE_AGENT.value: "agents",
    FlowType.HIVE_TEAM.value: "teams",
    FlowType.HIVE_WORKFLOW.value: "workflows",
}
_USER_ID = "spark"
# flow type -> the field of a session run naming what ran it
_RUN_OWNER: dict[str, str] = {
    FlowType.HIVE_AGENT.value: "agent_id",
    FlowType.HIVE_TEAM.value: "team_id",
    FlowType.HIVE_WORKFLOW.value: "workflow_id",
}
_ENDED_BADLY = frozenset({"ERROR", "CANCELLED", "FAILED"})
_UNDER_WAY = frozenset({"RUNNING", "PENDING", "PAUSED"})


class HiveSource:
    """An Automagik Hive server: agents, teams and workflows listed and run over AgentOS."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        source: Source,
        api_key: str | None,
        *,
        request_timeout: float = 10.0,
        count_requests: RequestCounter | None = None,
    ) -> None:
        # AgentOS wants the bearer header; older Hive servers read x-api-key.
        headers = {"Authorization": f"Bearer {api_key}", "x-api-key": api_key} if api_key else {}
        self._http = SourceHttp(
            session,
            base_url=source.url,
            label=f"Automagik Hive at {source.url}",
            source_type=source.source_type,
            headers=headers,
            secrets=[api_key],
            verify_tls=source.verify_tls,
            request_timeout=request_timeout,
            count_requests=count_requests,
        )

    async def check(self) -> dict[str, Any]:
        """Health, then server info, then an authenticated listing; returns the version info."""
        await self._check_health()
        info: dict[str, Any] = {}
        try:
            root = self._http.decode(await self._http.get("/"), _INFO)
        except SourceError:
            root = None  # the info route is a nicety; health already answered
        if isinstance(root, dict):
            info.update(root)
        # Health routes are public; a listing is what tells whether the key is accepted, and
        # whether this is Hive at all: LangFlow's /health answers like AgentOS's.
        listing = await self._http.get("/agents")
        if listing.status != 404:
            self._http.ensure_ok(listing)  # a refused key or an outage, as it is
        try:
            self._http.decode(listing, _LISTING)
        except SourceError as exc:
            raise SourceProtocolError(
                f"{self._http.label} is not an Automagik Hive server: GET /agents answered "
                f"{listing.status} ({self._http.excerpt(listing) or 'no body'}), not a list of "
                "agents. A LangFlow server is added with source_type langflow.",
                status=listing.status,
            ) from exc
        return {**info, "source_type": SourceType.HIVE.value}

    async def list_flows(self) -> list[RemoteFlow]:
        """Every agent, team and workflow the server offers."""
        flows: list[RemoteFlow] = []
        for flow_type, collection in _COLLECTIONS.items():
            flows.extend(await self._list(flow_type, collection))
        return flows

    async def get_flow(self, remote_id: str) -> RemoteFlow:
        """The agent, team or workflow with this id; ``RemoteNotFoundError`` if none has it."""
        for flow in await self.list_flows():
            if flow.remote_id == remote_id:
                return flow
        raise RemoteNotFoundError(
            f"{self._http.label} has no agent, team or workflow {remote_id!r}", status=404
        )

    async def run(self, request: RunRequest) -> RunResult:
        """Run an agent, team or workflow once (not streamed); the answer is its ``content``."""
        collection = _COLLECTIONS.get(request.flow_type)
        if collection is None:
            raise RemoteRunError(
                f"{self._http.label} cannot run a flow of type {request.flow_type!r}"
            )
        # AgentOS reads runs as form fields; a JSON body is a 422. Without stream=false, teams
        # and workflows answer with a stream.
        form = {
            "message": request.input_value,
            "stream": "false",
            "session_id": request.session_id,
            "user_id": _USER_ID,
        }
        response = await self._http.request(
            "POST",
            f"/{collection}/{request.remote_flow_id}/runs",
            form=form,
            run_timeout=request.timeout,
            # After answering a failed run with 500, Hive (uvicorn) closes that connection a
            # moment later without saying so; a run sent on it right after would fail. Runs take
            # seconds, so one fresh connection each costs nothing noticeable.
            fresh_connection=True,
        )
        raw = self._http.decode_any(response)
        parsed = self._http.convert(response, raw, _RunResponse)
        text = _text(parsed.content)
        if parsed.status is not None and parsed.status.upper() == "ERROR":
            raise RemoteRunError(
                self._http.scrub(
                    f"{self._http.label} reported the run failed: {(text or 'no detail')[:200]}"
                ),
                status=response.status,
            )
        return RunResult(output_text=text, raw=raw)

    async def find_run(self, request: RunRequest, *, since: datetime | None) -> PastRun | None:
        """The latest run of this input by this agent, team or workflow in the session, from
        Agno's session runs (``GET /sessions/{id}/runs`` in the database the component names).

        Agno keeps a run in its session only once the run has ended, so a run Hive is still
        working on is not seen; a failed agent run is not kept either.
        """
        collection = _COLLECTIONS.get(request.flow_type)
        if collection is None:
            raise SourceProtocolError(
                f"{self._http.label} keeps no runs of flow type {request.flow_type!r}")
        params = {"type": collection.removesuffix("s")}
        detail = await self._http.get(f"/{collection}/{quote(request.remote_flow_id, safe='')}")
        db_id = self._http.decode(detail, _DETAIL).db_id
        if db_id:  # AgentOS with several databases needs to be told which one
            params["db_id"] = db_id
        response = await self._http.get(
            f"/sessions/{quote(request.session_id, safe='')}/runs", params=params)
        if response.status == 404 and b"Session with ID" in response.body:
            return None  # no session, or one without ended runs
        if response.status == 400 and not db_id:
            raise SourceProtocolError(self._http.scrub(
                f"{self._http.label} cannot say which database keeps the runs of "
                f"{request.remote_flow_id!r} ({self._http.excerpt(response)})"), status=400)
        records = self._http.decode(response, _LISTING)
        owner = _RUN_OWNER[request.flow_type]
        found: PastRun | None = None
        for record in records:
            run = self._http.convert(response, record, _SessionRun)
            if getattr(run, owner) != request.remote_flow_id:
                continue  # a team member's run, or another component's
            if run.run_input is not None and run.run_input != request.input_value:
                continue
            started_at = _run_started(run)
            if since is not None and started_at is not None and started_at < since:
                continue
            found = _past_run(run, record, started_at)
        return found

    async def _check_health(self) -> None:
        # Hive's own route first, then the AgentOS one; a transport failure ends it at once.
        answers: list[str] = []
        for path, healthy in (("/api/v1/health", "success"), ("/health", "ok")):
            response = await self._http.get(path)
            if response.ok:
                try:
                    if self._http.decode(response, _HEALTH).status == healthy:
                        return
                except SourceError:
                    pass
            answers.append(f"{path} {response.status}: {self._http.excerpt(response)}")
        raise SourceUnavailableError(
            f"{self._http.label} is not healthy ({'; '.join(answers)})"
        )

    async def _list(self, flow_type: str, collection: str) -> list[RemoteFlow]:
        response = await self._http.get(f"/{collection}")
        if response.status == 404 and flow_type != FlowType.HIVE_AGENT.value:
            return []  # servers older than AgentOS have agents only
        items = self._http.decode(response, _LISTING)
        flows = []
        for item in items:
            wire = self._http.convert(response, item, _Item)
            remote_id = wire.id or wire.agent_id or wire.team_id or wire.workflow_id
            if not remote_id:
                continue
            flows.append(
                RemoteFlow(
                    remote_id=remote_id,
                    name=wire.name or remote_id,
                    flow_type=flow_type,
                    description=wire.description,
                    data=item,
                )
            )
        return flows


def _past_run(run: _SessionRun, record: dict[str, Any], started_at: datetime | None) -> PastRun:
    status = (run.status or "").upper()
    if status in _ENDED_BADLY:
        return PastRun(started_at=started_at, failed=True)
    if status in _UNDER_WAY:
        return PastRun(started_at=started_at)
    return PastRun(started_at=started_at,
                   result=RunResult(output_text=_text(run.content), raw=record))


def _run_started(run: _SessionRun) -> datetime | None:
    """When the run began: its user message's time (the run's own ``created_at`` is not
    reliable: Agno 2.0 stamps some runs with the time their agent was built)."""
    for message in run.messages or []:
        if message.role == "user" and not message.from_history and message.created_at:
            return datetime.fromtimestamp(message.created_at, tz=UTC)
    if isinstance(run.created_at, int | float):
        return datetime.fromtimestamp(run.created_at, tz=UTC)
    if isinstance(run.created_at, str):
        try:
            return datetime.fromisoformat(run.created_at)
        except ValueError:
            return None
    return None


def _text(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content
    # Structured output (a model's response schema) is kept whole, as JSON text.
    return msgspec.json.encode(content).decode()
