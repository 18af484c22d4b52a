"""Backfill through the API: POST /api/v1/schedules/{id}/backfill (and ?dry_run=true)."""

from typing import Any

import httpx
import pytest

from tests.http.conftest import add_source, sync_flow
from tests.servers import FakeLangflow
from tests.servers.langflow import ECHO_ID


@pytest.fixture
async def schedule(client: httpx.AsyncClient, langflow_server: FakeLangflow) -> dict[str, Any]:
    """An hourly cron schedule of the echo flow."""
    source = await add_source(client, langflow_server)
    workflow = await sync_flow(client, ECHO_ID, source["id"])
    body = {"workflow_id": workflow["id"], "schedule_type": "cron", "schedule_expr": "0 * * * *",
            "status": "paused"}
    created = await client.post("/api/v1/schedules", json=body)
    assert created.status_code == 201, created.text
    return dict(created.json())


async def test_backfill_previews_creates_records_and_skips_what_ran(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    """dry_run answers 200 with the times and creates nothing; the backfill answers 201 with
    a task per time, recorded `backfilled`; a second one skips every time."""
    url = f"/api/v1/schedules/{schedule['id']}/backfill"
    window = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T02:00:00Z"}
    preview = await client.post(url, params={"dry_run": "true"}, json=window)
    assert preview.status_code == 200, preview.text
    assert [run["nominal_time"] for run in preview.json()["runs"]] == [
        "2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00", "2026-01-01T02:00:00+00:00"]
    tasks = await client.get("/api/v1/tasks", params={"schedule_id": schedule["id"]})
    assert tasks.json()["total"] == 0
    done = await client.post(url, json=window)
    assert done.status_code == 201, done.text
    task_ids = [run["task_id"] for run in done.json()["runs"]]
    assert len(task_ids) == 3
    assert all(task_ids)
    task = (await client.get(f"/api/v1/tasks/{task_ids[0]}")).json()
    assert task["scheduled_for"] == "2026-01-01T00:00:00+00:00"
    fires = await client.get(f"/api/v1/schedules/{schedule['id']}/fires",
                             params={"outcome": "backfilled"})
    assert fires.json()["total"] == 3
    again = (await client.post(url, json=window)).json()
    assert again["runs"] == []
    assert len(again["skipped"]) == 3


async def test_a_backfill_beyond_the_cap_or_in_the_future_is_400(
    client: httpx.AsyncClient, schedule: dict[str, Any]
) -> None:
    """More than 1000 times, or an end after now, is a 400 naming `end`; unknown fields too."""
    url = f"/api/v1/schedules/{schedule['id']}/backfill"
    too_many = await client.post(url, json={"start": "2020-01-01T00:00:00Z",
                                            "end": "2020-03-01T00:00:00Z"})
    assert too_many.status_code == 400
    assert too_many.json()["errors"][0]["field"] == "end"
    future = await client.post(url, json={"start": "2020-01-01T00:00:00Z",
                                          "end": "2999-01-01T00:00:00Z"})
    assert future.status_code == 400
    odd = await client.post(url, json={"start": "2020-01-01T00:00:00Z",
                                       "end": "2020-01-01T01:00:00Z", "until": "x"})
    assert odd.status_code == 400
