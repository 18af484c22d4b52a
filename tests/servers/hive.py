"""``FakeHive``: a loopback server answering like Automagik Hive 0.2.0 (Agno AgentOS 2.0).

Real-server traits kept on purpose: health routes and ``/`` are public; with auth on, other
routes want ``Authorization: Bearer <key>`` (``x-api-key`` alone is 401 "Authorization header
required", a wrong bearer 401 "Invalid authentication token"); runs take a form body (JSON is
422); teams and workflows stream unless ``stream=false``; a failed run is a plain-text 500;
agents have no top-level ``description``. Agents and teams keep their ended runs (not failed
ones) in a database of their own (``db_id``), read through ``GET /sessions/{id}/runs`` with
``type`` and ``db_id`` (missing: 400, as a server with several databases answers); workflows
name no database.
"""

import asyncio
import time
import uuid
from typing import Any

from aiohttp import web

from tests.servers.base import FakeServer

AGENTS = [
    {"id": "echo-agent", "name": "Echo Agent"},
    {"id": "upper-agent", "name": "Upper Agent"},
    {"id": "slow-agent", "name": "Slow Agent"},
    {"id": "fail-agent", "name": "Fail Agent"},
]
# As a real Hive 0.2.0 lists them: teams, like agents, have no top-level description.
TEAMS = [{"id": "echo-team", "name": "Echo Team", "db_id": "team-echo-team",
          "model": {"name": "OfflineModel", "model": "offline-team", "provider": "Offline"},
          "members": [{"id": "echo-agent"}, {"id": "upper-agent"}]}]
WORKFLOWS = [{"id": "echo-workflow", "name": "Echo Workflow",
              "description": "Offline test workflow: step 1 echoes (agent), "
                             "step 2 upper-cases (function)"}]
_KINDS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "agents": ("Agent", AGENTS), "teams": ("Team", TEAMS), "workflows": ("Workflow", WORKFLOWS)}


def _agent_item(agent: dict[str, Any]) -> dict[str, Any]:
    return {**agent, "db_id": f"agent-{agent['id']}",
            "model": {"name": "OfflineModel", "model": "offline", "provider": "Offline"},
            "sessions": {"session_table": "hive_sessions"}, "metadata": None,
            "system_message": {"markdown": False}}


