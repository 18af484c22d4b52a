"""A list page the store hands back unchanged is answered by responses made once
(``spark_http.schemas.EncodedResponse``): the same bytes each time, never one request's
headers in another's answer, a fresh answer after a write, and the ordinary Litestar
response wherever a route asks for more than a plain 200."""

from typing import Any

import httpx
from litestar import Litestar, get
from litestar.datastructures import ResponseHeader

from spark_http.schemas import EncodedResponse
from tests.http.conftest import add_source, http_client, sync_flow
from tests.servers import FakeLangflow
from tests.servers.langflow import ECHO_ID

ORIGIN = {"Origin": "https://ui.example"}


async def test_a_kept_page_answers_the_same_bytes_with_each_requests_own_headers(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """The same page asked for again is the same body; the CORS headers added for a request
    with an ``Origin`` are not in the answers to the requests without one, before or after,
    and every answer has its own request id."""
    source = await add_source(client, langflow_server)
    await sync_flow(client, ECHO_ID, source["id"])
    for path in ("/api/v1/tasks", "/api/v1/workflows"):
        plain = await client.get(path, params={"limit": 100})
        crossed = await client.get(path, params={"limit": 100}, headers=ORIGIN)
        again = await client.get(path, params={"limit": 100})
        assert plain.status_code == crossed.status_code == again.status_code == 200
        assert plain.content == crossed.content == again.content
        assert crossed.headers["access-control-allow-origin"] == "https://ui.example"
        for answer in (plain, again):
            assert "access-control-allow-origin" not in answer.headers
            assert answer.headers["content-type"] == "application/json"
            assert int(answer.headers["content-length"]) == len(answer.content)
        ids = {answer.headers["x-request-id"] for answer in (plain, crossed, again)}
        assert len(ids) == 3


async def test_a_page_asked_for_after_a_write_shows_the_write(
    client: httpx.AsyncClient, langflow_server: FakeLangflow
) -> None:
    """A kept page is never answered once the store changed: the new run and the workflow's
    new count appear in the very next answer."""
    source = await add_source(client, langflow_server)
    workflow = await sync_flow(client, ECHO_ID, source["id"])
    before = [(await client.get("/api/v1/tasks")).json() for _ in range(2)]
    listed = [(await client.get("/api/v1/workflows")).json() for _ in range(2)]
    assert before[0] == before[1]
    assert before[0]["total"] == 0
    assert listed[0]["items"][0]["task_count"] == 0
    ran: dict[str, Any] = (
        await client.post(f"/api/v1/workflows/{workflow['id']}/run", json="hello")).json()
    after = (await client.get("/api/v1/tasks")).json()
    assert after["total"] == 1
    assert after["items"][0]["id"] == ran["id"]
    assert (await client.get("/api/v1/workflows")).json()["items"][0]["task_count"] == 1


async def test_a_route_asking_for_more_than_a_plain_200_gets_it() -> None:
    """Response headers, another status code and HEAD are honoured, the body unchanged."""
    answer = EncodedResponse(b'{"kept":true}')

    @get("/headed", response_headers=[ResponseHeader(name="X-Extra", value="yes")],
         sync_to_thread=False)
    def headed() -> EncodedResponse:
        return answer

    @get("/accepted", status_code=202, sync_to_thread=False)
    def accepted() -> EncodedResponse:
        return answer

    @get("/plain", sync_to_thread=False)
    def plain() -> EncodedResponse:
        return answer

    app = Litestar([headed, accepted, plain], logging_config=None)
    async with http_client(app) as client:
        with_header = await client.get("/headed")
        assert with_header.headers["x-extra"] == "yes"
        assert with_header.content == b'{"kept":true}'
        status = await client.get("/accepted")
        assert status.status_code == 202
        assert status.content == b'{"kept":true}'
        for _ in range(2):
            kept = await client.get("/plain")
            assert kept.status_code == 200
            assert kept.content == b'{"kept":true}'
            assert "x-extra" not in kept.headers
            assert kept.headers["content-type"] == "application/json"
