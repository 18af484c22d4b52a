"""Workflows through the API: remote listing, sync, the catalogue, and runs via the worker."""

import asyncio
import logging

import httpx
import msgspec
import pytest

from spark_adapters.container import build_container
from spark_adapters.settings import Settings
from spark_http.app import create_app
from tests.http.conftest import (
    AUTH,
    add_source,
    http_client,
    lifespan,
    sync_flow,
    wait_for_task,
)
from tests.servers import FakeHive, FakeLangflow
from tests.servers.langflow import ECHO_ID, FAIL_ID, PROMPT_ID, SLOW_ID


async def test_remote_listing_covers_active_sources_and_narrows(
    client: httpx.AsyncClient, langflow_server: FakeLangflow, hive_server: FakeHive
) -> None:
    """Remote flows of every active source are listed (components skipped); source_url narrows,
    and simplified listings leave out the definition."""
    await add_source(client, langflow_server)
    await add_source(client, hive_server)
    everything = (await client.get("/api/v1/workflows/remote")).json()
    ids = {flow["id"] for flow in everything}
    assert {ECHO_ID, "echo-agent", "echo-team"} <= ids
    assert all(flow["data"] is None for flow in everything)
    narrowed = (await client.get(
        "/api/v1/workflows/remote", params={"source_url": langflow_server.url, "simplified": False}
    )).json()
    assert {flow["source_url"] for flow in narrowed} == {langflow_server.url}
    assert all(flow["data"] is not None for flow in narrowed)
    echo = next(flow for flow in narrowed if flow["id"] == ECHO_ID)
    assert echo["origin"]["source_url"] == langflow_server.url
    one = await client.get(f"/api/v1/workflows/remote/{ECHO_ID}")
    assert one.status_code == 200
    assert one.json()["name"] == "spark-echo"
    assert (await client.get("/api/v1/workflows/remote/unknown-flow")).status_code == 404


async def test_remote_listing_names_the_sources_it_could_not_list_in_a_header(
    client: httpx.AsyncClient, langflow_server: FakeLangflow, hive_server: FakeHive
) -> None:
    """A source that is down is left out of the list and named in
    ``X-Spark-Unavailable-Sources``; the body keeps its list shape."""
    await add_source(client, langflow_server)
    await add_source(client, hive_server)
    whole = await client.get("/api/v1/workflows/remote")
    assert "x-spark-unavailable-sources" not in whole.headers
    hive_server.garbage = True
    response = await client.get("/api/v1/workflows/remote")
    assert response.status_code == 200, response.text
    assert response.headers["x-spark-unavailable-sources"] == hive_server.url
    assert {flow["source_url"] for flow in response.json()} == {langflow_server.url}


