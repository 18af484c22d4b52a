"""A workflow's own webhook: ``PATCH /api/v1/workflows/{id}`` with ``webhook_url`` sends that
workflow's failed and recovered runs there, signed, with or without the global webhook."""

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest

from spark_adapters.settings import Settings
from tests.http.conftest import add_source, sync_flow, wait_for_task
from tests.servers import FakeLangflow
from tests.servers.langflow import ECHO_ID, PROMPT_ID
from tests.servers.receiver import FakeReceiver

SECRET = "workflow-webhook-secret"


@pytest.fixture
async def receivers() -> AsyncIterator[list[FakeReceiver]]:
    """Two started webhook receivers: [the workflow's, the global one]."""
    servers = [FakeReceiver(), FakeReceiver()]
    for server in servers:
        await server.start()
    yield servers
    for server in servers:
        await server.stop()


@pytest.fixture
def settings(settings: Settings, receivers: list[FakeReceiver]) -> Settings:
    """The usual test settings with a signing secret and the global webhook at the second
    receiver."""
    return msgspec.structs.replace(settings, webhook_url=receivers[1].hook_url,
                                   webhook_secret=SECRET)


async def _failed_run(client: httpx.AsyncClient, workflow: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/api/v1/workflows/{workflow['id']}/run", json="hello")
    assert response.status_code in (200, 201), response.text
    task = await wait_for_task(client, response.json()["id"])
    assert task["status"] == "failed"
    return task


async def _events(receiver: FakeReceiver, count: int) -> list[dict[str, Any]]:
    """Wait until ``receiver`` holds ``count`` deliveries; their bodies, signatures checked."""
    for _ in range(500):
        if len(receiver.deliveries) >= count:
            break
        await asyncio.sleep(0.01)
    assert len(receiver.deliveries) == count
    for delivery in receiver.deliveries:
        digest = hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
        assert delivery.headers["X-Spark-Signature"] == f"sha256={digest}"
    return [delivery.json() for delivery in receiver.deliveries]


async def test_a_workflow_webhook_hears_of_that_workflow_only(
    client: httpx.AsyncClient, langflow_server: FakeLangflow, receivers: list[FakeReceiver],
) -> None:
    """A workflow's own webhook gets its failed run, signed, and not another workflow's; the
    global webhook gets both; the setting is shown, listed and kept by a sync."""
    own, shared = receivers
    source = await add_source(client, langflow_server)
    echo = await sync_flow(client, ECHO_ID, source["id"])
    prompt = await sync_flow(client, PROMPT_ID, source["id"])
    url = f"/api/v1/workflows/{echo['id']}"
    response = await client.patch(url, json={"webhook_url": f" {own.hook_url} "})
    assert response.status_code == 200, response.text
    assert response.json()["webhook_url"] == own.hook_url
    assert response.json()["max_concurrency"] is None
    listed = {w["id"]: w for w in (await client.get("/api/v1/workflows")).json()["items"]}
    assert (listed[echo["id"]]["webhook_url"], listed[prompt["id"]]["webhook_url"]) == (
        own.hook_url, None)
    assert (await sync_flow(client, ECHO_ID, source["id"]))["webhook_url"] == own.hook_url

    langflow_server.fail_with = 400
    failed = await _failed_run(client, echo)
    other = await _failed_run(client, prompt)
    [event] = await _events(own, 1)
    assert (event["event"], event["task_id"], event["workflow_id"]) == (
        "failed", failed["id"], echo["id"])
    assert {e["task_id"] for e in await _events(shared, 2)} == {failed["id"], other["id"]}


async def test_null_stops_the_workflow_s_own_webhook_and_the_limit_is_untouched(
    client: httpx.AsyncClient, langflow_server: FakeLangflow, receivers: list[FakeReceiver],
) -> None:
    """Setting ``webhook_url`` to null stops deliveries there (the global webhook still
    hears); a PATCH of one setting leaves the other as it was."""
    own, shared = receivers
    source = await add_source(client, langflow_server)
    echo = await sync_flow(client, ECHO_ID, source["id"])
    url = f"/api/v1/workflows/{echo['id']}"
    assert (await client.patch(url, json={"max_concurrency": 3})).status_code == 200
    hooked = await client.patch(url, json={"webhook_url": own.hook_url})
    assert (hooked.json()["max_concurrency"], hooked.json()["webhook_url"]) == (3, own.hook_url)
    cleared = await client.patch(url, json={"webhook_url": None})
    assert (cleared.json()["max_concurrency"], cleared.json()["webhook_url"]) == (3, None)
    langflow_server.fail_with = 400
    await _failed_run(client, echo)
    assert len(await _events(shared, 1)) == 1
    assert own.deliveries == []


@pytest.mark.parametrize("bad", ["ftp://hooks.example/x", "not a url", "https://",
                                 "https://user:pw@hooks.example/x", 42])
async def test_a_webhook_url_that_is_not_http_is_refused(
    client: httpx.AsyncClient, langflow_server: FakeLangflow, bad: object,
) -> None:
    """Only http(s) URLs with a host and no credentials are accepted: a 400 naming the
    field, and nothing changes."""
    source = await add_source(client, langflow_server)
    echo = await sync_flow(client, ECHO_ID, source["id"])
    url = f"/api/v1/workflows/{echo['id']}"
    response = await client.patch(url, json={"webhook_url": bad})
    assert response.status_code == 400, response.text
    assert "webhook_url" in response.text
    assert "pw@" not in response.text
    assert (await client.get(url)).json()["webhook_url"] is None
