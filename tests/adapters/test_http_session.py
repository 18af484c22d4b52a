"""``SourceHttp``: how a source's bodies are read, whatever their framing."""

import gzip
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from spark_adapters.http_session import SourceHttp
from spark_core.errors import SourceProtocolError

pytest_plugins = ["tests.servers.fixtures"]

CAP = 1000


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    """A loopback server answering bodies framed by length, chunked, and gzip-compressed."""

    async def sized(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * int(request.query["size"]))

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(int(request.query["chunks"])):
            await response.write(b"y" * 100)
        await response.write_eof()
        return response

    async def compressed(request: web.Request) -> web.Response:
        # small on the wire, large once decompressed: the cap is on what is read
        body = gzip.compress(b"z" * int(request.query["size"]))
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    app = web.Application()
    app.router.add_get("/sized", sized)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/compressed", compressed)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    yield test_server
    await test_server.close()


@pytest.fixture
def http(server: TestServer, http_session: aiohttp.ClientSession) -> SourceHttp:
    """A client of the loopback server whose bodies may be ``CAP`` bytes at most."""
    return SourceHttp(http_session, base_url=str(server.make_url("/")), label="Test source",
                      headers={}, max_body_bytes=CAP)


@pytest.mark.parametrize(("path", "params", "expected"), [
    ("/sized", {"size": "1000"}, b"x" * 1000),
    ("/chunked", {"chunks": "10"}, b"y" * 1000),
    ("/compressed", {"size": "1000"}, b"z" * 1000),
])
async def test_a_body_up_to_the_cap_is_read_whole_however_it_is_framed(
        http: SourceHttp, path: str, params: dict[str, str], expected: bytes) -> None:
    """Framed by its length, chunked or compressed: the body as sent, decompressed."""
    response = await http.get(path, params=params)
    assert (response.status, response.body) == (200, expected)


@pytest.mark.parametrize(("path", "params"), [
    ("/sized", {"size": "1001"}),
    ("/chunked", {"chunks": "11"}),
    ("/compressed", {"size": "100000"}),
])
async def test_a_body_over_the_cap_is_refused_however_it_is_framed(
        http: SourceHttp, path: str, params: dict[str, str]) -> None:
    """A declared length over the cap, a chunked body growing past it, and a compressed body
    whose length on the wire fits but whose content does not are all refused, naming the
    source and the cap."""
    with pytest.raises(SourceProtocolError,
                       match=f"Test source answered GET {path} with a body larger than {CAP}"):
        await http.get(path, params=params)
