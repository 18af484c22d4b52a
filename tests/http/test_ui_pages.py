"""Every dashboard page and form through the app in process, over a real SQLite store and the
loopback fake LangFlow: what the browser test does not click (edit, resume, delete, check,
remove, retry, bulk retry, errors) is exercised here."""

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from litestar import Litestar

from spark_adapters.settings import Settings
from tests.http.conftest import API_KEY, add_source, http_client, sync_flow, wait_for_task
from tests.servers import FakeLangflow
from tests.servers.langflow import ECHO_ID, FAIL_ID
from tests.ui.signin import sign_in_async

HTML = {"Accept": "text/html"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """SQLite only: the pages read through the services, which the API tests cover on both
    stores."""
    return Settings(api_keys=(API_KEY,), data_dir=tmp_path, http_timeout=20.0, workers=4)


@pytest.fixture
async def browser(running_app: Litestar) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A signed-in client without the API key, and its CSRF token."""
    async with http_client(running_app) as client:
        yield client, await sign_in_async(client, API_KEY)


def notice(answer: httpx.Response) -> str:
    """The message a redirect carries for the next page."""
    return httpx.URL(answer.headers["location"]).params.get("notice", "")


def alert(answer: httpx.Response) -> str:
    """The error a redirect carries for the next page."""
    return httpx.URL(answer.headers["location"]).params.get("alert", "")


async def test_sources_are_added_checked_refused_and_removed(
    browser: tuple[httpx.AsyncClient, str], langflow_server: FakeLangflow,
) -> None:
    """Adding validates as the API does (a refused key shows the form again with the reason
    and the fields kept, the key not); check and remove report what they did."""
    client, csrf = browser
    refused = await client.post("/ui/sources/", data={
        "_csrf": csrf, "name": "lf", "source_type": "langflow", "url": langflow_server.url,
        "api_key": "wrong-key", "verify_tls": "on"})
    assert refused.status_code == 200
    assert 'class="flash alert"' in refused.text
    assert langflow_server.url in refused.text
    assert "wrong-key" not in refused.text
    added = await client.post("/ui/sources/", data={
        "_csrf": csrf, "name": "lf", "source_type": "langflow", "url": langflow_server.url,
        "api_key": langflow_server.api_key, "verify_tls": "on"})
    assert notice(added).startswith("Added lf")
    listed = await client.get("/ui/sources/")
    source_id = re.search(r"/ui/sources/([0-9a-f-]{36})/check", listed.text)
    assert source_id is not None
    checked = await client.post(f"/ui/sources/{source_id.group(1)}/check", data={"_csrf": csrf})
    assert notice(checked) == "lf answered: 1.13.0."
    langflow_server.healthy = False
    failed = await client.post(f"/ui/sources/{source_id.group(1)}/check", data={"_csrf": csrf})
    assert alert(failed).startswith("Check failed")
    assert "inactive" in (await client.get("/ui/sources/")).text
    removed = await client.post(f"/ui/sources/{source_id.group(1)}/delete",
                                data={"_csrf": csrf})
    assert notice(removed).startswith("Removed the source with 0 workflow(s)")


async def test_schedules_are_created_edited_paused_resumed_fired_and_deleted(
    browser: tuple[httpx.AsyncClient, str], client: httpx.AsyncClient,
    langflow_server: FakeLangflow,
) -> None:
    """The whole life of a schedule through its forms; an invalid expression shows the form
    again with the reason; the ledger filter and the edit form render."""
    page, csrf = browser
    source = await add_source(client, langflow_server)
    workflow = await sync_flow(client, ECHO_ID, source["id"])
    form = {"_csrf": csrf, "workflow_id": workflow["id"], "schedule_type": "cron",
            "timezone": "UTC", "input_value": "hi", "overlap_policy": "skip",
            "catchup_policy": "latest", "max_retries": "2", "timeout": ""}
    bad = await page.post("/ui/schedules/", data={**form, "schedule_expr": "61 * * * *"})
    assert bad.status_code == 200
    assert 'class="flash alert"' in bad.text
    created = await page.post("/ui/schedules/", data={**form, "schedule_expr": "0 9 * * *"})
    assert notice(created) == "Schedule created."
    url = httpx.URL(created.headers["location"]).path
    shown = await page.get(url)
    assert "Next fire:" in shown.text
    edit = await page.get(f"{url}/edit")
    assert 'value="0 9 * * *"' in edit.text
    saved = await page.post(f"{url}/edit", data={**form, "schedule_expr": "30 8 * * 1-5",
                                                 "timezone": "Europe/Berlin"})
    assert notice(saved) == "Schedule saved."
    assert "30 8 * * 1-5" in (await page.get(url)).text
    refused = await page.post(f"{url}/edit", data={**form, "schedule_expr": "30 8",
                                                    "timezone": "Europe/Berlin"})
    assert 'class="flash alert"' in refused.text
    paused = await page.post(f"{url}/pause", data={"_csrf": csrf, "note": "holiday"})
    assert notice(paused) == "Schedule paused."
    assert "note: holiday" in (await page.get(url)).text
    resumed = await page.post(f"{url}/resume", data={"_csrf": csrf})
    assert notice(resumed) == "Schedule resumed from now."
    fired = await page.post(f"{url}/run", data={"_csrf": csrf})
    task_path = httpx.URL(fired.headers["location"]).path
    task = await wait_for_task(client, task_path.rsplit("/", 1)[1])
    assert task["status"] == "completed"
    assert (await page.get(url, params={"outcome": "missed"})).status_code == 200
    listed = await page.get("/ui/schedules/")
    assert "30 8 * * 1-5" in listed.text
    assert (await page.get("/ui/")).status_code == 200
    deleted = await page.post(f"{url}/delete", data={"_csrf": csrf})
    assert notice(deleted) == "Schedule deleted."
    gone = await page.get(url)
    assert gone.status_code == 404
    assert "not found" in gone.text


async def test_tasks_are_retried_cancelled_and_retried_in_bulk(
    browser: tuple[httpx.AsyncClient, str], client: httpx.AsyncClient,
    langflow_server: FakeLangflow,
) -> None:
    """A failed task is retried from its page; a bulk retry of the failed ones states its
    count first and does that many; a finished task cannot be cancelled (the reason shown)."""
    page, csrf = browser
    source = await add_source(client, langflow_server)
    failing = await sync_flow(client, FAIL_ID, source["id"])
    for number in range(3):
        task = await client.post("/api/v1/tasks", json={"workflow_id": failing["id"],
                                                        "input_data": f"f{number}",
                                                        "max_retries": 0})
        await wait_for_task(client, task.json()["id"])
    detail = await page.get(f"/ui/tasks/{task.json()['id']}")
    assert "Error" in detail.text
    cancel = await page.post(f"/ui/tasks/{task.json()['id']}/cancel", data={"_csrf": csrf})
    assert "already finished" in alert(cancel)
    retried = await page.post(f"/ui/tasks/{task.json()['id']}/retry", data={"_csrf": csrf})
    assert notice(retried) == "Queued again."
    await wait_for_task(client, httpx.URL(retried.headers["location"]).path.rsplit("/", 1)[1])
    confirm = await page.get("/ui/tasks/bulk", params={"action": "retry", "status": "failed",
                                                       "workflow_id": failing["id"]})
    assert "4 task(s) will be run again" in confirm.text
    done = await page.post("/ui/tasks/bulk", data={
        "_csrf": csrf, "action": "retry", "status": "failed", "workflow_id": failing["id"]})
    assert notice(done) == "Queued again 4 task(s)."
    total = (await client.get("/api/v1/tasks", params={"workflow_id": failing["id"]})).json()
    assert total["total"] == 8
    searched = await page.get("/ui/tasks/", params={"q": "F2"})
    # f2, its retry from its page, and the bulk retries of both
    assert searched.text.count('data-task="') == 4


async def test_workflow_pages_list_sync_and_run(
    browser: tuple[httpx.AsyncClient, str], client: httpx.AsyncClient,
    langflow_server: FakeLangflow,
) -> None:
    """The remote list offers every flow (components left out); sync and run answer with
    redirects to the workflow and the task; an unknown workflow is a 404 page."""
    page, csrf = browser
    await add_source(client, langflow_server)
    remote = await page.get("/ui/workflows/remote")
    assert "spark-echo" in remote.text
    assert "spark-component" not in remote.text
    synced = await page.post("/ui/workflows/sync", data={"_csrf": csrf, "flow_id": ECHO_ID})
    assert notice(synced) == "Synced spark-echo."
    workflow_path = httpx.URL(synced.headers["location"]).path
    ran = await page.post(f"{workflow_path}/run", data={"_csrf": csrf, "input": "to echo"})
    task_id = httpx.URL(ran.headers["location"]).path.rsplit("/", 1)[1]
    assert (await wait_for_task(client, task_id))["output_data"] == "to echo"
    panel = await page.get(f"/ui/fragments/task/{task_id}")
    assert "to echo" in panel.text
    catalogue = await page.get("/ui/workflows/", params={"q": "echo"})
    assert "100 %" in catalogue.text
    assert (await page.get("/ui/workflows/nope")).status_code == 404


async def test_a_workflow_s_settings_are_saved_refused_and_cleared_from_its_page(
    browser: tuple[httpx.AsyncClient, str], client: httpx.AsyncClient,
    langflow_server: FakeLangflow,
) -> None:
    """The settings form stores the limit and the webhook (the API shows them), refuses a
    webhook that is not http(s) with the reason and keeps what was stored, and empty fields
    clear both."""
    page, csrf = browser
    source = await add_source(client, langflow_server)
    workflow = await sync_flow(client, ECHO_ID, source["id"])
    path = f"/ui/workflows/{workflow['id']}"
    saved = await page.post(f"{path}/settings", data={
        "_csrf": csrf, "max_concurrency": "2", "webhook_url": "https://hooks.example/spark"})
    assert notice(saved) == "Settings saved."
    stored = (await client.get(f"/api/v1/workflows/{workflow['id']}")).json()
    assert (stored["max_concurrency"], stored["webhook_url"]) == (
        2, "https://hooks.example/spark")
    shown = await page.get(path)
    assert 'value="https://hooks.example/spark"' in shown.text
    refused = await page.post(f"{path}/settings", data={
        "_csrf": csrf, "max_concurrency": "2", "webhook_url": "ftp://hooks.example/x"})
    assert "http:// or https://" in alert(refused)
    not_a_number = await page.post(f"{path}/settings", data={
        "_csrf": csrf, "max_concurrency": "two", "webhook_url": ""})
    assert "whole number" in alert(not_a_number)
    assert (await client.get(f"/api/v1/workflows/{workflow['id']}")).json()[
        "webhook_url"] == "https://hooks.example/spark"
    cleared = await page.post(f"{path}/settings", data={
        "_csrf": csrf, "max_concurrency": "", "webhook_url": ""})
    assert notice(cleared) == "Settings saved."
    stored = (await client.get(f"/api/v1/workflows/{workflow['id']}")).json()
    assert (stored["max_concurrency"], stored["webhook_url"]) == (None, None)
    forged = await page.post(f"{path}/settings", data={"max_concurrency": "1"})
    assert forged.status_code == 403
