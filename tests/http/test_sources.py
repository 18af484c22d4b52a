"""Sources through the API: validated on create, never showing their key."""

import logging
from typing import Any

import httpx
import pytest

from spark_adapters.settings import Settings
from tests.http.conftest import add_source, sync_flow
from tests.servers import FakeHive, FakeLangflow, unused_port
from tests.servers.langflow import ECHO_ID


async def test_add_langflow_source_validates_and_answers_201(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """A reachable LangFlow with a good key is stored active with its version info."""
    source = await add_source(client, langflow_server)
    assert source["source_type"] == "langflow"
    assert source["status"] == "active"
    assert source["version_info"]["version"] == "1.13.0"
    assert source["url"] == langflow_server.url
    assert source["created_at"].endswith("+00:00")


async def test_add_hive_source_with_alias(client: httpx.AsyncClient, hive_server: FakeHive) -> None:
    """``hive`` is accepted as an alias and stored as ``automagik-hive``."""
    source = await add_source(client, hive_server)
    assert source["source_type"] == "automagik-hive"


async def test_a_langflow_server_is_refused_as_a_hive_source_and_the_error_says_so(
    client: httpx.AsyncClient, langflow_server: FakeLangflow, hive_server: FakeHive
) -> None:
    """LangFlow's /health answers like AgentOS's, but its agent listing is its web page: the
    source is refused as not a Hive server, and the other way round too."""
    as_hive = await client.post("/api/v1/sources", json={
        "name": "lf", "source_type": "automagik-hive", "url": langflow_server.url,
        "api_key": langflow_server.api_key})
    assert as_hive.status_code == 400, as_hive.text
    assert "is not an Automagik Hive server" in as_hive.json()["detail"]
    assert "source_type langflow" in as_hive.json()["detail"]
    as_langflow = await client.post("/api/v1/sources", json={
        "name": "hive", "source_type": "langflow", "url": hive_server.url,
        "api_key": hive_server.api_key})
    assert as_langflow.status_code == 400, as_langflow.text
    assert "is not a LangFlow server" in as_langflow.json()["detail"]
    assert (await client.get("/api/v1/sources")).json()["total"] == 0


async def test_wrong_key_or_unreachable_server_is_400(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """A refused key or a dead server is a 400 with the reason, and nothing is stored."""
    refused = await client.post("/api/v1/sources", json={
        "name": "bad", "source_type": "langflow", "url": langflow_server.url, "api_key": "wrong"})
    assert refused.status_code == 400
    dead = await client.post("/api/v1/sources", json={
        "name": "dead", "source_type": "langflow", "url": f"http://127.0.0.1:{unused_port()}"})
    assert dead.status_code == 400
    assert "127.0.0.1" in dead.json()["detail"]
    assert (await client.get("/api/v1/sources")).json()["total"] == 0


async def test_source_key_never_appears_in_responses_logs_or_the_database(
    client: httpx.AsyncClient,
    langflow_server: FakeLangflow,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The key is absent from every answer and log line, and sealed in the SQLite file."""
    caplog.set_level(logging.DEBUG)
    key = langflow_server.api_key
    assert key
    source = await add_source(client, langflow_server)
    answers = [
        await client.get("/api/v1/sources"),
        await client.get(f"/api/v1/sources/{source['id']}"),
        await client.patch(f"/api/v1/sources/{source['id']}", json={"name": "renamed"}),
        await client.post(f"/api/v1/sources/{source['id']}/check"),
        await client.post("/api/v1/sources", json={
            "name": "dup", "source_type": "langflow", "url": langflow_server.url,
            "api_key": key}),
        await client.post("/api/v1/sources", json={
            "name": "x", "source_type": "langflow", "url": langflow_server.url + "/x",
            "api_key": key}),
    ]
    for answer in answers:
        assert key not in answer.text
        assert "api_key" not in answer.json() or answer.status_code >= 400
    stored = await _stored_bytes(settings)
    assert stored
    assert key.encode() not in stored
    assert key not in caplog.text


async def test_list_filters_and_pagination_envelope(
    client: httpx.AsyncClient, langflow_server: FakeLangflow, hive_server: FakeHive
) -> None:
    """Lists are paginated envelopes and filter by type; both path forms answer."""
    await add_source(client, langflow_server)
    await add_source(client, hive_server)
    page = (await client.get("/api/v1/sources/", params={"limit": 1})).json()
    assert set(page) == {"items", "total", "limit", "offset", "has_more"}
    assert (page["total"], page["limit"], page["offset"], page["has_more"]) == (2, 1, 0, True)
    last = (await client.get("/api/v1/sources", params={"limit": 1, "offset": 1})).json()
    assert last["has_more"] is False
    hives = (await client.get("/api/v1/sources", params={"source_type": "hive"})).json()
    assert [s["source_type"] for s in hives["items"]] == ["automagik-hive"]
    inactive = (await client.get("/api/v1/sources", params={"status": "inactive"})).json()
    assert inactive["total"] == 0


async def test_patch_changes_only_given_fields(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """PATCH renames without touching the rest."""
    source = await add_source(client, langflow_server)
    patched = await client.patch(f"/api/v1/sources/{source['id']}", json={"name": "Renamed"})
    assert patched.status_code == 200
    assert patched.json()["name"] == "Renamed"
    assert patched.json()["url"] == source["url"]


async def test_put_replaces_and_a_put_without_the_create_fields_is_400(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """A full PUT replaces the source (revalidated); a PUT leaving out create fields is a 400
    naming them and changes nothing (PATCH is the partial update)."""
    source = await add_source(client, langflow_server)
    full = await client.put(f"/api/v1/sources/{source['id']}", json={
        "name": "Replaced", "source_type": "langflow", "url": langflow_server.url,
        "api_key": langflow_server.api_key})
    assert full.status_code == 200, full.text
    assert full.json()["name"] == "Replaced"
    partial = await client.put(f"/api/v1/sources/{source['id']}", json={"name": "Partial"})
    assert partial.status_code == 400, partial.text
    assert "source_type, url" in partial.json()["detail"]
    assert [error["field"] for error in partial.json()["errors"]] == ["source_type", "url"]
    assert (await client.get(f"/api/v1/sources/{source['id']}")).json()["name"] == "Replaced"


async def test_an_unknown_body_field_is_a_400_naming_it(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """A misspelt field in a source body is refused with its name instead of ignored."""
    response = await client.post("/api/v1/sources/", json={
        "name": "lf", "source_type": "langflow", "url": langflow_server.url,
        "api_key": langflow_server.api_key, "verify_tsl": False})
    assert response.status_code == 400, response.text
    assert "verify_tsl" in response.json()["detail"]
    assert response.json()["errors"][0]["field"] == "verify_tsl"
    patched = await client.patch("/api/v1/sources/nope", json={"nmae": "x"})
    assert (patched.status_code, patched.json()["errors"][0]["field"]) == (400, "nmae")


async def test_check_failure_marks_inactive_and_is_400(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """A failed check answers 400 with the reason and leaves the source inactive."""
    source = await add_source(client, langflow_server)
    langflow_server.healthy = False
    response = await client.post(f"/api/v1/sources/{source['id']}/check")
    assert response.status_code == 400
    stored = (await client.get(f"/api/v1/sources/{source['id']}")).json()
    assert stored["status"] == "inactive"


async def test_delete_states_what_was_removed(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """DELETE answers with counts of the workflows, schedules and tasks removed with it."""
    source = await add_source(client, langflow_server)
    await sync_flow(client, ECHO_ID, source["id"])
    response = await client.delete(f"/api/v1/sources/{source['id']}")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert body["deleted"] is True
    assert body["id"] == source["id"]
    assert body["workflows_deleted"] == 1
    assert {"schedules_deleted", "tasks_deleted"} <= set(body)
    assert (await client.get(f"/api/v1/sources/{source['id']}")).status_code == 404


async def _stored_bytes(settings: Settings) -> bytes:
    """Everything the store holds about sources, as bytes: the SQLite files, or the PostgreSQL
    ``sources`` rows as text."""
    if settings.database_kind == "sqlite":
        return b"".join(path.read_bytes() for path in settings.data_dir.glob("spark.db*"))
    import psycopg

    async with await psycopg.AsyncConnection.connect(settings.postgres_url) as conn:
        rows = await (await conn.execute("SELECT sources::text FROM sources")).fetchall()
    return "".join(str(row[0]) for row in rows).encode()
