"""Tasks through the API: queue, list newest first, read, cancel, retry, delete."""

from typing import Any

import httpx
import pytest

from tests.http.conftest import add_source, sync_flow, wait_for_task
from tests.servers import FakeLangflow
from tests.servers.langflow import ECHO_ID, PROMPT_ID


@pytest.fixture
async def workflow(client: httpx.AsyncClient, langflow_server: FakeLangflow) -> dict[str, Any]:
    """The echo flow, synced from a LangFlow source."""
    source = await add_source(client, langflow_server)
    return await sync_flow(client, ECHO_ID, source["id"])


async def test_create_task_answers_201_pending_then_runs(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """POST /tasks queues a run (201, pending) that the worker completes."""
    response = await client.post(
        "/api/v1/tasks/", json={"workflow_id": workflow["id"], "input_data": "queued"}
    )
    assert response.status_code == 201
    task = response.json()
    assert task["status"] == "pending"
    assert task["schedule_id"] is None
    finished = await wait_for_task(client, task["id"])
    assert finished["output_data"] == "queued"
    assert finished["output_raw"] is not None
    assert finished["finished_at"].endswith("+00:00")


async def test_list_is_newest_first_without_output_raw_and_filters(
    client: httpx.AsyncClient, workflow: dict[str, Any], langflow_server: FakeLangflow
) -> None:
    """Lists are newest first, leave out output_raw, and filter by workflow and status."""
    source_id = workflow["source_id"]
    other = await sync_flow(client, PROMPT_ID, source_id)
    first = (await client.post(f"/api/v1/workflows/{workflow['id']}/run", json="one")).json()
    second = (await client.post(f"/api/v1/workflows/{other['id']}/run", json="two")).json()
    listing = (await client.get("/api/v1/tasks")).json()
    assert [task["id"] for task in listing["items"]] == [second["id"], first["id"]]
    assert all("output_raw" not in task for task in listing["items"])
    assert listing["items"][0]["output_data"] == "Spark received: two"
    mine = (await client.get("/api/v1/tasks", params={"workflow_id": workflow["id"]})).json()
    assert [task["id"] for task in mine["items"]] == [first["id"]]
    failed = (await client.get("/api/v1/tasks", params={"status": "failed"})).json()
    assert failed["total"] == 0


async def test_cancel_pending_task_then_cancelling_again_is_400(
    client: httpx.AsyncClient, workflow: dict[str, Any], langflow_server: FakeLangflow
) -> None:
    """A pending or running task can be cancelled once; a finished one cannot (400)."""
    langflow_server.delay = 5
    task = (await client.post(f"/api/v1/workflows/{workflow['id']}/run",
                              json={"input_value": "x", "wait": False})).json()
    cancelled = await client.post(f"/api/v1/tasks/{task['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    again = await client.post(f"/api/v1/tasks/{task['id']}/cancel")
    assert again.status_code == 400


async def test_retry_creates_a_new_task_with_the_same_input(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """Retrying a finished task answers 201 with a new pending task of the same input;
    retrying an unfinished one is a 400."""
    done = (await client.post(f"/api/v1/workflows/{workflow['id']}/run", json="again")).json()
    retried = await client.post(f"/api/v1/tasks/{done['id']}/retry")
    assert retried.status_code == 201
    body = retried.json()
    assert body["id"] != done["id"]
    assert body["input_data"] == "again"
    assert body["status"] == "pending"
    assert done["attempts"]
    assert body["attempts"] == []  # a new task: none of the old one's attempts
    queued = (await client.post("/api/v1/tasks", json={"workflow_id": workflow["id"]})).json()
    if (await client.get(f"/api/v1/tasks/{queued['id']}")).json()["status"] in (
        "pending", "running"
    ):
        assert (await client.post(f"/api/v1/tasks/{queued['id']}/retry")).status_code == 400


async def test_delete_task_states_whether_it_was_cancelled(
    client: httpx.AsyncClient, workflow: dict[str, Any], langflow_server: FakeLangflow
) -> None:
    """Deleting a finished task just removes it; deleting a running one cancels it first."""
    done = (await client.post(f"/api/v1/workflows/{workflow['id']}/run", json="x")).json()
    response = await client.delete(f"/api/v1/tasks/{done['id']}")
    assert response.status_code == 200
    assert response.json() == {"deleted": True, "id": done["id"], "cancelled": False}
    assert (await client.get(f"/api/v1/tasks/{done['id']}")).status_code == 404
    langflow_server.delay = 5
    pending = (await client.post("/api/v1/tasks", json={"workflow_id": workflow["id"]})).json()
    removed = (await client.delete(f"/api/v1/tasks/{pending['id']}")).json()
    assert removed["cancelled"] is True


async def test_tasks_are_searched_by_text_and_time_and_show_their_attempts(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """``q`` finds text in input or answer; a time range bounds creation; a read has attempts."""
    ids = []
    for text in ("Weather in Paris", "London"):
        created = await client.post("/api/v1/tasks",
                                    json={"workflow_id": workflow["id"], "input_data": text})
        ids.append((await wait_for_task(client, created.json()["id"]))["id"])
    found = (await client.get("/api/v1/tasks", params={"q": "PARIS"})).json()
    assert [item["id"] for item in found["items"]] == [ids[0]]
    assert "attempts" not in found["items"][0]
    read = (await client.get(f"/api/v1/tasks/{ids[0]}")).json()
    assert read["created_at"]
    window = (await client.get("/api/v1/tasks", params={
        "created_after": read["created_at"], "created_before": "2999-01-01T00:00:00"})).json()
    assert ids[0] in [item["id"] for item in window["items"]]
    none = (await client.get("/api/v1/tasks",
                             params={"created_before": "2000-01-01T00:00:00Z"})).json()
    assert none["total"] == 0
    [attempt] = read["attempts"]
    assert attempt["started_at"] == read["started_at"]
    assert attempt["error"] is None
