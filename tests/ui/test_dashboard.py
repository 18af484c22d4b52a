"""The dashboard in a real browser: the whole main path a new user takes, against a real
`spark serve` and a loopback fake LangFlow, failing on any console error, with a screenshot of
each page in ``build/ui-screenshots``."""

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.processes import API_KEY, Servers, SparkProcess, wait_for
from tests.servers import LANGFLOW_KEY, FakeLangflow
from tests.servers.langflow import ECHO_ID, FAIL_ID

sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the playwright package is not installed")
expect = sync_api.expect

pytestmark = pytest.mark.slow
LIVE = 15_000
"""Milliseconds a live change may take to show (the feed polls once a second)."""


class Console:
    """Every console error and uncaught exception of the pages it watches."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Any) -> Any:
        page.on("console", lambda message: message.type == "error"
                and self.errors.append(f"{page.url}: {message.text}"))
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        return page


@pytest.fixture
def server(servers: Servers) -> SparkProcess:
    """`spark serve` with one worker, so that slow runs leave others pending."""
    return servers.start(SPARK_WORKERS="1")


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (no cookies)."""
    opened = browser.new_context(viewport={"width": 1280, "height": 900})
    yield opened
    opened.close()


def shoot(page: Any, directory: Path, name: str) -> None:
    """A full-page screenshot of ``page`` as ``name``.png."""
    page.screenshot(path=str(directory / f"{name}.png"), full_page=True)


