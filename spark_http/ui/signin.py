"""Sign-in and sign-out: an API key pasted once becomes a session cookie (see ``session``)."""

import asyncio
from typing import Any

from litestar import Controller, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER, HTTP_403_FORBIDDEN

from spark_http.auth import ApiKeyAuth
from spark_http.ui.pages import AnyRequest, base_url, form_data, page, session_of, signer
from spark_http.ui.session import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    new_login_token,
    same_token,
)

FAILED_SIGN_IN_DELAY = 0.5
"""Seconds a wrong key waits before its answer: slows down guessing."""


def _cookie(request: AnyRequest, name: str, value: str, *, path: str, max_age: int) -> Cookie:
    return Cookie(key=name, value=value, path=path, max_age=max_age, httponly=True,
                  samesite="strict", secure=request.url.scheme == "https")


def _next_page(request: AnyRequest, wanted: str | None) -> str:
    """Where to go after signing in: a dashboard path the user asked for, else the overview
    (never another site: ``//evil`` and absolute URLs are refused)."""
    base = base_url(request)
    if wanted and wanted.startswith(base + "/") and not wanted.startswith("//") \
            and "\\" not in wanted and "/login" not in wanted:
        return wanted
    return base + "/"


class SignInController(Controller):
    """The sign-in form, signing in and signing out."""

    path = "/"

    def _form(self, request: AnyRequest, *, error: str | None = None,
              wanted: str | None = None) -> Template:
        token = new_login_token()
        wanted = wanted if wanted is not None else request.query_params.get("next", "")
        template = page(request, "login.html", login_token=token,
                        error=error, next=wanted,
                        signed_out=request.query_params.get("signed_out") is not None)
        template.cookies.append(_cookie(request, LOGIN_COOKIE, token,
                                        path=base_url(request) + "/login", max_age=3600))
        return template

    @get("/login", opt={"public": True}, sync_to_thread=False)
    def login_form(self, request: AnyRequest) -> Template:
        """The sign-in form."""
        return self._form(request)

    @post("/login", opt={"public": True})
    async def login(self, request: AnyRequest) -> Response[Any]:
        """Check the pasted key; on success start a session and go where the user was going."""
        form = await request.form()
        fields = await form_data(request)
        submitted = form.get(CSRF_FIELD)
        if not same_token(submitted if isinstance(submitted, str) else None,
                          request.cookies.get(LOGIN_COOKIE, "\0")):
            return Response("The sign-in form expired: reload it and try again",
                            status_code=HTTP_403_FORBIDDEN, media_type="text/plain")
        key = fields.get("api_key", "")
        auth: ApiKeyAuth = request.app.state.auth
        if not key or not auth.accepts(key):
            await asyncio.sleep(FAILED_SIGN_IN_DELAY)
            return self._form(request, error="That key is not one of this server's API keys.",
                              wanted=fields.get("next", ""))
        value, _session = signer(request).issue(key)
        response = Redirect(_next_page(request, fields.get("next")),
                            status_code=HTTP_303_SEE_OTHER)
        response.cookies.append(_cookie(request, SESSION_COOKIE, value, path=base_url(request),
                                        max_age=signer(request).lifetime))
        response.cookies.append(_cookie(request, LOGIN_COOKIE, "", path=base_url(request)
                                        + "/login", max_age=0))
        return response

    @post("/logout")
    async def logout(self, request: AnyRequest) -> Redirect:
        """End the session: the cookie is cleared and the session revoked."""
        signer(request).revoke(session_of(request))
        response = Redirect(f"{base_url(request)}/login?signed_out=1",
                            status_code=HTTP_303_SEE_OTHER)
        response.cookies.append(_cookie(request, SESSION_COOKIE, "", path=base_url(request),
                                        max_age=0))
        return response
