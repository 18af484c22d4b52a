"""Bounded schedules through the API: ``start_at``, ``end_at``, ``max_runs``."""

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


async def test_bounds_are_stored_shown_and_previewed(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """A bounded interval starts at start_at, previews at most max_runs times, and the new
    fields read back; PATCH can lift max_runs."""
    body = {"workflow_id": workflow["id"], "schedule_type": "interval", "schedule_expr": "1h",
            "start_at": "2030-01-01T00:00:00Z", "end_at": "2030-01-01T10:00:00Z",
            "max_runs": 3}
    created = await client.post("/api/v1/schedules", json=body)
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["next_run_at"] == "2030-01-01T01:00:00+00:00"
    assert (schedule["max_runs"], schedule["run_count"]) == (3, 0)
    assert schedule["end_at"] == "2030-01-01T10:00:00+00:00"
    upcoming = (await client.get(f"/api/v1/schedules/{schedule['id']}/next",
                                 params={"count": 20})).json()
    assert upcoming["count"] == 3
    lifted = (await client.patch(f"/api/v1/schedules/{schedule['id']}",
                                 json={"max_runs": None})).json()
    assert lifted["max_runs"] is None
    upcoming = (await client.get(f"/api/v1/schedules/{schedule['id']}/next",
                                 params={"count": 20})).json()
    assert upcoming["next_runs"][-1] == "2030-01-01T10:00:00+00:00"


async def test_bounds_that_leave_no_run_are_400(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """An end before the start or a max_runs below 1 is refused, naming the field."""
    base = {"workflow_id": workflow["id"], "schedule_type": "interval", "schedule_expr": "1h"}
    ended = await client.post("/api/v1/schedules", json={**base, "end_at": "2001-01-01T00:00:00Z"})
    assert ended.status_code == 400
    assert ended.json()["errors"][0]["field"] == "end_at"
    none = await client.post("/api/v1/schedules", json={**base, "max_runs": 0})
    assert none.status_code == 400
    assert none.json()["errors"][0]["field"] == "max_runs"
