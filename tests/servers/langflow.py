"""``FakeLangflow``: a loopback server answering like LangFlow 1.13 for the routes Spark uses.

Real-server traits kept on purpose: a bad or missing ``x-api-key`` is 403 (never 401), with a
``detail`` that differs by route; ``/api/v1/flows`` without its trailing slash is 404;
``/api/v1/folders/`` redirects (307) to ``/api/v1/projects/``; a failed run is 500 whose
``detail`` is itself a JSON string; runs accept a flow id or its endpoint name. Runs keep a
message history per session (``/api/v1/monitor/messages``): the user's message when a run
starts, the answer when it ends (even after its caller hung up) or the failing component's
error message, tagged with the run's ``graph_run_id``.
"""

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.servers.base import FakeServer

FOLDER_ID = "6f1c3e1a-0000-4000-8000-00000000f01d"
PROJECTS = [
    {"id": FOLDER_ID, "name": "Spark Tests", "description": "Flows Spark runs", "parent_id": None},
    {"id": "6f1c3e1a-0000-4000-8000-00000000f02d", "name": "Starter Projects",
     "description": None, "parent_id": None},
]

ECHO_ID = "1b6e2d1c-5c8a-4f7e-9d3a-00000000ec40"
PROMPT_ID = "1b6e2d1c-5c8a-4f7e-9d3a-0000000090e7"
SLOW_ID = "1b6e2d1c-5c8a-4f7e-9d3a-00000000510e"
FAIL_ID = "1b6e2d1c-5c8a-4f7e-9d3a-00000000fa11"
COMPONENT_ID = "1b6e2d1c-5c8a-4f7e-9d3a-00000000c0c0"
SLOW_NODE = "SparkSlowEcho-SpkS2"
FRONTEND_PAGE = "<!doctype html><html><head><title>Langflow</title></head><body></body></html>"


def _node(node_id: str, node_type: str, display_name: str) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "genericNode",
        "position": {"x": 0, "y": 0},
        "data": {
            "id": node_id,
            "type": node_type,
            "node": {"display_name": display_name, "template": {"_type": "Component"}},
        },
    }


def _flow(flow_id: str, endpoint: str, description: str, middle: list[dict[str, Any]] | None = None,
          *, is_component: bool = False) -> dict[str, Any]:
    short = flow_id[-4:]
    nodes = [_node(f"ChatInput-{short}I", "ChatInput", "Chat Input"),
             *(middle or []),
             _node(f"ChatOutput-{short}O", "ChatOutput", "Chat Output")]
    return {
        "id": flow_id,
        "name": endpoint,
        "description": description,
        "icon": None,
        "icon_bg_color": None,
        "gradient": None,
        "data": {"nodes": [] if is_component else nodes, "edges": [],
                 "viewport": {"x": 0, "y": 0, "zoom": 1}},
        "is_component": is_component,
        "updated_at": "2025-01-01T00:00:00+00:00",
        "webhook": False,
        "endpoint_name": endpoint,
        "tags": [],
        "locked": False,
        "mcp_enabled": False,
        "access_type": "PRIVATE",
        "user_id": "0c8e5c52-0000-4000-8000-0000000005e1",
        "folder_id": FOLDER_ID,
    }


def seed_flows() -> list[dict[str, Any]]:
    """The flows the LangFlow peer seeds, plus one component that listings must skip."""
    return [
        _flow(ECHO_ID, "spark-echo", "Answers with its input"),
        _flow(PROMPT_ID, "spark-prompt", "Answers 'Spark received: <input>'",
              [_node("Prompt-Prm01", "Prompt", "Prompt")]),
        _flow(SLOW_ID, "spark-slow", "Answers with its input after a delay",
              [_node(SLOW_NODE, "SparkSlowEcho", "Spark Slow Echo")]),
        _flow(FAIL_ID, "spark-fail", "Always fails"),
        _flow(COMPONENT_ID, "spark-component", "A saved component", is_component=True),
    ]


