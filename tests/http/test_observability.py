"""The fire ledger, metrics, request ids and structured logs through the API."""

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar

from spark_adapters.logs import JsonFormatter, Redactor, _RequestIdFilter, settings_secrets
from spark_adapters.settings import Settings
from tests.http.conftest import API_KEY, SECOND_KEY, add_source, sync_flow, wait_for_task
from tests.servers import FakeLangflow
from tests.servers.langflow import ECHO_ID


@pytest.fixture
async def workflow(client: httpx.AsyncClient, langflow_server: FakeLangflow) -> dict[str, Any]:
    """The echo flow, synced from a LangFlow source."""
    source = await add_source(client, langflow_server)
    return await sync_flow(client, ECHO_ID, source["id"])


async def _fired_schedule(client: httpx.AsyncClient, workflow: dict[str, Any]) -> str:
    """A `1s` interval schedule, once the scheduler has fired it at least once."""
    response = await client.post("/api/v1/schedules", json={
        "workflow_id": workflow["id"], "schedule_type": "interval", "schedule_expr": "1s",
        "overlap_policy": "allow"})
    assert response.status_code == 201, response.text
    schedule_id: str = response.json()["id"]
    for _ in range(100):
        page = (await client.get(f"/api/v1/schedules/{schedule_id}/fires")).json()
        if page["total"]:
            return schedule_id
        await asyncio.sleep(0.1)
    raise AssertionError("the schedule never fired")


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text ``text``."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    assert found, f"{name} {labels} missing"
    return float(found.group(1))


