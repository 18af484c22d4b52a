"""A fast fake LangFlow for benchmarks, run as its own process: ``python -m bench.fake_langflow``.

It answers the routes Spark uses (health, version, flows, projects, run) with the shapes of
LangFlow 1.13, as cheaply as aiohttp allows, and records nothing, so it neither slows down nor
grows during a long run. It prints its base URL on stdout once it listens.
"""

import argparse
import json
import sys
import uuid
from typing import Any

from aiohttp import web

API_KEY = "sk-bench-langflow-key"
FOLDER_ID = "6f1c3e1a-0000-4000-8000-00000000f01d"
FLOW_PREFIX = "b0000000-0000-4000-8000-"


def flow_id(number: int) -> str:
    """The id of the fake's flow ``number`` (0-based)."""
    return f"{FLOW_PREFIX}{number:012d}"


def _node(node_id: str, node_type: str, display_name: str) -> dict[str, Any]:
    return {"id": node_id, "type": "genericNode", "position": {"x": 0, "y": 0},
            "data": {"id": node_id, "type": node_type,
                     "node": {"display_name": display_name,
                              "template": {"_type": "Component"}}}}


def _flow(number: int) -> dict[str, Any]:
    fid = flow_id(number)
    return {
        "id": fid, "name": f"bench-flow-{number:03d}", "description": "Answers with its input",
        "icon": None, "icon_bg_color": None, "gradient": None,
        "data": {"nodes": [_node(f"ChatInput-{number:05d}", "ChatInput", "Chat Input"),
                           _node(f"ChatOutput-{number:05d}", "ChatOutput", "Chat Output")],
                 "edges": [], "viewport": {"x": 0, "y": 0, "zoom": 1}},
        "is_component": False, "updated_at": "2025-01-01T00:00:00+00:00", "webhook": False,
        "endpoint_name": f"bench-flow-{number:03d}", "tags": [], "locked": False,
        "mcp_enabled": False, "access_type": "PRIVATE", "folder_id": FOLDER_ID,
        "user_id": "0c8e5c52-0000-4000-8000-0000000005e1",
    }


def build_app(flow_count: int) -> web.Application:
    """The fake's routes, serving ``flow_count`` flows."""
    flows = [_flow(number) for number in range(flow_count)]
    by_id = {flow["id"]: flow for flow in flows}
    flows_body = json.dumps(flows)
    projects_body = json.dumps([{"id": FOLDER_ID, "name": "Bench", "description": None,
                                 "parent_id": None}])

    def refused(request: web.Request) -> web.Response | None:
        if request.headers.get("x-api-key") == API_KEY:
            return None
        return web.json_response({"detail": "Invalid API key"}, status=403)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def version(request: web.Request) -> web.Response:
        return web.json_response({"version": "1.13.0", "main_version": "1.13.0",
                                  "package": "Langflow"})

    async def list_flows(request: web.Request) -> web.Response:
        return refused(request) or web.Response(text=flows_body, content_type="application/json")

    async def get_flow(request: web.Request) -> web.Response:
        if refusal := refused(request):
            return refusal
        flow = by_id.get(request.match_info["flow_id"])
        if flow is None:
            return web.json_response({"detail": "Flow not found"}, status=404)
        return web.json_response(flow)

    async def projects(request: web.Request) -> web.Response:
        return refused(request) or web.Response(text=projects_body,
                                                content_type="application/json")

    async def run(request: web.Request) -> web.Response:
        if refusal := refused(request):
            return refusal
        flow = by_id.get(request.match_info["flow_id"])
        if flow is None:
            return web.json_response({"detail": "Flow not found"}, status=404)
        body = await request.json()
        text = str(body.get("input_value") or "")
        session_id = body.get("session_id") or flow["id"]
        message = {"text": text, "sender": "Machine", "sender_name": "AI",
                   "session_id": session_id, "flow_id": flow["id"], "id": str(uuid.uuid4())}
        answer = {"session_id": session_id, "outputs": [{
            "inputs": {"input_value": text},
            "outputs": [{"results": {"message": message},
                         "artifacts": {"message": text, "sender": "Machine"},
                         "messages": [{"message": text, "sender": "Machine",
                                       "session_id": session_id}],
                         "component_display_name": "Chat Output"}]}]}
        return web.json_response(answer)

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/api/v1/version", version)
    app.router.add_get("/api/v1/flows/", list_flows)
    app.router.add_get("/api/v1/flows/{flow_id}", get_flow)
    app.router.add_get("/api/v1/projects/", projects)
    app.router.add_post("/api/v1/run/{flow_id}", run)
    return app


def main() -> None:
    """Serve on 127.0.0.1 until killed; print the base URL first."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--flows", type=int, default=100)
    args = parser.parse_args()

    async def announce(app: web.Application) -> None:
        print(f"http://127.0.0.1:{args.port}", flush=True)

    app = build_app(args.flows)
    app.on_startup.append(announce)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None,
                handle_signals=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
