"""Jittered schedules through the API."""

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


async def test_jitter_is_stored_shown_changed_and_next_stays_nominal(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """A jitter reads back as given, PATCH changes or clears it, and next shows the nominal
    times (the jitter delays runs, not the schedule)."""
    body = {"workflow_id": workflow["id"], "schedule_type": "interval", "schedule_expr": "1h",
            "start_at": "2030-01-01T00:00:00Z", "jitter": "30s"}
    created = await client.post("/api/v1/schedules", json=body)
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["jitter"] == "30s"
    upcoming = (await client.get(f"/api/v1/schedules/{schedule['id']}/next",
                                 params={"count": 2})).json()
    assert upcoming["next_runs"] == ["2030-01-01T01:00:00+00:00", "2030-01-01T02:00:00+00:00"]
    changed = await client.patch(f"/api/v1/schedules/{schedule['id']}", json={"jitter": "5m"})
    assert changed.json()["jitter"] == "5m"
    cleared = await client.patch(f"/api/v1/schedules/{schedule['id']}", json={"jitter": None})
    assert cleared.json()["jitter"] is None


async def test_a_jitter_that_is_not_a_duration_is_400(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """An unreadable jitter is refused, naming the field."""
    body = {"workflow_id": workflow["id"], "schedule_type": "interval", "schedule_expr": "1h",
            "jitter": "a bit"}
    refused = await client.post("/api/v1/schedules", json=body)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "jitter"