async def test_the_fires_route_pages_the_ledger_and_the_schedule_counts_it(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """`GET …/fires` answers the paginated envelope newest first, filters by outcome, and the
    schedule object carries the counters."""
    schedule_id = await _fired_schedule(client, workflow)
    page = (await client.get(f"/api/v1/schedules/{schedule_id}/fires",
                             params={"limit": 1})).json()
    assert set(page) == {"items", "total", "limit", "offset", "has_more"}
    [record] = page["items"]
    assert record["schedule_id"] == schedule_id
    assert record["outcome"] == "fired"
    assert record["reason"]
    assert record["task_id"]
    assert record["delay_seconds"] >= 0
    filtered = (await client.get(f"/api/v1/schedules/{schedule_id}/fires",
                                 params={"outcome": "missed"})).json()
    assert filtered["total"] == 0
    schedule = (await client.get(f"/api/v1/schedules/{schedule_id}")).json()
    assert schedule["fired_count"] >= 1
    assert (schedule["missed_count"], schedule["last_outcome"]) == (0, "fired")
    listed = (await client.get("/api/v1/schedules")).json()["items"]
    assert listed[0]["skipped_overlap_count"] == 0
    bad = await client.get(f"/api/v1/schedules/{schedule_id}/fires",
                           params={"outcome": "nope"})
    assert bad.status_code == 400
    unknown = await client.get("/api/v1/schedules/no-such-id/fires")
    assert unknown.status_code == 404


async def test_metrics_need_a_key_as_header_or_bearer(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    """Without a key `/metrics` is a 401; `X-API-Key` and `Authorization: Bearer` both work;
    a wrong key is refused."""
    assert (await anonymous.get("/metrics")).status_code == 401
    wrong = await anonymous.get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401
    bearer = await anonymous.get("/metrics", headers={"Authorization": f"Bearer {SECOND_KEY}"})
    assert bearer.status_code == 200
    assert bearer.headers["content-type"].startswith("text/plain")
    assert (await client.get("/metrics")).status_code == 200


async def test_metrics_move_after_runs_and_fires(
    client: httpx.AsyncClient, workflow: dict[str, Any]
) -> None:
    """A run and a schedule fire show up in the task, fire, source, HTTP and build metrics."""
    before = (await client.get("/metrics")).text
    runs_before = _sample(before, "spark_task_runs_total", outcome="completed")
    response = await client.post(f"/api/v1/workflows/{workflow['id']}/run", json="hi")
    assert response.json()["status"] == "completed"
    await _fired_schedule(client, workflow)
    text = (await client.get("/metrics")).text
    assert _sample(text, "spark_task_runs_total", outcome="completed") >= runs_before + 1
    assert _sample(text, "spark_schedule_fires_total", outcome="fired") >= 1
    assert _sample(text, "spark_schedule_fire_delay_seconds_count") >= 1
    assert _sample(text, "spark_task_run_duration_seconds_count") >= 1
    assert _sample(text, "spark_tasks", status="completed") >= 1
    assert _sample(text, "spark_source_requests_total", source_type="langflow",
                   status="200") >= 1
    assert _sample(text, "spark_http_requests_total", method="POST",
                   route="/api/v1/workflows/{workflow_id}/run", status="200") == 1
    assert "spark_worker_slots_busy" in text
    assert re.search(r'^spark_build_info\{version="[^"]+"\} 1\.0$', text, re.MULTILINE)
    assert workflow["id"] not in text


async def test_every_answer_carries_a_request_id_and_keeps_the_callers(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    """A caller's `X-Request-ID` comes back; without one (or with a strange one) a new id is
    made, on routed answers, 401s and 404s alike."""
    mine = await client.get("/api/v1/schedules", headers={"X-Request-ID": "abc-123"})
    assert mine.headers["x-request-id"] == "abc-123"
    made = await anonymous.get("/api/v1/schedules")
    assert made.status_code == 401
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    unknown = await client.get("/no/such/route", headers={"X-Request-ID": "bad id\twith tab"})
    assert unknown.status_code == 404
    assert re.fullmatch(r"[0-9a-f]{32}", unknown.headers["x-request-id"])
    again = await anonymous.get("/api/v1/schedules")
    made_ids = {made.headers["x-request-id"], unknown.headers["x-request-id"],
                again.headers["x-request-id"]}
    assert len(made_ids) == 3  # every request made its own


@pytest.fixture
def json_log(settings: Settings, langflow_server: FakeLangflow) -> Iterator[io.StringIO]:
    """Every log line as JSON into a buffer, through Spark's formatter and redactor."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    secrets = [*settings_secrets(settings), langflow_server.api_key]
    handler.setFormatter(JsonFormatter(Redactor(secrets)))
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(level)


async def test_an_unexpected_error_is_logged_once_with_its_request_id(
    client: httpx.AsyncClient, running_app: Litestar, json_log: io.StringIO
) -> None:
    """A 500 names its request id in the body, the header and one ERROR line with the
    traceback."""

    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("boom")

    running_app.state.spark.schedules.list = broken
    response = await client.get("/api/v1/schedules", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.json()["request_id"] == "req-500"
    assert response.headers["x-request-id"] == "req-500"
    errors = [json.loads(line) for line in json_log.getvalue().splitlines()
              if '"ERROR"' in line]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "req-500"
    assert "RuntimeError: boom" in errors[0]["traceback"]


async def test_json_logs_tell_the_story_and_hold_no_secret(
    client: httpx.AsyncClient, workflow: dict[str, Any], json_log: io.StringIO,
    langflow_server: FakeLangflow,
) -> None:
    """Runs and fires log JSON lines with their ids; no line holds a key, even when a caller
    sends one that is wrong."""
    response = await client.post(f"/api/v1/workflows/{workflow['id']}/run?wait=false",
                                 json="hello")
    task = await wait_for_task(client, response.json()["id"])
    schedule_id = await _fired_schedule(client, workflow)
    await client.get("/api/v1/schedules", headers={"X-API-Key": API_KEY + "-wrong"})
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert lines
    for line in lines:
        assert {"time", "level", "message", "logger"} <= set(line)
    started = [line for line in lines if line.get("task_id") == task["id"]]
    assert any("started" in line["message"] for line in started)
    assert any("completed" in line["message"] for line in started)
    assert all(line["workflow_id"] == workflow["id"] for line in started)
    assert any(line.get("schedule_id") == schedule_id and line.get("outcome") == "fired"
               for line in lines)
    text = json_log.getvalue()
    for secret in (API_KEY, SECOND_KEY, langflow_server.api_key):
        assert secret
        assert secret not in text
