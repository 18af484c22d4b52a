"""Health, CORS and the OpenAPI document."""

import httpx
from litestar import Litestar

from spark_adapters.container import Container
from spark_http.app import create_app
from tests.http.conftest import AUTH, http_client, lifespan


async def test_health_is_healthy_with_version_and_parts(anonymous: httpx.AsyncClient) -> None:
    """Both health paths report healthy with the database, scheduler and worker states."""
    for path in ("/health", "/api/v1/health"):
        body = (await anonymous.get(path)).json()
        assert body["status"] == "healthy"
        assert body["version"]
        assert body["services"] == {"database": "ok", "scheduler": "running", "worker": "running"}


async def test_health_is_degraded_when_background_parts_stop(
    running_app: Litestar, anonymous: httpx.AsyncClient
) -> None:
    """A server that should run the worker and scheduler but does not is degraded."""
    await running_app.state.spark.stop(grace=0)
    body = (await anonymous.get("/health")).json()
    assert body["status"] == "degraded"
    assert body["services"]["worker"] == "stopped"


async def test_health_without_background_parts_is_healthy(container: Container) -> None:
    """An API-only server (worker elsewhere) is healthy with its parts stopped."""
    app = create_app(container, run_background=False)
    async with lifespan(app), http_client(app) as client:
        body = (await client.get("/health")).json()
    assert body["status"] == "healthy"
    assert body["services"]["scheduler"] == "stopped"


async def test_cors_preflight_allows_the_configured_origin(anonymous: httpx.AsyncClient) -> None:
    """A browser preflight from an allowed origin gets the CORS headers, without a key."""
    response = await anonymous.options("/api/v1/tasks", headers={
        "Origin": "https://ui.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "X-API-Key"})
    assert response.status_code in (200, 204)
    assert response.headers["access-control-allow-origin"] == "https://ui.example"
    simple = await anonymous.get("/api/v1/tasks", headers={**AUTH, "Origin": "https://ui.example"})
    assert simple.headers["access-control-allow-origin"] == "https://ui.example"


async def test_openapi_has_the_security_scheme_and_every_route(
    anonymous: httpx.AsyncClient,
) -> None:
    """The document declares the X-API-Key scheme, applies it, and lists every SPEC route."""
    document = (await anonymous.get("/api/v1/openapi.json")).json()
    scheme = document["components"]["securitySchemes"]["X-API-Key"]
    assert (scheme["type"], scheme["name"], scheme["in"]) == ("apiKey", "X-API-Key", "header")
    paths = document["paths"]
    expected = {
        "/health": {"get"}, "/api/v1/health": {"get"}, "/": {"get"},
        "/api/v1/sources": {"get", "post"},
        "/api/v1/sources/{source_id}": {"get", "patch", "put", "delete"},
        "/api/v1/sources/{source_id}/check": {"post"},
        "/api/v1/workflows": {"get"}, "/api/v1/workflows/remote": {"get"},
        "/api/v1/workflows/remote/{flow_id}": {"get"},
        "/api/v1/workflows/sync/{flow_id}": {"post"},
        "/api/v1/workflows/{workflow_id}": {"get", "delete"},
        "/api/v1/workflows/{workflow_id}/run": {"post"},
        "/api/v1/schedules": {"get", "post"},
        "/api/v1/schedules/{schedule_id}": {"get", "patch", "put", "delete"},
        "/api/v1/schedules/{schedule_id}/enable": {"post"},
        "/api/v1/schedules/{schedule_id}/disable": {"post"},
        "/api/v1/schedules/{schedule_id}/run": {"post"},
        "/api/v1/schedules/{schedule_id}/next": {"get"},
        "/api/v1/tasks": {"get", "post"},
        "/api/v1/tasks/{task_id}": {"get", "delete"},
        "/api/v1/tasks/{task_id}/retry": {"post"},
        "/api/v1/tasks/{task_id}/cancel": {"post"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
    assert paths["/api/v1/tasks"]["get"]["security"] == [{"X-API-Key": []}]
    assert "security" not in paths["/api/v1/health"]["get"]
    assert paths["/api/v1/tasks"]["get"]["description"]
    docs = await anonymous.get("/api/v1/docs")
    assert docs.status_code == 200
    assert "html" in docs.headers["content-type"]


async def test_the_root_answers_with_the_original_services_fields(
    client: httpx.AsyncClient,
) -> None:
    """Clients of the original service read ``status``, ``service`` and the doc URLs."""
    body = (await client.get("/")).json()
    assert body["status"] == "online"
    assert body["service"] == "Spark API"
    assert "/api/v1/docs" in body["message"]
    assert body["version"]
    assert body["server_time"]
    assert (body["docs_url"], body["redoc_url"], body["openapi_url"]) == (
        "/api/v1/docs", "/api/v1/docs/redoc", "/api/v1/openapi.json")
    for path in (body["docs_url"], body["redoc_url"], body["openapi_url"]):
        assert (await client.get(path)).status_code == 200, path
