"""Schedules through the API: CRUD including a PUT that works, pause, resume, fire, preview."""

from typing import Any

import httpx
import pytest

from tests.http.conftest import add_source, sync_flow, wait_for_task
from tests.servers import FakeLangflow
from tests.servers.langflow import ECHO_ID


@pytest.fixture
async def workflow(client: httpx.AsyncClient, langflow_server: FakeLangflow) -> dict[str, Any]:
    """The echo flow, synced from a LangFlow source."""
    source = await add_source(client, langflow_server)
    return await sync_flow(client, ECHO_ID, source["id"])


async def _create(client: httpx.AsyncClient, workflow: dict[str, Any], **extra: Any) -> Any:
    body = {"workflow_id": workflow["id"], "schedule_type": "cron",
            "schedule_expr": "0 9 * * *", "input_value": "morning", **extra}
    response = await client.post("/api/v1/schedules", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_read_list_and_filter(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """Create answers 201 with the first fire time; the schedule reads and lists."""
    schedule = await _create(client, workflow, timezone="Europe/Paris")
    assert schedule["status"] == "active"
    assert schedule["next_run_at"].endswith("+00:00")
    assert schedule["overlap_policy"] == "skip"
    read = (await client.get(f"/api/v1/schedules/{schedule['id']}")).json()
    assert read == schedule
    listing = (await client.get("/api/v1/schedules/",
                                params={"workflow_id": workflow["id"]})).json()
    assert [item["id"] for item in listing["items"]] == [schedule["id"]]
    paused = (await client.get("/api/v1/schedules", params={"status": "paused"})).json()
    assert paused["total"] == 0


async def test_invalid_expression_is_400_with_reason(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """An expression the scheduler cannot execute is refused with a 400."""
    for schedule_type, expr in (("cron", "61 * * * *"), ("interval", "5 minutes"),
                                ("one-time", "not a date")):
        response = await client.post("/api/v1/schedules", json={
            "workflow_id": workflow["id"], "schedule_type": schedule_type,
            "schedule_expr": expr})
        assert response.status_code == 400, (schedule_type, expr, response.text)
        assert response.json()["detail"]
    bad_type = await client.post("/api/v1/schedules", json={
        "workflow_id": workflow["id"], "schedule_type": "sometimes", "schedule_expr": "1h"})
    assert bad_type.status_code == 400
    assert bad_type.json()["errors"][0]["field"] == "schedule_type"


async def test_an_expression_that_would_never_fire_is_400_not_a_silent_schedule(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """A date past year 9999 in UTC, or an interval too long to ever fire, is refused."""
    for schedule_type, expr, zone in (("one-time", "9999-12-31T23:59:59", "America/Los_Angeles"),
                                      ("interval", "500000w", "UTC")):
        response = await client.post("/api/v1/schedules", json={
            "workflow_id": workflow["id"], "schedule_type": schedule_type,
            "schedule_expr": expr, "timezone": zone})
        assert response.status_code == 400, (expr, response.text)
        assert "9999" in response.json()["detail"]


async def test_patch_changes_only_given_fields(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """PATCH changes one field and keeps the rest."""
    schedule = await _create(client, workflow)
    response = await client.patch(f"/api/v1/schedules/{schedule['id']}",
                                  json={"input_value": "evening"})
    assert response.status_code == 200
    body = response.json()
    assert body["input_value"] == "evening"
    assert body["schedule_expr"] == "0 9 * * *"
    assert body["next_run_at"] == schedule["next_run_at"]


async def test_put_replaces_every_field(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """PUT with the fields of create replaces the schedule; unnamed fields return to defaults."""
    schedule = await _create(client, workflow, overlap_policy="allow")
    response = await client.put(f"/api/v1/schedules/{schedule['id']}", json={
        "workflow_id": workflow["id"], "schedule_type": "interval", "schedule_expr": "30m"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["schedule_type"], body["schedule_expr"]) == ("interval", "30m")
    assert body["input_value"] == ""
    assert body["overlap_policy"] == "skip"


async def test_a_put_without_the_create_fields_is_400_naming_them(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """A PUT naming only some fields is refused with the missing create fields (PATCH is the
    partial update), and the schedule is left as it was."""
    schedule = await _create(client, workflow)
    response = await client.put(f"/api/v1/schedules/{schedule['id']}",
                                json={"schedule_expr": "0 10 * * *"})
    assert response.status_code == 400, response.text
    assert "workflow_id, schedule_type" in response.json()["detail"]
    assert [error["field"] for error in response.json()["errors"]] == [
        "workflow_id", "schedule_type"]
    kept = (await client.get(f"/api/v1/schedules/{schedule['id']}")).json()
    assert kept["schedule_expr"] == schedule["schedule_expr"]


async def test_a_misspelt_schedule_field_is_a_400_naming_it(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """``"timezon"`` is refused with its name instead of silently giving a UTC schedule."""
    response = await client.post("/api/v1/schedules", json={
        "workflow_id": workflow["id"], "schedule_type": "cron", "schedule_expr": "0 9 * * *",
        "timezon": "Europe/Berlin"})
    assert response.status_code == 400, response.text
    assert "timezon" in response.json()["detail"]
    assert response.json()["errors"][0]["field"] == "timezon"
    assert (await client.get("/api/v1/schedules")).json()["total"] == 0


async def test_disable_enable_and_next(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """Disable pauses (no next times); enable resumes; next lists up to count times."""
    schedule = await _create(client, workflow, schedule_type="interval", schedule_expr="1h")
    upcoming = (await client.get(f"/api/v1/schedules/{schedule['id']}/next",
                                 params={"count": 3})).json()
    assert len(upcoming["next_runs"]) == 3
    disabled = (await client.post(f"/api/v1/schedules/{schedule['id']}/disable")).json()
    assert disabled["status"] == "paused"
    assert (await client.get(f"/api/v1/schedules/{schedule['id']}/next")).json()[
        "next_runs"] == []
    enabled = (await client.post(f"/api/v1/schedules/{schedule['id']}/enable")).json()
    assert enabled["status"] == "active"
    assert enabled["next_run_at"]
    too_many = await client.get(f"/api/v1/schedules/{schedule['id']}/next",
                                params={"count": 101})
    assert too_many.status_code == 400
    assert too_many.json()["errors"][0]["field"] == "count"


async def test_run_now_creates_a_task_with_the_schedule_input(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """POST /run fires now: 201 with a task carrying the schedule's id and input."""
    schedule = await _create(client, workflow)
    response = await client.post(f"/api/v1/schedules/{schedule['id']}/run")
    assert response.status_code == 201
    task = response.json()
    assert (task["schedule_id"], task["input_data"]) == (schedule["id"], "morning")
    finished = await wait_for_task(client, task["id"])
    assert finished["output_data"] == "morning"


async def test_delete_keeps_the_tasks(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """DELETE removes the schedule and says its tasks stay."""
    schedule = await _create(client, workflow)
    task = (await client.post(f"/api/v1/schedules/{schedule['id']}/run")).json()
    response = await client.delete(f"/api/v1/schedules/{schedule['id']}")
    assert response.json() == {"deleted": True, "id": schedule["id"], "tasks_kept": True}
    assert (await client.get(f"/api/v1/schedules/{schedule['id']}")).status_code == 404
    assert (await client.get(f"/api/v1/tasks/{task['id']}")).status_code == 200
