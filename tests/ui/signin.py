"""Signing in to the dashboard without a browser, for the HTTP-level tests."""

import re

import httpx

CSRF_FIELD = re.compile(r'name="_csrf" value="([^"]*)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)"')


def login_token(page: str) -> str:
    """The sign-in form's token in a rendered sign-in page."""
    found = CSRF_FIELD.search(page)
    assert found, "no _csrf field on the sign-in page"
    return found.group(1)


def csrf_of(page: str) -> str:
    """The session's CSRF token in a rendered dashboard page."""
    found = CSRF_META.search(page)
    assert found, "no csrf-token meta on the page"
    return found.group(1)


def sign_in(client: httpx.Client, key: str) -> str:
    """Sign ``client`` in with ``key`` (its cookie jar keeps the session); the CSRF token."""
    form = client.get("/ui/login")
    answer = client.post("/ui/login", data={"_csrf": login_token(form.text), "api_key": key})
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/ui/", headers={"Accept": "text/html"}).text)


async def sign_in_async(client: httpx.AsyncClient, key: str) -> str:
    """``sign_in`` for an async client."""
    form = await client.get("/ui/login")
    answer = await client.post("/ui/login", data={"_csrf": login_token(form.text),
                                                  "api_key": key})
    assert answer.status_code == 303, answer.text
    return csrf_of((await client.get("/ui/", headers={"Accept": "text/html"})).text)
