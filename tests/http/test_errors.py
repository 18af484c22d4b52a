"""Every error is JSON with ``detail`` and ``status_code``, and the right status."""

from typing import Any

import httpx
import pytest
from litestar import Litestar

from tests.http.conftest import add_source
from tests.servers import FakeLangflow

Client = httpx.AsyncClient


def _is_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["status_code"] == status
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


async def test_malformed_json_is_400(client: Client) -> None:
    """A body that is not JSON is a 400, not a 422 or 500."""
    response = await client.post(
        "/api/v1/sources", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    body = _is_error(response, 400)
    assert body["errors"][0]["field"] == "body"


async def test_missing_field_is_400_naming_the_field(client: Client) -> None:
    """A missing required field is a 400 whose errors name it."""
    response = await client.post(
        "/api/v1/sources", json={"name": "x", "source_type": "langflow"}
    )
    body = _is_error(response, 400)
    assert body["errors"][0]["field"] == "url"


async def test_wrong_type_is_400_naming_the_field(client: Client) -> None:
    """A field of the wrong type is a 400 whose errors name it."""
    response = await client.post(
        "/api/v1/tasks", json={"workflow_id": "w", "input_data": "x", "max_retries": "many"}
    )
    body = _is_error(response, 400)
    assert body["errors"][0]["field"] == "max_retries"


async def test_bad_pagination_is_400_naming_the_parameter(client: Client) -> None:
    """limit outside 1-100 or a negative offset is a 400 naming the parameter."""
    for params, field in (({"limit": 0}, "limit"), ({"limit": 101}, "limit"),
                          ({"offset": -1}, "offset"), ({"limit": "ten"}, "limit")):
        body = _is_error(await client.get("/api/v1/tasks", params=params), 400)
        assert body["errors"][0]["field"] == field


async def test_bad_filter_value_is_400(client: Client) -> None:
    """An unknown status filter is a 400 naming ``status``."""
    body = _is_error(await client.get("/api/v1/tasks", params={"status": "sleeping"}), 400)
    assert body["errors"][0]["field"] == "status"


async def test_unknown_ids_are_404(client: Client) -> None:
    """Reading any unknown id is a 404 with a message."""
    for path in ("/api/v1/sources/nope", "/api/v1/workflows/nope", "/api/v1/schedules/nope",
                 "/api/v1/tasks/nope"):
        _is_error(await client.get(path), 404)
    _is_error(await client.post("/api/v1/tasks/nope/cancel"), 404)


async def test_unknown_route_is_404_json(client: Client) -> None:
    """An unknown endpoint is a JSON 404 (with or without a key, outside /api/v1)."""
    _is_error(await client.get("/api/v1/does-not-exist"), 404)
    _is_error(await client.get("/nowhere", headers={"X-API-Key": ""}), 404)


async def test_wrong_method_is_405_json(client: Client) -> None:
    """A known path with an unsupported method is a JSON 405."""
    _is_error(await client.put("/api/v1/tasks"), 405)
    _is_error(await client.delete("/api/v1/sources"), 405)


async def test_duplicate_source_is_400(client: Client, langflow_server: FakeLangflow) -> None:
    """Adding a second source with the same URL is a 400 saying it exists."""
    await add_source(client, langflow_server)
    response = await client.post("/api/v1/sources", json={
        "name": "again", "source_type": "langflow", "url": langflow_server.url + "/",
        "api_key": langflow_server.api_key})
    assert "already exists" in _is_error(response, 400)["detail"]


async def test_unknown_source_type_is_400_naming_the_field(client: Client) -> None:
    """An unsupported source type is a 400 with a source_type field error."""
    response = await client.post(
        "/api/v1/sources", json={"name": "x", "source_type": "airflow", "url": "http://x"}
    )
    assert _is_error(response, 400)["errors"][0]["field"] == "source_type"


class _Exploding:
    """A source service whose every call fails unexpectedly."""

    def list(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail")


async def test_unexpected_error_is_500_without_internals(
    running_app: Litestar, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug answers 500 with a request id and no internals; the log has both."""
    running_app.state.spark.sources = _Exploding()
    response = await client.get("/api/v1/sources")
    body = _is_error(response, 500)
    assert body["detail"] == "Internal server error"
    assert body["request_id"]
    assert "secret internal detail" not in response.text
    logged = [r for r in caplog.records if body["request_id"] in r.getMessage()]
    assert logged
    assert logged[0].exc_info is not None
