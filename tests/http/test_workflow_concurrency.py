"""``PATCH /api/v1/workflows/{id}`` with ``max_concurrency``: set, shown, kept by a sync, and
held by the worker (runs beyond it wait pending)."""

import asyncio

import httpx

from tests.http.conftest import add_source, sync_flow, wait_for_task
from tests.servers import FakeLangflow
from tests.servers.langflow import SLOW_ID


async def test_max_concurrency_is_set_shown_listed_and_kept_by_a_sync(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """The PATCH answers the workflow with the limit; reads and lists show it; a sync keeps
    it; null lifts it; a body without it changes nothing."""
    source = await add_source(client, langflow_server)
    workflow = await sync_flow(client, SLOW_ID, source["id"])
    assert workflow["max_concurrency"] is None
    url = f"/api/v1/workflows/{workflow['id']}"
    response = await client.patch(url, json={"max_concurrency": 2})
    assert response.status_code == 200, response.text
    assert response.json()["max_concurrency"] == 2
    assert (await client.get(url)).json()["max_concurrency"] == 2
    [listed] = (await client.get("/api/v1/workflows")).json()["items"]
    assert listed["max_concurrency"] == 2
    assert (await sync_flow(client, SLOW_ID, source["id"]))["max_concurrency"] == 2
    unchanged = await client.patch(url, json={})
    assert (unchanged.status_code, unchanged.json()["max_concurrency"]) == (200, 2)
    lifted = await client.patch(url, json={"max_concurrency": None})
    assert lifted.json()["max_concurrency"] is None


async def test_a_limit_below_one_an_unknown_field_or_workflow_is_refused(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """0 and unknown fields are 400s; an unknown workflow is a 404."""
    source = await add_source(client, langflow_server)
    workflow = await sync_flow(client, SLOW_ID, source["id"])
    url = f"/api/v1/workflows/{workflow['id']}"
    zero = await client.patch(url, json={"max_concurrency": 0})
    assert zero.status_code == 400, zero.text
    assert "max_concurrency" in zero.text
    assert (await client.patch(url, json={"max_concurency": 1})).status_code == 400
    assert (await client.patch(url, json={"max_concurrency": "two"})).status_code == 400
    missing = await client.patch("/api/v1/workflows/nope", json={"max_concurrency": 1})
    assert missing.status_code == 404


async def test_runs_beyond_the_limit_wait_pending_then_all_complete(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """With a limit of one, one of three queued runs is running and two are pending; all
    three complete one after another."""
    langflow_server.slow_seconds = 1.0
    source = await add_source(client, langflow_server)
    workflow = await sync_flow(client, SLOW_ID, source["id"])
    url = f"/api/v1/workflows/{workflow['id']}"
    assert (await client.patch(url, json={"max_concurrency": 1})).status_code == 200
    ids = []
    for n in range(3):
        queued = await client.post(f"{url}/run", params={"wait": "false"}, json=f"run {n}")
        assert queued.status_code == 202, queued.text
        ids.append(queued.json()["id"])
    for _ in range(500):
        if langflow_server.runs:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    running = await client.get("/api/v1/tasks", params={"status": "running"})
    pending = await client.get("/api/v1/tasks", params={"status": "pending"})
    assert (running.json()["total"], pending.json()["total"]) == (1, 2)
    finished = [await wait_for_task(client, task_id) for task_id in ids]
    assert [task["status"] for task in finished] == ["completed"] * 3
    assert len(langflow_server.runs) == 3