class FakeLangflow(FakeServer):
    """LangFlow 1.13 on loopback. ``slow_seconds`` is spark-slow's default delay (the peer: 3)."""

    version = {"version": "1.13.0", "main_version": "1.13.0", "package": "Langflow"}

    def __init__(self, *, api_key: str | None = None) -> None:
        super().__init__(api_key=api_key)
        self.flows = seed_flows()
        self.projects: list[dict[str, Any]] | None = list(PROJECTS)  # None: route missing
        self.slow_seconds = 3.0
        self.paginated = False
        self.open_runs = 0
        """spark-slow runs whose caller is still connected and waiting for the answer."""
        self.messages: list[dict[str, Any]] = []
        """The message history, oldest first, as ``/api/v1/monitor/messages`` lists it."""
        self.slow_finishes_abandoned = True
        """Whether a spark-slow run whose caller hung up still ends with its answer (LangFlow
        1.13 does: the run goes on without the caller)."""

    def build_app(self) -> web.Application:
        """Routes with LangFlow's paths, trailing slashes included."""
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/api/v1/version", self._version)
        app.router.add_get("/api/v1/flows/", self._list_flows)
        app.router.add_get("/api/v1/flows/{flow_id}", self._get_flow)
        app.router.add_get("/api/v1/projects/", self._projects)
        app.router.add_get("/api/v1/folders/", self._folders)
        app.router.add_post("/api/v1/run/{flow_id}", self._run)
        app.router.add_get("/api/v1/monitor/messages", self._messages)
        # Like the real server, any other path outside /api is its web frontend's page.
        app.router.add_get(r"/{page:(?!api/).*}", self._frontend)
        return app

    # -- auth ------------------------------------------------------------------------------
    def _refuse(self, request: web.Request, *, run: bool) -> web.Response | None:
        if self.api_key is None:
            return None
        given = request.headers.get("x-api-key") or request.query.get("x-api-key")
        if given == self.api_key:
            return None
        if run:
            detail = ("An API key must be passed as query or header" if given is None
                      else "Invalid or missing API key")
        else:
            detail = ("No authentication credentials provided" if given is None
                      else "Invalid API key")
        return web.json_response({"detail": detail}, status=403)

    def _find(self, flow_id: str) -> dict[str, Any] | None:
        return next((f for f in self.flows if flow_id in (f["id"], f["endpoint_name"])), None)

    # -- handlers --------------------------------------------------------------------------
    async def _frontend(self, request: web.Request) -> web.Response:
        return web.Response(text=FRONTEND_PAGE, content_type="text/html")

    async def _health(self, request: web.Request) -> web.Response:
        if not self.healthy:
            return web.json_response({"status": "nok"}, status=503)
        return web.json_response({"status": "ok"})

    async def _version(self, request: web.Request) -> web.Response:
        return self.garbage_response() if self.garbage else web.json_response(self.version)

    async def _list_flows(self, request: web.Request) -> web.Response:
        if refusal := self._refuse(request, run=False):
            return refusal
        if self.garbage:
            return self.garbage_response()
        header_only = request.query.get("header_flows") == "true"
        flows = [{k: v for k, v in f.items() if k != "data"} if header_only else f
                 for f in self.flows]
        if self.paginated or "page" in request.query:
            size = int(request.query.get("size", "50"))
            return web.json_response(
                {"items": flows, "total": len(flows), "page": 1, "size": size, "pages": 1})
        return web.json_response(flows)

    async def _get_flow(self, request: web.Request) -> web.Response:
        if refusal := self._refuse(request, run=False):
            return refusal
        flow_id = request.match_info["flow_id"]
        try:
            uuid.UUID(flow_id)
        except ValueError:  # FastAPI's answer to a path id that is not a UUID
            return web.json_response({"detail": [{
                "type": "uuid_parsing", "loc": ["path", "flow_id"],
                "msg": "Input should be a valid UUID, invalid character: expected an optional "
                       "prefix of `urn:uuid:` followed by [0-9a-fA-F-], found `n` at 1",
                "input": flow_id}]}, status=422)
        flow = next((f for f in self.flows if f["id"] == flow_id), None)
        if flow is None:
            return web.json_response({"detail": "Flow not found"}, status=404)
        return web.json_response(flow)

    async def _projects(self, request: web.Request) -> web.Response:
        if refusal := self._refuse(request, run=False):
            return refusal
        if self.projects is None:
            return web.json_response({"detail": "Not Found"}, status=404)
        return web.json_response(self.projects)

    async def _folders(self, request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/api/v1/projects/")

    # One early return per way the real server answers a run; splitting would hide the order.
    async def _run(self, request: web.Request) -> web.StreamResponse:  # noqa: PLR0911
        if refusal := self._refuse(request, run=True):
            return refusal
        flow_id = request.match_info["flow_id"]
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return web.json_response({"detail": "Invalid JSON"}, status=422)
        self.runs.append({"flow_id": flow_id, "query": dict(request.query), "json": body,
                          "headers": dict(request.headers)})
        flow = self._find(flow_id)
        if flow is None:
            return web.json_response({"detail": f"Flow identifier {flow_id} not found"},
                                     status=404)
        await self.before_run()
        if self.fail_with is not None:  # the server itself failing, not a flow
            return web.Response(status=self.fail_with, text="Internal Server Error")
        if self.garbage:
            return self.garbage_response()
        if self.huge:
            return await self.huge_response(request)
        text = str(body.get("input_value") or "")
        name = flow["endpoint_name"]
        session_id = body.get("session_id") or flow["id"]
        run_id = str(uuid.uuid4())
        self._remember(flow, session_id, run_id, "User", text)
        if name == "spark-fail":
            self._remember(flow, session_id, run_id, "Spark Fail", "always fails",
                           category="error")
            return self._flow_failure("Error building Component Spark Fail: always fails")
        if name == "spark-slow":
            tweak = (body.get("tweaks") or {}).get(SLOW_NODE) or {}
            finished = await self._slowly(
                request, float(tweak.get("delay_seconds", self.slow_seconds)))
            if not finished and not self.slow_finishes_abandoned:
                return web.Response(status=499)  # nobody is listening any more
        answer = f"Spark received: {text}" if name == "spark-prompt" else text
        self._remember(flow, session_id, run_id, "Machine", answer)
        return web.json_response(self._answer(flow, text, answer, session_id))

    def _remember(self, flow: dict[str, Any], session_id: str, run_id: str, sender: str,
                  text: str, *, category: str = "message") -> None:
        source = None if sender == "User" else flow["data"]["nodes"][-1]["id"]
        self.messages.append({
            "id": str(uuid.uuid4()), "flow_id": flow["id"],
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC"),
            "sender": sender, "sender_name": "User" if sender == "User" else "AI",
            "session_id": session_id, "context_id": "", "text": text, "files": "[]",
            "edit": False, "duration": None,
            "properties": {"source": {"id": source, "display_name": None, "source": None},
                           "state": "complete", "edited": False},
            "category": category, "content_blocks": [],
            "session_metadata": {"graph_run_id": run_id}})

    async def _messages(self, request: web.Request) -> web.Response:
        if refusal := self._refuse(request, run=False):
            return refusal
        flow_id = request.query.get("flow_id")
        if flow_id is not None:
            try:
                uuid.UUID(flow_id)
            except ValueError:
                return web.json_response({"detail": [{"type": "uuid_parsing",
                                                      "loc": ["query", "flow_id"]}]}, status=422)
        session_id = request.query.get("session_id")
        return web.json_response([
            message for message in self.messages
            if flow_id in (None, message["flow_id"])
            and session_id in (None, message["session_id"])])

    async def _slowly(self, request: web.Request, seconds: float) -> bool:
        """Wait ``seconds`` (True), or until the caller hangs up (False; then ``open_runs``
        drops at once: aiohttp does not cancel a handler whose client went away)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        self.open_runs += 1
        try:
            while loop.time() < deadline:
                if request.transport is None or request.transport.is_closing():
                    return False
                await asyncio.sleep(min(0.02, max(0.0, deadline - loop.time())))
            return True
        finally:
            self.open_runs -= 1

    @staticmethod
    def _flow_failure(message: str) -> web.Response:
        # LangFlow's APIException: ``detail`` is an ExceptionBody serialised to a string.
        detail = json.dumps({"message": f"Error running graph: {message}", "traceback": None,
                             "description": None, "code": None, "suggestion": None})
        return web.json_response({"detail": detail}, status=500)

    @staticmethod
    def _answer(flow: dict[str, Any], text: str, answer: str, session_id: str) -> dict[str, Any]:
        output_id = flow["data"]["nodes"][-1]["id"]
        message = {
            "text_key": "text", "data": {"text": answer}, "default_value": "", "text": answer,
            "sender": "Machine", "sender_name": "AI", "files": [], "session_id": session_id,
            "timestamp": "2025-01-01 00:00:00 UTC", "flow_id": flow["id"], "error": False,
            "edit": False, "properties": {"source": {"id": output_id}}, "category": "message",
            "content_blocks": [], "id": str(uuid.uuid4()), "duration": None,
        }
        return {
            "session_id": session_id,
            "outputs": [{
                "inputs": {"input_value": text},
                "outputs": [{
                    "results": {"message": message},
                    "artifacts": {"message": answer, "sender": "Machine", "sender_name": "AI",
                                  "files": [], "type": "object"},
                    "outputs": {"message": {"message": answer, "type": "text"}},
                    "logs": {"message": []},
                    "messages": [{"message": answer, "sender": "Machine", "sender_name": "AI",
                                  "session_id": session_id, "stream_url": None,
                                  "component_id": output_id, "files": [], "type": "text"}],
                    "timedelta": None, "duration": None,
                    "component_display_name": "Chat Output", "component_id": output_id,
                    "used_frozen_result": False,
                }],
            }],
        }