class FakeHive(FakeServer):
    """Automagik Hive on loopback. ``slow_seconds`` is slow-agent's delay (the peer: 2)."""

    def __init__(self, *, api_key: str | None = None) -> None:
        super().__init__(api_key=api_key)
        self.slow_seconds = 2.0
        self.sessions: dict[tuple[str, str], list[dict[str, Any]]] = {}
        """Ended runs by (database, session), as Agno keeps them."""

    def build_app(self) -> web.Application:
        """AgentOS routes: no ``/api/v1`` prefix except Hive's own health route."""
        app = web.Application()
        app.router.add_get("/api/v1/health", self._hive_health)
        app.router.add_get("/health", self._os_health)
        app.router.add_get("/", self._info)
        for kind in _KINDS:
            app.router.add_get(f"/{kind}", self._list)
            app.router.add_get(f"/{kind}/{{item_id}}", self._detail)
            app.router.add_post(f"/{kind}/{{item_id}}/runs", self._run)
        app.router.add_get("/sessions/{session_id}/runs", self._session_runs)
        return app

    @staticmethod
    def _db_id(kind: str, item_id: str) -> str | None:
        return {"agents": f"agent-{item_id}", "teams": f"team-{item_id}"}.get(kind)

    async def _detail(self, request: web.Request) -> web.Response:
        if refusal := self._refuse(request):
            return refusal
        kind = request.path.split("/")[1]
        item_id = request.match_info["item_id"]
        label, items = _KINDS[kind]
        item = next((item for item in items if item["id"] == item_id), None)
        if item is None:
            return web.json_response({"detail": f"{label} not found"}, status=404)
        return web.json_response({**item, "db_id": self._db_id(kind, item_id)})

    async def _session_runs(self, request: web.Request) -> web.Response:
        if refusal := self._refuse(request):
            return refusal
        db_id = request.query.get("db_id")
        if db_id is None:
            return web.json_response({"detail": "The db_id query parameter is required when "
                                                "using multiple databases"}, status=400)
        session_id = request.match_info["session_id"]
        runs = self.sessions.get((db_id, session_id))
        if runs is None:
            return web.json_response({"detail": f"Session with ID {session_id} not found"},
                                     status=404)
        return web.json_response(runs)

    def _refuse(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None  # auth off: any key, or none, is accepted
        header = request.headers.get("Authorization")
        if not header:
            return web.json_response({"detail": "Authorization header required"}, status=401)
        if header != f"Bearer {self.api_key}":
            return web.json_response({"detail": "Invalid authentication token"}, status=401)
        return None

    async def _hive_health(self, request: web.Request) -> web.Response:
        if not self.healthy:
            return web.json_response({"status": "error", "message": "Database unreachable"},
                                     status=503)
        return web.json_response({
            "status": "success", "service": "Automagik Hive Multi-Agent System",
            "router": "health", "path": "/health", "utc": "2025-01-01T00:00:00+00:00",
            "message": "System operational"})

    async def _os_health(self, request: web.Request) -> web.Response:
        if not self.healthy:
            return web.Response(text="Internal Server Error", status=500)
        return web.json_response({"status": "ok"})

    async def _info(self, request: web.Request) -> web.Response:
        return web.json_response({
            "name": "AgentOS API", "os_id": "automagik_hive", "version": "0.2.0",
            "description": "Production-ready multi-agent system with dynamic agent loading"})

    async def _list(self, request: web.Request) -> web.Response:
        if refusal := self._refuse(request):
            return refusal
        if self.garbage:
            return self.garbage_response()
        kind = request.path.strip("/")
        items = _KINDS[kind][1]
        return web.json_response([_agent_item(a) for a in items] if kind == "agents" else items)

    # One early return per way the real server answers a run; splitting would hide the order.
    async def _run(self, request: web.Request) -> web.StreamResponse:  # noqa: PLR0911
        if refusal := self._refuse(request):
            return refusal
        kind = request.path.split("/")[1]
        item_id = request.match_info["item_id"]
        label, items = _KINDS[kind]
        if request.content_type not in ("application/x-www-form-urlencoded",
                                        "multipart/form-data"):
            return web.json_response({"detail": [{"type": "missing", "loc": ["body", "message"],
                                                  "msg": "Field required", "input": None}]},
                                     status=422)
        form = dict(await request.post())
        self.runs.append({"kind": kind, "id": item_id, "form": form,
                          "content_type": request.content_type,
                          "headers": dict(request.headers)})
        if not any(item["id"] == item_id for item in items):
            return web.json_response({"detail": f"{label} not found"}, status=404)
        if "message" not in form:
            return web.json_response({"detail": [{"type": "missing", "loc": ["body", "message"],
                                                  "msg": "Field required", "input": None}]},
                                     status=422)
        await self.before_run()
        if self.fail_with is not None:
            return self._failure(self.fail_with)
        if self.garbage:
            return self.garbage_response()
        if self.huge:
            return await self.huge_response(request)
        message = str(form["message"])
        session_id = str(form.get("session_id") or uuid.uuid4())
        if item_id == "fail-agent":
            return self._failure(500)
        if kind != "agents" and form.get("stream", "true") != "false":
            return web.Response(text='event: RunStarted\ndata: {"event": "RunStarted"}\n\n',
                                content_type="text/event-stream")
        if item_id == "slow-agent":
            await asyncio.sleep(self.slow_seconds)
        answer = self._answer(kind, item_id, message, session_id, form)
        db_id = self._db_id(kind, item_id)
        if db_id is not None:  # kept once the run has ended, as Agno does
            self.sessions.setdefault((db_id, session_id), []).append(
                {**answer, "run_input": message, "created_at": "2025-01-01T00:00:00Z",
                 "messages": [{"role": "user", "content": message,
                               "created_at": int(time.time()), "from_history": False}]})
        return web.json_response(answer)

    @staticmethod
    def _failure(status: int) -> web.Response:
        if status == 500:
            return web.Response(text="Internal Server Error", status=500)
        return web.json_response({"detail": f"failed with {status}"}, status=status)

    @staticmethod
    def _answer(kind: str, item_id: str, message: str, session_id: str,
                form: dict[str, Any]) -> dict[str, Any]:
        common = {"run_id": str(uuid.uuid4()), "session_id": session_id,
                  "user_id": form.get("user_id"), "content_type": "str", "status": "COMPLETED",
                  "created_at": int(time.time()), "metrics": {"duration": 0.001}}
        if kind == "agents":
            content = message.upper() if item_id == "upper-agent" else (
                f"slow: {message}" if item_id == "slow-agent" else f"echo: {message}")
            return {**common, "agent_id": item_id, "agent_name": item_id, "content": content,
                    "model": "offline", "model_provider": "Offline",
                    "messages": [{"role": "user", "content": message},
                                 {"role": "assistant", "content": content}]}
        if kind == "teams":
            return {**common, "team_id": item_id, "team_name": "Echo Team",
                    # The real offline team's wording, member labels and all.
                    "content": f"team: Agent Upper Agent: echo: {message}"
                               f"Agent Upper Agent: {message.upper()}",
                    "member_responses": []}
        echoed = f"echo: {message}"
        return {**common, "workflow_id": item_id, "workflow_name": "Echo Workflow",
                "content": echoed.upper(),
                "step_results": [{"step_name": "echo", "content": echoed, "success": True},
                                 {"step_name": "shout", "content": echoed.upper(),
                                  "success": True}]}
