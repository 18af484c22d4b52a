"""Pause on failure and pause/resume notes through the API."""

from typing import Any

import httpx
import pytest

from tests.http.conftest import add_source, sync_flow
from tests.servers import FakeLangflow
from tests.servers.langflow import ECHO_ID


@pytest.fixture
async def workflow(client: httpx.AsyncClient, langflow_server: FakeLangflow) -> dict[str, Any]:
    """The echo flow, synced from a LangFlow source."""
    source = await add_source(client, langflow_server)
    return await sync_flow(client, ECHO_ID, source["id"])


async def test_pause_after_failures_is_stored_and_pause_and_resume_carry_a_note(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """pause_after_failures reads back with its count; disable with a note shows it, enable
    without a body clears it."""
    body = {"workflow_id": workflow["id"], "schedule_type": "interval", "schedule_expr": "1h",
            "pause_after_failures": 3}
    created = await client.post("/api/v1/schedules", json=body)
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert (schedule["pause_after_failures"], schedule["consecutive_failures"],
            schedule["note"]) == (3, 0, None)
    paused = await client.post(f"/api/v1/schedules/{schedule['id']}/disable",
                               json={"note": "source migrating"})
    assert paused.status_code == 200, paused.text
    assert (paused.json()["status"], paused.json()["note"]) == ("paused", "source migrating")
    shown = (await client.get(f"/api/v1/schedules/{schedule['id']}")).json()
    assert shown["note"] == "source migrating"
    resumed = await client.post(f"/api/v1/schedules/{schedule['id']}/enable")
    assert resumed.status_code == 200, resumed.text
    assert (resumed.json()["status"], resumed.json()["note"]) == ("active", None)


async def test_pause_after_failures_below_one_and_unknown_note_fields_are_400(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """0 is refused naming the field; a pause body with another field is refused."""
    body = {"workflow_id": workflow["id"], "schedule_type": "interval", "schedule_expr": "1h"}
    refused = await client.post("/api/v1/schedules", json={**body, "pause_after_failures": 0})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "pause_after_failures"
    schedule = (await client.post("/api/v1/schedules", json=body)).json()
    odd = await client.post(f"/api/v1/schedules/{schedule['id']}/disable",
                            json={"reason": "x"})
    assert odd.status_code == 400
