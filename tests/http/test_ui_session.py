"""Who may use the dashboard: sign-in with a key, a signed session cookie, CSRF on every unsafe
request, expiry and sign-out; ``/api/v1`` keeps its header auth whatever the session."""

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from litestar import Litestar

from spark_adapters.settings import Settings
from spark_http.ui.session import SESSION_COOKIE, SessionSigner
from tests.http.conftest import API_KEY, SECOND_KEY, http_client
from tests.ui.signin import login_token, sign_in_async

HTML = {"Accept": "text/html"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The session rules do not depend on the store: SQLite only, two keys."""
    return Settings(api_keys=(API_KEY, SECOND_KEY), data_dir=tmp_path)


@pytest.fixture
async def browser(running_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """A client with a cookie jar and no API key, as a browser is."""
    async with http_client(running_app) as client:
        yield client


async def test_a_page_without_a_session_sends_the_visitor_to_sign_in(
    browser: httpx.AsyncClient,
) -> None:
    """A dashboard page answers a redirect to the sign-in form naming where to go back."""
    answer = await browser.get("/ui/tasks/", params={"status": "failed"}, headers=HTML)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login?next=%2Fui%2Ftasks%3Fstatus%3Dfailed"


async def test_fragments_and_the_event_stream_without_a_session_are_401(
    browser: httpx.AsyncClient,
) -> None:
    """What scripts fetch answers 401, not a redirect to a page."""
    for path in ("/ui/events", "/ui/fragments/overview-counts", "/ui/schedules/preview"):
        assert (await browser.get(path)).status_code == 401, path


async def test_a_wrong_key_is_refused_and_starts_no_session(browser: httpx.AsyncClient) -> None:
    """The form shows again with the reason, and no session cookie is set."""
    form = await browser.get("/ui/login")
    answer = await browser.post("/ui/login", data={"_csrf": login_token(form.text),
                                                   "api_key": "wrong"})
    assert "not one of this server&#39;s API keys" in answer.text
    assert SESSION_COOKIE not in answer.cookies


async def test_signing_in_sets_an_http_only_strict_cookie_without_the_key(
    browser: httpx.AsyncClient,
) -> None:
    """The cookie is HttpOnly, SameSite=Strict, scoped to /ui, and holds a session id."""
    form = await browser.get("/ui/login")
    answer = await browser.post("/ui/login", data={"_csrf": login_token(form.text),
                                                   "api_key": API_KEY, "next": "/ui/tasks/"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/tasks/"
    cookie = next(value for value in answer.headers.get_list("set-cookie")
                  if value.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    assert "Path=/ui" in cookie
    assert API_KEY not in cookie
    assert (await browser.get("/ui/", headers=HTML)).status_code == 200


async def test_sign_in_goes_back_only_to_a_dashboard_page(browser: httpx.AsyncClient) -> None:
    """A ``next`` naming another site is ignored: sign-in lands on the overview."""
    for wanted in ("//evil.example/ui/", "https://evil.example/", "/api/v1/tasks"):
        browser.cookies.clear()
        form = await browser.get("/ui/login")
        answer = await browser.post("/ui/login", data={"_csrf": login_token(form.text),
                                                       "api_key": API_KEY, "next": wanted})
        assert answer.headers["location"] == "/ui/", wanted


async def test_the_sign_in_form_needs_its_own_token(browser: httpx.AsyncClient) -> None:
    """A sign-in post without the form's double-submit token is forbidden (login CSRF)."""
    answer = await browser.post("/ui/login", data={"api_key": API_KEY})
    assert answer.status_code == 403
    assert SESSION_COOKIE not in answer.cookies


async def test_an_unsafe_request_needs_the_session_csrf_token(
    browser: httpx.AsyncClient,
) -> None:
    """Without the token, or with a wrong one, a post is 403 and changes nothing; the form
    field or the header carries it."""
    csrf = await sign_in_async(browser, API_KEY)
    assert (await browser.post("/ui/sources/", data={"name": "x"})).status_code == 403
    wrong = await browser.post("/ui/sources/", data={"name": "x", "_csrf": csrf[:-2] + "zz"})
    assert wrong.status_code == 403
    header = await browser.post("/ui/logout", headers={"X-CSRF-Token": "nope"})
    assert header.status_code == 403
    assert (await browser.get("/ui/", headers=HTML)).status_code == 200  # still signed in
    done = await browser.post("/ui/logout", headers={"X-CSRF-Token": csrf})
    assert done.status_code == 303


async def test_signing_out_revokes_the_session(browser: httpx.AsyncClient) -> None:
    """After sign-out the old cookie value is refused even when sent again."""
    csrf = await sign_in_async(browser, API_KEY)
    kept = browser.cookies[SESSION_COOKIE]
    answer = await browser.post("/ui/logout", data={"_csrf": csrf})
    assert answer.headers["location"] == "/ui/login?signed_out=1"
    assert SESSION_COOKIE not in browser.cookies
    browser.cookies.set(SESSION_COOKIE, kept, path="/ui")
    assert (await browser.get("/ui/", headers=HTML)).status_code == 303


async def test_an_expired_or_forged_session_is_refused(browser: httpx.AsyncClient) -> None:
    """A token past its expiry, a tampered one and one signed with an unknown key are all
    sent to sign in."""
    expired, _ = SessionSigner([API_KEY], clock=lambda: time.time() - 13 * 3600).issue(API_KEY)
    valid, _ = SessionSigner([API_KEY]).issue(API_KEY)
    stranger, _ = SessionSigner(["not-configured"]).issue("not-configured")
    prefix = valid.rpartition(".")[0]
    tampered = valid.replace(valid.split(".")[2], str(int(valid.split(".")[2]) + 3600))
    for token in (expired, tampered, stranger, "garbage", f"{prefix}.x"):
        browser.cookies.set(SESSION_COOKIE, token, path="/ui")
        assert (await browser.get("/ui/", headers=HTML)).status_code == 303, token
    browser.cookies.set(SESSION_COOKIE, valid, path="/ui")
    assert (await browser.get("/ui/", headers=HTML)).status_code == 200


def test_removing_a_key_ends_the_sessions_made_with_it_only() -> None:
    """A session is verified only while the key it was made with is configured."""
    both = SessionSigner([API_KEY, SECOND_KEY])
    first, _ = both.issue(API_KEY)
    second, _ = both.issue(SECOND_KEY)
    rotated = SessionSigner([SECOND_KEY])
    assert rotated.verify(first) is None
    assert rotated.verify(second) is not None


async def test_the_api_keeps_its_header_auth_whatever_the_session(
    browser: httpx.AsyncClient,
) -> None:
    """A signed-in browser still gets 401 from /api/v1 without X-API-Key."""
    await sign_in_async(browser, API_KEY)
    browser.cookies.set(SESSION_COOKIE, browser.cookies[SESSION_COOKIE], path="/")
    assert (await browser.get("/api/v1/tasks")).status_code == 401
    answer = await browser.get("/api/v1/tasks", headers={"X-API-Key": API_KEY})
    assert answer.status_code == 200


async def test_dashboard_pages_carry_a_strict_content_security_policy(
    browser: httpx.AsyncClient,
) -> None:
    """No inline script or style is allowed, and pages are not cached or framed."""
    answer = await browser.get("/ui/login")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-store"


async def test_the_dashboard_is_not_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    """The OpenAPI document lists the REST API only."""
    paths = (await client.get("/api/v1/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/ui")]


async def test_the_stylesheet_and_script_are_served_without_a_session(
    browser: httpx.AsyncClient,
) -> None:
    """The static files hold nothing secret; the sign-in page needs them."""
    for name, kind in (("spark.css", "text/css"), ("spark.js", "javascript")):
        answer = await browser.get(f"/ui/static/{name}")
        assert answer.status_code == 200
        assert kind in answer.headers["content-type"]
