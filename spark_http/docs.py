"""The API's documentation: served from Spark itself (no CDN, so it works offline) and aware
of the prefix the app is mounted at, so that the docs' "Try it out" calls the right paths.

The Swagger UI files come from the ``swagger-ui-bundle`` package and are served under
``/api/v1/docs/static``, public like the rest of the docs. Every rendering of the OpenAPI
document (the Swagger and Redoc pages, which embed it, and both ``openapi.json`` routes) names
the mount prefix as its one server.
"""

import copy
from typing import Any

from litestar import Request, Router
from litestar.openapi.plugins import JsonRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from litestar.types import Scope
from swagger_ui_bundle import swagger_ui_path

DOCS_URL = "/api/v1/docs"
REDOC_URL = "/api/v1/docs/redoc"
OPENAPI_URL = "/api/v1/openapi.json"

STATIC_URL = DOCS_URL + "/static"
"""Where the Swagger UI files are served, below the docs (so just as public)."""


def mount_prefix(scope: Scope) -> str:
    """The path prefix the app is mounted at ("" at the root): the ASGI ``root_path`` when the
    server or host sets it, else what the host stripped from the path it received (a Litestar
    mount keeps the original in ``raw_path`` and does not set ``root_path``)."""
    root_path = str(scope.get("root_path") or "").rstrip("/")
    if root_path:
        return root_path
    # (httpx's test transport leaves the query string on raw_path)
    raw_path = (scope.get("raw_path") or b"").decode("latin-1").partition("?")[0]
    path = str(scope.get("path", ""))
    if path and raw_path != path and raw_path.endswith(path):
        return raw_path.removesuffix(path).rstrip("/")
    return ""


def with_servers(request: Request[Any, Any, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the mount prefix as its one server."""
    return {**schema, "servers": [{"url": mount_prefix(request.scope) or "/"}]}


class SwaggerPage(SwaggerRenderPlugin):
    """Swagger UI at ``/api/v1/docs``, its script, style and icon loaded from Spark."""

    def __init__(self) -> None:
        super().__init__(path="/", favicon="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The page, with asset URLs and the server under the prefix this request came by."""
        static = mount_prefix(request.scope) + STATIC_URL
        page = copy.copy(self)  # per request: the prefix may differ, the plugin is shared
        page.css_url = f"{static}/swagger-ui.css"
        page.js_url = f"{static}/swagger-ui-bundle.js"
        page.standalone_preset_js_url = f"{static}/swagger-ui-standalone-preset.js"
        page.favicon = f"<link rel='icon' type='image/png' href='{static}/favicon-32x32.png'>"
        return SwaggerRenderPlugin.render(page, request, with_servers(request, openapi_schema))


class RedocPage(RedocRenderPlugin):
    """Redoc at ``/api/v1/docs/redoc``, naming the prefix as the server."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The page, with the server under the prefix this request came by."""
        return super().render(request, with_servers(request, openapi_schema))


class OpenApiJson(JsonRenderPlugin):
    """The document at ``/api/v1/docs/openapi.json``, naming the prefix as the server."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The document, with the server under the prefix this request came by."""
        return super().render(request, with_servers(request, openapi_schema))


def render_plugins() -> list[Any]:
    """The docs pages and document the OpenAPI configuration serves under ``/api/v1/docs``."""
    return [SwaggerPage(), RedocPage(path="/redoc"), OpenApiJson()]


def static_files() -> Router:
    """The Swagger UI files, served from the installed ``swagger-ui-bundle`` package."""
    return create_static_files_router(path=STATIC_URL, directories=[swagger_ui_path],
                                      name="docs-static", include_in_schema=False)