def status_of(url: str, cookie: str) -> int:
    """The status of a GET sent with ``cookie``, redirects not followed."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers={"Cookie": cookie, "Accept": "text/html"})
    try:
        with opener.open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def workflow_source(server: SparkProcess) -> str:
    """The id of the (only) source."""
    source_id: str = server.call("GET", "/api/v1/sources")["items"][0]["id"]
    return source_id


def test_a_new_user_does_the_whole_main_path_in_the_browser(
    server: SparkProcess, langflow: FakeLangflow, context: Any, screenshots: Path,
) -> None:
    """Sign in, add a source, sync a flow, run it and watch the answer arrive live, create a
    schedule with its live preview, read its ledger, pause it, bulk-cancel pending tasks, sign
    out and be refused; no page logs a console error."""
    console = Console()
    page = console.watch(context.new_page())
    ui = f"{server.base}/ui"

    # Sign-in: every page sends an anonymous visitor to the form; a wrong key is refused.
    page.goto(f"{ui}/tasks/")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    shoot(page, screenshots, "login")
    page.keyboard.type("not-the-key")  # the key field has the focus: keyboard only
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("not one of this server's API keys")
    page.fill("#api_key", API_KEY)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/ui/tasks/?$"))
    cookie = next(c for c in context.cookies() if c["name"] == "spark_session")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    assert API_KEY not in cookie["value"]

    # Overview.
    page.goto(f"{ui}/")
    expect(page.locator(".health")).to_contain_text("database ok")
    page.keyboard.press("Tab")  # keyboard users get past the navigation first
    expect(page.locator(":focus")).to_have_text("Skip to content")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("⚡ Spark")
    expect(page.locator("#live")).to_have_class(re.compile(r"\bon\b"), timeout=LIVE)
    shoot(page, screenshots, "overview-empty")

    # Sources: add the fake LangFlow, validated against it as the API does.
    page.click("nav >> text=Sources")
    page.fill("input[name=name]", "Local LangFlow")
    page.select_option("select[name=source_type]", "langflow")
    page.fill("input[name=url]", langflow.url)
    page.fill("input[name=api_key]", LANGFLOW_KEY)
    page.click("text=Add and check")
    expect(page.locator(".flash.notice")).to_contain_text("Added Local LangFlow")
    expect(page.locator("table.grid")).to_contain_text("1.13.0")
    shoot(page, screenshots, "sources")

    # Workflows: the source's flows, and syncing one.
    page.click("nav >> text=Workflows")
    page.click("text=Sync from sources")
    row = page.locator("tr", has_text="spark-echo")
    expect(row).to_be_visible()
    shoot(page, screenshots, "remote-flows")
    row.get_by_role("button", name="Sync").click()
    expect(page.locator(".flash.notice")).to_contain_text("Synced spark-echo")
    workflow_url = page.url

    # Run it with an input; the tasks list in a second tab shows the new task arrive live.
    tasks_tab = console.watch(context.new_page())
    tasks_tab.goto(f"{ui}/tasks/")
    expect(tasks_tab.locator("#live")).to_have_class(re.compile(r"\bon\b"), timeout=LIVE)
    tasks_tab.evaluate("window.notReloaded = true")
    page.fill("textarea[name=input]", "hello from the dashboard")
    page.click("button:has-text('Run')")
    expect(page).to_have_url(re.compile(r"/ui/tasks/[0-9a-f-]{36}"))
    expect(page.locator("#answer")).to_have_text("hello from the dashboard", timeout=LIVE)
    expect(page.locator("#task-panel .badge").first).to_have_text("completed")
    shoot(page, screenshots, "task")
    live_row = tasks_tab.locator("tr[data-task]", has_text="hello from the dashboard")
    expect(live_row).to_contain_text("completed", timeout=LIVE)
    expect(tasks_tab.locator("#tasks-total")).to_have_text("1")
    assert tasks_tab.evaluate("window.notReloaded") is True
    shoot(tasks_tab, screenshots, "tasks")
    page.goto(workflow_url)
    shoot(page, screenshots, "workflow")
    page.click("nav >> text=Workflows")
    expect(page.locator("table.grid")).to_contain_text("100 %")
    shoot(page, screenshots, "workflows")

    # Schedules: the preview follows the expression as it is typed, errors included.
    page.click("nav >> text=Schedules")
    page.click("text=New schedule")
    expression = page.locator("#schedule_expr")
    expression.fill("0 9 * * mon")
    expect(page.locator("#preview-times li")).to_have_count(5)
    expect(page.locator("#preview-times li").first).to_contain_text("09:00:00")
    expression.fill("0 9 * *")
    expect(page.locator("#preview-error")).to_contain_text("cron")
    expect(page.locator("#preview-times li")).to_have_count(0)
    page.select_option("#schedule_type", "interval")
    expression.fill("2s")
    expect(page.locator("#preview-times li")).to_have_count(5)
    expect(page.locator("#preview-error")).to_be_hidden()
    page.fill("textarea[name=input_value]", "scheduled hello")
    shoot(page, screenshots, "schedule-form")
    page.click("button:has-text('Create')")
    expect(page.locator(".flash.notice")).to_contain_text("Schedule created")
    schedule_url = page.url

    # The ledger: a record per nominal time, with its outcome and reason.
    def ledger_row() -> bool:
        page.goto(schedule_url)
        return page.locator("table.ledger tbody tr").count() > 0

    wait_for(ledger_row, within=30, what="a fire-ledger record")
    first = page.locator("table.ledger tbody tr").first
    expect(first).to_contain_text("fired")
    expect(first.locator("a")).to_have_attribute("href", re.compile(r"/ui/tasks/"))
    expect(page.locator(".timeline .cell.tone-good").first).to_be_visible()
    expect(page.locator(".timeline .cell.upcoming")).not_to_have_count(0)

    # The overview with a failure among the runs and the schedule's next fires.
    failing = server.call("POST", f"/api/v1/workflows/sync/{FAIL_ID}",
                          params={"source_id": workflow_source(server)})
    server.call("POST", "/api/v1/tasks", {"workflow_id": failing["id"],
                                          "input_data": "this one fails",
                                          "max_retries": 0}, expect=201)
    wait_for(lambda: server.tasks(status="failed"), within=15, what="the failed run")
    page.goto(f"{ui}/")
    expect(page.locator(".failures li").first).to_contain_text("spark-fail", timeout=LIVE)
    expect(page.locator("table.grid", has_text="Workflow")).not_to_have_count(0)
    shoot(page, screenshots, "overview")

    # Pause it with a note.
    page.goto(schedule_url)
    page.fill("#note", "maintenance window")
    page.click("button:has-text('Pause')")
    expect(page.locator("h1 .badge")).to_have_text("paused")
    expect(page.locator("#explanation")).to_contain_text("paused")
    shoot(page, screenshots, "schedule")
    page.click("nav >> text=Schedules")
    expect(page.locator("table.grid")).to_contain_text("paused")
    shoot(page, screenshots, "schedules")

    # Bulk cancel: slow runs on one worker leave tasks pending; the count comes first.
    langflow.delay = 30.0
    workflow_id = workflow_url.split("?")[0].rsplit("/", 1)[1]
    for number in range(4):
        server.call("POST", "/api/v1/tasks", {"workflow_id": workflow_id,
                                              "input_data": f"queued {number}"}, expect=201)
    wait_for(lambda: len(server.tasks(status="running")) == 1, within=15,
             what="one run holding the only worker")
    pending = len(server.tasks(status="pending"))
    assert pending >= 3
    page.goto(f"{ui}/tasks/?status=pending")
    page.click("text=Cancel all matching…")
    expect(page.locator("#bulk-count")).to_contain_text(f"{pending} task(s) will be cancelled")
    shoot(page, screenshots, "bulk-cancel")
    page.click(f"button:has-text('Cancel {pending} task(s)')")
    expect(page.locator(".flash.notice")).to_contain_text(f"Cancelled {pending} task(s)")
    assert server.tasks(status="pending") == []
    for task in server.tasks(status="running"):
        server.call("POST", f"/api/v1/tasks/{task['id']}/cancel")
    langflow.delay = 0.0

    # Overview with data, also on a phone.
    page.goto(f"{ui}/")
    expect(page.locator("[data-count=cancelled]")).not_to_have_text("0")
    shoot(page, screenshots, "overview-cancelled")
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, screenshots, "overview-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Sign out: the session is gone, from the browser and on the server.
    session = f"spark_session={cookie['value']}"
    page.click("button:has-text('Sign out')")
    expect(page.locator(".flash.notice")).to_contain_text("signed out")
    page.goto(f"{ui}/tasks/")
    expect(page).to_have_url(re.compile(r"/ui/login"))
    assert status_of(f"{ui}/tasks/", session) == 303

    assert console.errors == []
    assert ECHO_ID in {run["flow_id"] for run in langflow.runs}
