"""Schedules applied by key through the API: ``PUT /api/v1/schedules/by-key/{key}``."""

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


def _body(workflow: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"workflow_id": workflow["id"], "schedule_type": "cron",
            "schedule_expr": "0 9 * * *", "input_value": "morning", **extra}


async def test_applying_the_same_body_twice_makes_one_schedule(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """The first PUT creates (201), the second finds it unchanged (200, same id and
    version); the key lists and reads back."""
    first = await client.put("/api/v1/schedules/by-key/digest.daily", json=_body(workflow))
    assert first.status_code == 201, first.text
    assert first.headers["X-Spark-Apply-Outcome"] == "created"
    again = await client.put("/api/v1/schedules/by-key/digest.daily", json=_body(workflow))
    assert again.status_code == 200, again.text
    assert again.headers["X-Spark-Apply-Outcome"] == "unchanged"
    assert again.json() == first.json()
    assert first.json()["key"] == "digest.daily"
    listing = (await client.get("/api/v1/schedules",
                                params={"key": "digest.daily"})).json()
    assert [item["id"] for item in listing["items"]] == [first.json()["id"]]
    assert (await client.get("/api/v1/schedules")).json()["total"] == 1


async def test_applying_a_changed_body_replaces_the_schedule_in_place(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """A different body replaces the keyed schedule: same id, new fields, defaults restored."""
    first = (await client.put("/api/v1/schedules/by-key/nightly",
                              json=_body(workflow, max_retries=5))).json()
    changed = await client.put("/api/v1/schedules/by-key/nightly",
                               json=_body(workflow, schedule_type="interval",
                                          schedule_expr="2h"))
    assert changed.status_code == 200, changed.text
    assert changed.headers["X-Spark-Apply-Outcome"] == "replaced"
    replaced = changed.json()
    assert replaced["id"] == first["id"]
    assert (replaced["schedule_type"], replaced["schedule_expr"]) == ("interval", "2h")
    assert replaced["max_retries"] == 3
    assert (await client.get("/api/v1/schedules")).json()["total"] == 1


async def test_an_unchanged_apply_keeps_a_pause(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """Re-applying what is stored leaves an operator's pause alone."""
    first = (await client.put("/api/v1/schedules/by-key/nightly", json=_body(workflow))).json()
    await client.post(f"/api/v1/schedules/{first['id']}/disable")
    again = (await client.put("/api/v1/schedules/by-key/nightly", json=_body(workflow))).json()
    assert again["status"] == "paused"


async def test_a_bad_mismatched_or_taken_key_is_400(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """Keys are checked in the core; a POST cannot take a key another schedule holds (a
    conflict, which this API answers with 400 like every refusal)."""
    bad = await client.put("/api/v1/schedules/by-key/-nope", json=_body(workflow))
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "key"
    mismatch = await client.put("/api/v1/schedules/by-key/one",
                                json=_body(workflow, key="two"))
    assert mismatch.status_code == 400
    await client.put("/api/v1/schedules/by-key/one", json=_body(workflow))
    taken = await client.post("/api/v1/schedules", json=_body(workflow, key="one"))
    assert taken.status_code == 400, taken.text
    assert "key 'one' already exists" in taken.json()["detail"]
