"""Run notifications through the whole service: ``SPARK_WEBHOOK_URL`` hears of a failed run and
of the first success after it, signed with ``SPARK_WEBHOOK_SECRET``; a webhook that is down
changes nothing about the runs."""

import asyncio
import hashlib
import hmac
from typing import Any

import httpx
import msgspec
import pytest

from spark_adapters.settings import Settings
from tests.http.conftest import add_source, sync_flow, wait_for_task
from tests.servers import FakeLangflow
from tests.servers.langflow import ECHO_ID
from tests.servers.receiver import FakeReceiver

SECRET = "webhook-secret-for-tests"


@pytest.fixture
def settings(settings: Settings, receiver: FakeReceiver) -> Settings:
    """The usual test settings with the webhook pointed at ``receiver``."""
    return msgspec.structs.replace(settings, webhook_url=receiver.hook_url, webhook_secret=SECRET)


@pytest.fixture
async def workflow(client: httpx.AsyncClient, langflow_server: FakeLangflow) -> dict[str, Any]:
    """The echo flow, synced from a LangFlow source."""
    source = await add_source(client, langflow_server)
    return await sync_flow(client, ECHO_ID, source["id"])


async def _run(client: httpx.AsyncClient, workflow: dict[str, Any]) -> dict[str, Any]:
    """Run ``workflow`` once and wait for its final task."""
    response = await client.post(f"/api/v1/workflows/{workflow['id']}/run", json="hello")
    assert response.status_code in (200, 201), response.text
    return await wait_for_task(client, response.json()["id"])


async def _deliveries(receiver: FakeReceiver, count: int) -> list[Any]:
    """Wait until ``receiver`` holds ``count`` deliveries; return their bodies, each checked
    against its signature."""
    for _ in range(500):
        if len(receiver.deliveries) >= count:
            break
        await asyncio.sleep(0.01)
    bodies = []
    for delivery in receiver.deliveries:
        digest = hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(delivery.headers["X-Spark-Signature"], f"sha256={digest}")
        bodies.append(delivery.json())
    assert len(bodies) == count
    return bodies


async def test_a_failed_run_then_a_success_post_failed_then_recovered(
    client: httpx.AsyncClient, workflow: dict[str, Any], langflow_server: FakeLangflow,
    receiver: FakeReceiver,
) -> None:
    """The webhook gets a signed ``failed`` event, then ``recovered`` for the next success,
    and nothing for the success after that."""
    langflow_server.fail_with = 400
    failed = await _run(client, workflow)
    assert failed["status"] == "failed"
    [event] = await _deliveries(receiver, 1)
    assert event["event"] == "failed"
    assert event["task_id"] == failed["id"]
    assert event["workflow_id"] == workflow["id"]
    assert event["error"] == failed["error"]

    langflow_server.fail_with = None
    recovered = await _run(client, workflow)
    assert recovered["status"] == "completed"
    events = await _deliveries(receiver, 2)
    assert events[1]["event"] == "recovered"
    assert events[1]["task_id"] == recovered["id"]
    assert events[1]["previous_task_id"] == failed["id"]

    assert (await _run(client, workflow))["status"] == "completed"
    await _deliveries(receiver, 2)


async def test_a_webhook_that_is_down_changes_nothing_about_the_runs(
    client: httpx.AsyncClient, workflow: dict[str, Any], langflow_server: FakeLangflow,
    receiver: FakeReceiver,
) -> None:
    """With the receiver gone, a failing run fails once with the source's error and the next
    run completes, as they would with no webhook configured."""
    await receiver.stop()
    langflow_server.fail_with = 400
    failed = await _run(client, workflow)
    assert (failed["status"], failed["tries"]) == ("failed", 1)
    assert "400" in failed["error"]
    langflow_server.fail_with = None
    completed = await _run(client, workflow)
    assert (completed["status"], completed["tries"], completed["error"]) == ("completed", 1, None)
    assert completed["output_data"] == "hello"
