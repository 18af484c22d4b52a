"""What every dashboard page shares: the session guard, security headers, rendering, redirects
and the HTML error page.

The guard runs before each ``/ui`` handler: without a valid session, a page answers a redirect
to the sign-in page (other requests a plain 401), and an unsafe request without the session's
CSRF token a 403. Handlers marked ``opt={"public": True}`` (sign-in) skip it.

A form that is refused (a wrong key, an invalid schedule, a source that does not answer) is shown
again with the reason and answered 200: it is a page for a person to read, not an API error.
"""

import urllib.parse
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response
from litestar.response import Redirect, Template
from litestar.status_codes import (
    HTTP_303_SEE_OTHER,
    HTTP_401_UNAUTHORIZED,
    HTTP_403_FORBIDDEN,
)

from spark_core.errors import SparkError
from spark_http.docs import mount_prefix
from spark_http.errors import status_for
from spark_http.routes.health import package_version
from spark_http.ui.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    SessionSigner,
    UiSession,
    same_token,
)

UI_PATH = "/ui"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

AnyRequest = Request[Any, Any, Any]


def base_url(request: AnyRequest) -> str:
    """Where the dashboard lives for this request (``/ui``, under any mount prefix)."""
    return mount_prefix(request.scope) + UI_PATH


def signer(request: AnyRequest) -> SessionSigner:
    """The app's session signer."""
    found: SessionSigner = request.app.state.ui_sessions
    return found


def session_of(request: AnyRequest) -> UiSession:
    """The session the guard verified for this request."""
    found: UiSession = request.scope["state"]["ui_session"]
    return found


async def guard(request: AnyRequest) -> Response[Any] | None:
    """Let a request through only with a valid session and, when unsafe, its CSRF token."""
    if request.route_handler.opt.get("public"):
        return None
    session = signer(request).verify(request.cookies.get(SESSION_COOKIE))
    if session is None:
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            query = urllib.parse.urlencode({"next": target})
            return Redirect(f"{base_url(request)}/login?{query}",
                            status_code=HTTP_303_SEE_OTHER, headers=SECURITY_HEADERS)
        return Response("Sign in first", status_code=HTTP_401_UNAUTHORIZED,
                        media_type="text/plain", headers=SECURITY_HEADERS)
    if request.method not in SAFE_METHODS:
        token = request.headers.get(CSRF_HEADER)
        if token is None:
            form = await request.form()
            value = form.get(CSRF_FIELD)
            token = value if isinstance(value, str) else None
        if not same_token(token, session.csrf):
            return Response("Missing or wrong CSRF token: reload the page and try again",
                            status_code=HTTP_403_FORBIDDEN, media_type="text/plain",
                            headers=SECURITY_HEADERS)
    request.scope["state"]["ui_session"] = session
    return None


async def secure(response: Response[Any]) -> Response[Any]:
    """Add the dashboard's security headers (a strict CSP: no inline script or style)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def page(request: AnyRequest, template: str, *, status_code: int = 200,
         **context: Any) -> Template:
    """Render ``template`` with ``context`` plus what the layout needs."""
    session = request.scope["state"].get("ui_session")
    ui = {
        "base": base_url(request),
        "csrf": session.csrf if session is not None else "",
        "path": request.url.path,
        "version": package_version(),
        "notice": request.query_params.get("notice"),
        "alert": request.query_params.get("alert"),
    }
    return Template(template_name=template, context={"ui": ui, **context},
                    status_code=status_code)


def redirect(request: AnyRequest, path: str, *, notice: str | None = None,
             alert: str | None = None) -> Redirect:
    """A 303 to ``path`` under the dashboard, with a message for the next page to show."""
    query = urllib.parse.urlencode(
        {name: text for name, text in (("notice", notice), ("alert", alert)) if text})
    separator = "&" if "?" in path else "?"
    return Redirect(f"{base_url(request)}{path}{separator + query if query else ''}",
                    status_code=HTTP_303_SEE_OTHER)


def ui_error(request: AnyRequest, exc: SparkError) -> Template:
    """A Spark error on a dashboard page, as a page (the API answers JSON instead)."""
    return page(request, "error.html", status_code=status_for(exc), message=exc.message)


async def form_data(request: AnyRequest) -> dict[str, str]:
    """The submitted form's text fields, stripped (files and the CSRF field left out)."""
    form = await request.form()
    return {name: value.strip() for name, value in form.items()
            if isinstance(value, str) and name != CSRF_FIELD}


def utc_now() -> datetime:
    """Now, in UTC (for relative times on pages)."""
    return datetime.now(UTC)
