"""The calls of a known real client, the Spark tool of `automagik-tools`, replayed as it makes
them (paths, query parameters, bodies), so it keeps working; its PUTs with only the changed
fields are refused as the original service refused them."""

import json

import httpx

from tests.http.conftest import API_KEY
from tests.servers import FakeLangflow
from tests.servers.langflow import ECHO_ID

CLIENT_HEADERS = {
    "X-API-Key": API_KEY,
    "Content-Type": "application/json",
    "Accept": "application/json",
}


async def test_the_automagik_tools_spark_client_works_as_against_the_original_service(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """Sources, remote flows, sync, run, tasks and schedules, each sent exactly as the client
    sends it, answer 2xx with the fields the client reads; only its partial PUTs are refused,
    with a 400 naming what is missing, as the original service refused them."""
    client.headers.update(CLIENT_HEADERS)

    assert (await client.get("/health")).json()["status"] == "healthy"

    added = await client.post("/api/v1/sources/", json={
        "name": "lf", "source_type": "langflow", "url": langflow_server.url,
        "api_key": langflow_server.api_key,
    })
    assert added.status_code == 201, added.text
    source_id = added.json()["id"]
    assert [s["id"] for s in (await client.get("/api/v1/sources/")).json()["items"]] == [
        source_id]
    assert (await client.get(f"/api/v1/sources/{source_id}")).json()["name"] == "lf"
    # The client's update_source PUTs only the changed fields. The original service had no
    # PUT on sources (405); PUT is a full replace here, so the refusal names what is missing.
    renamed = await client.put(f"/api/v1/sources/{source_id}", json={"name": "renamed"})
    assert renamed.status_code == 400, renamed.text
    assert renamed.json()["detail"].startswith("PUT replaces the whole source: missing")

    remote = await client.get("/api/v1/workflows/remote",
                              params={"source_url": langflow_server.url})
    assert ECHO_ID in [flow["id"] for flow in remote.json()]
    one = await client.get(f"/api/v1/workflows/remote/{ECHO_ID}",
                           params={"source_url": langflow_server.url})
    assert one.json()["id"] == ECHO_ID

    synced = await client.post(f"/api/v1/workflows/sync/{ECHO_ID}",
                               params={"input_component": "input", "output_component": "output"})
    assert synced.status_code == 200, synced.text
    workflow_id = synced.json()["id"]
    listed = await client.get("/api/v1/workflows",
                              params={"limit": 100, "source": langflow_server.url})
    assert [w["id"] for w in listed.json()["items"]] == [workflow_id]
    assert (await client.get(f"/api/v1/workflows/{workflow_id}")).json()["id"] == workflow_id

    ran = await client.post(f"/api/v1/workflows/{workflow_id}/run",
                            content=json.dumps("hello from the tool"))
    assert ran.status_code == 200, ran.text
    assert (ran.json()["status"], ran.json()["output_data"]) == (
        "completed", "hello from the tool")

    tasks = await client.get("/api/v1/tasks",
                             params={"limit": 50, "workflow_id": workflow_id,
                                     "status": "completed"})
    [task] = tasks.json()["items"]
    assert (await client.get(f"/api/v1/tasks/{task['id']}")).json()["input_data"] == (
        "hello from the tool")

    created = await client.post("/api/v1/schedules", json={
        "workflow_id": workflow_id, "schedule_type": "interval", "schedule_expr": "30m",
        "input_value": "tick",
    })
    assert created.status_code == 201, created.text
    schedule_id = created.json()["id"]
    schedules = await client.get("/api/v1/schedules", params={"workflow_id": workflow_id})
    assert [s["id"] for s in schedules.json()["items"]] == [schedule_id]
    assert (await client.get(f"/api/v1/schedules/{schedule_id}")).json()["input_value"] == "tick"
    # update_schedule PUTs only the changed fields; the original service's PUT took the full
    # create body and refused this one too (422). With every create field it works.
    partial = await client.put(f"/api/v1/schedules/{schedule_id}",
                               json={"schedule_expr": "1h", "input_value": "tock"})
    assert partial.status_code == 400, partial.text
    updated = await client.put(f"/api/v1/schedules/{schedule_id}", json={
        "workflow_id": workflow_id, "schedule_type": "interval", "schedule_expr": "1h",
        "input_value": "tock"})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["schedule_expr"], updated.json()["input_value"]) == ("1h", "tock")
    disabled = await client.post(f"/api/v1/schedules/{schedule_id}/disable")
    assert disabled.json()["status"] == "paused"
    enabled = await client.post(f"/api/v1/schedules/{schedule_id}/enable")
    assert enabled.json()["status"] == "active"

    assert (await client.delete(f"/api/v1/schedules/{schedule_id}")).status_code == 200
    assert (await client.delete(f"/api/v1/tasks/{task['id']}")).status_code == 200
    assert (await client.delete(f"/api/v1/workflows/{workflow_id}")).status_code == 200
    assert (await client.delete(f"/api/v1/sources/{source_id}")).status_code == 200
    assert (await client.get("/api/v1/sources/")).json()["total"] == 0