async def test_sync_twice_updates_the_same_workflow(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """Syncing again keeps the id and takes the remote's changes."""
    source = await add_source(client, langflow_server)
    first = await sync_flow(client, ECHO_ID, source["id"])
    assert first["input_component"].startswith("ChatInput")
    langflow_server.flows[0]["description"] = "changed remotely"
    second = await sync_flow(client, ECHO_ID, source["id"])
    assert second["id"] == first["id"]
    assert second["description"] == "changed remotely"
    by_url = await client.post(
        f"/api/v1/workflows/sync/{ECHO_ID}", params={"source_url": langflow_server.url + "/"}
    )
    assert by_url.json()["id"] == first["id"]
    without_source = await client.post(f"/api/v1/workflows/sync/{ECHO_ID}")
    assert without_source.json()["id"] == first["id"]


async def test_syncing_an_unknown_flow_id_is_a_404_naming_the_source(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """An id that is not a UUID is a 404 "no flow … on source …", not LangFlow's raw 422."""
    source = await add_source(client, langflow_server)
    response = await client.post("/api/v1/workflows/sync/no-such-flow",
                                 params={"source_id": source["id"]})
    assert response.status_code == 404, response.text
    assert response.json()["detail"] == (
        f"No flow no-such-flow on source {source['name']} ({langflow_server.url})")
    unnamed = await client.post("/api/v1/workflows/sync/no-such-flow")
    assert unnamed.status_code == 404, unnamed.text
    assert unnamed.json()["detail"].startswith("No flow no-such-flow on any active source")


async def test_syncing_without_a_source_finds_the_one_that_has_it_without_warnings(
    client: httpx.AsyncClient, langflow_server: FakeLangflow, hive_server: FakeHive,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Hive agent id is found on the Hive source; the LangFlow source is asked quietly."""
    await add_source(client, langflow_server)
    hive = await add_source(client, hive_server)
    caplog.set_level(logging.WARNING)
    response = await client.post("/api/v1/workflows/sync/echo-agent")
    assert response.status_code == 200, response.text
    assert response.json()["source_id"] == hive["id"]
    assert [record.getMessage() for record in caplog.records
            if record.levelno >= logging.WARNING] == []


async def test_syncing_a_flow_found_on_several_sources_asks_which(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """The same flow id on two sources is a 400 naming both, and nothing is synced."""
    first = await add_source(client, langflow_server)
    other = FakeLangflow(api_key=langflow_server.api_key)
    await other.start()
    try:
        second = await add_source(client, other, name="second")
        response = await client.post(f"/api/v1/workflows/sync/{ECHO_ID}")
    finally:
        await other.stop()
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert first["url"] in detail
    assert second["url"] in detail
    assert "say which" in detail
    assert (await client.get("/api/v1/workflows")).json()["total"] == 0


async def test_catalogue_lists_run_statistics_and_reads_by_either_id(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """Catalogue items carry latest_run, task_count and failed_task_count; a workflow reads
    by local or remote id; filters narrow."""
    source = await add_source(client, langflow_server)
    echo = await sync_flow(client, ECHO_ID, source["id"])
    fail = await sync_flow(client, FAIL_ID, source["id"])
    listing = (await client.get("/api/v1/workflows")).json()
    assert {item["latest_run"] for item in listing["items"]} == {"NEW"}
    await client.post(f"/api/v1/workflows/{echo['id']}/run", json="hi")
    await client.post(f"/api/v1/workflows/{fail['id']}/run", json={"max_retries": 0})
    listed = (await client.get("/api/v1/workflows/")).json()["items"]
    items = {item["name"]: item for item in listed}
    assert (items["spark-echo"]["latest_run"], items["spark-echo"]["task_count"]) == (
        "COMPLETED", 1)
    assert items["spark-fail"]["failed_task_count"] == 1
    assert items["spark-fail"]["latest_run"] == "FAILED"
    by_remote = (await client.get(f"/api/v1/workflows/{ECHO_ID}")).json()
    assert by_remote["id"] == echo["id"]
    found = (await client.get("/api/v1/workflows", params={"q": "ECHO"})).json()
    assert [item["id"] for item in found["items"]] == [echo["id"]]
    by_source = (await client.get(
        "/api/v1/workflows", params={"source": langflow_server.url, "flow_type": "langflow"}
    )).json()
    assert by_source["total"] == 2


async def test_run_accepts_a_bare_string_text_and_an_object(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """The three body forms all run and answer 200 with the finished task."""
    source = await add_source(client, langflow_server)
    workflow = await sync_flow(client, PROMPT_ID, source["id"])
    run = f"/api/v1/workflows/{workflow['id']}/run"
    bare = await client.post(run, content=b'"from a string"',
                             headers={"Content-Type": "application/json"})
    text = await client.post(run, content="from text", headers={"Content-Type": "text/plain"})
    obj = await client.post(run, json={"input_value": "from an object", "session_id": "s-1"})
    for response, expected in ((bare, "from a string"), (text, "from text"),
                               (obj, "from an object")):
        assert response.status_code == 200, response.text
        task = response.json()
        assert task["status"] == "completed"
        assert task["input_data"] == expected
        assert task["output_data"] == f"Spark received: {expected}"
        assert task["output_raw"]["outputs"]
    assert langflow_server.runs[-1]["json"]["session_id"] == "s-1"


async def test_run_with_wait_false_answers_202_then_completes(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """wait=false (query or body) answers 202 with the pending task, which then completes."""
    source = await add_source(client, langflow_server)
    workflow = await sync_flow(client, ECHO_ID, source["id"])
    run = f"/api/v1/workflows/{workflow['id']}/run"
    queued = await client.post(run, params={"wait": "false"}, json="later")
    assert queued.status_code == 202
    assert queued.json()["status"] == "pending"
    in_body = await client.post(run, json={"input_value": "later too", "wait": False})
    assert in_body.status_code == 202
    for response in (queued, in_body):
        finished = await wait_for_task(client, response.json()["id"])
        assert finished["status"] == "completed"


async def test_failing_source_answers_200_with_the_failed_task(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """A remote 500 with max_retries=0 is a finished, failed task (200) with the reason."""
    source = await add_source(client, langflow_server)
    workflow = await sync_flow(client, ECHO_ID, source["id"])
    langflow_server.fail_with = 500
    response = await client.post(
        f"/api/v1/workflows/{workflow['id']}/run", json={"input_value": "x", "max_retries": 0}
    )
    assert response.status_code == 200
    task = response.json()
    assert task["status"] == "failed"
    assert task["error"]
    assert task["tries"] == 1


async def test_run_of_unknown_workflow_is_404_and_bad_body_is_400(
    client: httpx.AsyncClient,
) -> None:
    """Running nothing is a 404; a body of the wrong shape is a 400 naming the field."""
    assert (await client.post("/api/v1/workflows/nope/run", json="x")).status_code == 404
    response = await client.post("/api/v1/workflows/nope/run", json={"input_value": 3})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "input_value"
    assert (await client.post("/api/v1/workflows/nope/run", json=[1])).status_code == 400


async def test_server_stays_responsive_during_a_slow_run(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """While a waiting run is in flight, other requests answer at once."""
    langflow_server.slow_seconds = 1.5
    source = await add_source(client, langflow_server)
    workflow = await sync_flow(client, SLOW_ID, source["id"])
    slow = asyncio.create_task(
        client.post(f"/api/v1/workflows/{workflow['id']}/run", json="slowly")
    )
    for _ in range(500):  # until the fake has the run in hand
        if langflow_server.runs:
            break
        await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    started = loop.time()
    listing = await client.get("/api/v1/tasks", params={"status": "running"})
    assert loop.time() - started < 0.5
    assert listing.json()["total"] == 1
    assert not slow.done()
    finished = await slow
    assert finished.json()["status"] == "completed"


async def test_delete_workflow_states_what_was_removed(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """DELETE removes the workflow with its schedules and tasks and says how many."""
    source = await add_source(client, langflow_server)
    workflow = await sync_flow(client, ECHO_ID, source["id"])
    await client.post(f"/api/v1/workflows/{workflow['id']}/run", json="x")
    await client.post("/api/v1/schedules", json={
        "workflow_id": workflow["id"], "schedule_type": "interval", "schedule_expr": "1h"})
    response = await client.delete(f"/api/v1/workflows/{workflow['id']}")
    assert response.status_code == 200
    body = response.json()
    assert (body["deleted"], body["id"], body["schedules_deleted"], body["tasks_deleted"]) == (
        True, workflow["id"], 1, 1)
    assert (await client.get(f"/api/v1/workflows/{workflow['id']}")).status_code == 404


async def test_task_lists_answer_at_once_while_fifty_slow_runs_are_in_flight(
    settings: Settings, langflow_server: FakeLangflow
) -> None:
    """Runs live in the worker, not in request handlers: with 50 slow runs under way, listing
    tasks still answers in a blink (the issue's figure; the benchmark measures it closely)."""
    langflow_server.slow_seconds = 3
    app = create_app(build_container(msgspec.structs.replace(settings, workers=50)),
                     shutdown_grace=0.1)
    async with lifespan(app), http_client(app, AUTH) as client:
        source = await add_source(client, langflow_server)
        workflow = await sync_flow(client, SLOW_ID, source["id"])
        for n in range(50):
            queued = await client.post(f"/api/v1/workflows/{workflow['id']}/run",
                                       params={"wait": "false"}, json=f"run {n}")
            assert queued.status_code == 202
        for _ in range(500):
            if len(langflow_server.runs) == 50:
                break
            await asyncio.sleep(0.01)
        assert len(langflow_server.runs) == 50
        loop = asyncio.get_running_loop()
        timings = []
        for _ in range(20):
            started = loop.time()
            listing = await client.get("/api/v1/tasks", params={"limit": 100})
            timings.append(loop.time() - started)
            assert listing.json()["total"] == 50
        running = await client.get("/api/v1/tasks", params={"status": "running"})
        assert running.json()["total"] == 50
        assert sorted(timings)[len(timings) // 2] < 0.1
