"""Spark inside another service: its API mounted under a prefix, its scheduler and worker in the
host's event loop, a clean stop, and adapters replaced through the container."""

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import cast

from dependency_injector import providers
from litestar import Litestar, asgi, get
from litestar.enums import ScopeType
from litestar.types import (
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

import spark_adapters
from spark_adapters import Container, Settings, SqliteStore, build_container
from spark_core import Spark, TaskFilter, TaskStatus
from spark_http.app import create_app
from tests.fakes.clock import FakeClock
from tests.fakes.secrets import FakeSecretBox
from tests.fakes.sources import FakeConnector
from tests.http.conftest import http_client, lifespan
from tests.servers import FakeLangflow
from tests.servers.langflow import ECHO_ID, SLOW_ID, SLOW_NODE

API_KEY = "host-test-key"
AUTH = {"X-API-Key": API_KEY}


def _container(tmp_path: Path) -> Container:
    return build_container(Settings(api_keys=(API_KEY,), data_dir=tmp_path, workers=4))


def _litestar_host(container: Container) -> Litestar:
    """A host with its own route and Spark mounted under ``/spark``, Spark's lifespan in its."""
    spark_api = create_app(container, shutdown_grace=0.2)

    @asgi("/spark", is_mount=True, copy_scope=True)
    async def spark(scope: Scope, receive: Receive, send: Send) -> None:
        await spark_api(scope, receive, send)

    @get("/hello", sync_to_thread=False)
    def hello() -> dict[str, str]:
        return {"hello": "host"}

    @contextlib.asynccontextmanager
    async def run_spark(app: Litestar) -> AsyncIterator[None]:
        async with spark_api.lifespan():
            app.state.spark = spark_api.state.spark
            yield

    return Litestar([hello, spark], lifespan=[run_spark])


def _spark_tasks() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name().startswith("spark-")]


async def test_the_host_keeps_serving_while_spark_schedules_fire_in_its_loop(
    langflow_server: FakeLangflow, tmp_path: Path
) -> None:
    """A 1s interval schedule fires twice inside the host's loop while ``/hello`` answers
    promptly throughout; shutdown leaves no task ``running`` and no Spark asyncio task alive."""
    host = _litestar_host(_container(tmp_path))
    async with lifespan(host), http_client(host, AUTH) as client:
        spark: Spark = host.state.spark
        source = await spark.add_source(name="lf", source_type="langflow",
                                        url=langflow_server.url, api_key=langflow_server.api_key)
        echo = await spark.sync(ECHO_ID, source_id=source.id)
        schedule = await spark.schedule(echo.id, every="1s", input_value="tick")
        slowest = 0.0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            began = loop.time()
            response = await client.get("/hello")
            slowest = max(slowest, loop.time() - began)
            assert response.json() == {"hello": "host"}
            done = await spark.list_tasks(schedule_id=schedule.id, status=TaskStatus.COMPLETED)
            if done.total >= 2:
                break
            assert loop.time() < deadline, "the schedule did not fire twice within 10 s"
            await asyncio.sleep(0.05)
        assert slowest < 0.5
        assert [task.output_data for task in done.items] == ["tick", "tick"]
        # A long run is in flight when the host stops.
        slow = await spark.sync(SLOW_ID, source_id=source.id)
        in_flight = await spark.tasks.run(slow.id, input_data="slow", wait=False,
                                          tweaks={SLOW_NODE: {"delay_seconds": 30}})
        for _ in range(250):
            if (await spark.tasks.get(in_flight.id)).status == TaskStatus.RUNNING:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the slow run never started")
    assert spark.health()["worker"] == "stopped"
    assert spark.health()["scheduler"] == "stopped"
    assert _spark_tasks() == []
    store = SqliteStore(tmp_path / "spark.db")
    await store.open()
    try:
        running = await store.tasks.list(
            TaskFilter(status=TaskStatus.RUNNING), limit=100, offset=0
        )
        interrupted = await store.tasks.get(in_flight.id)
    finally:
        await store.close()
    assert running.total == 0
    assert interrupted.error == "interrupted"


async def test_mounted_docs_name_the_prefix_and_load_their_files_under_it(
    tmp_path: Path,
) -> None:
    """Under /spark, every OpenAPI document names /spark as its server (so "Try it out" calls
    /spark/api/v1/…), the docs page loads its files from /spark/api/v1/docs/static, each
    answering 200 without a key, and ``GET /`` names the docs under /spark."""
    host = _litestar_host(_container(tmp_path))
    async with lifespan(host), http_client(host) as anonymous:
        for url in ("/spark/api/v1/openapi.json", "/spark/api/v1/docs/openapi.json"):
            assert (await anonymous.get(url)).json()["servers"] == [{"url": "/spark"}], url
        page = await anonymous.get("/spark/api/v1/docs")
        assert page.status_code == 200
        assert '"servers":[{"url":"/spark"}]' in page.text.replace(" ", "")
        assets = re.findall(r"""(?:src|href)=["']([^"']+)""", page.text)
        assert len(assets) >= 3
        for url in assets:
            assert url.startswith("/spark/api/v1/docs/static/"), url
            assert (await anonymous.get(url)).status_code == 200, url
    async with lifespan(host), http_client(host, AUTH) as client:
        root = (await client.get("/spark/")).json()
        assert (root["docs_url"], root["openapi_url"]) == (
            "/spark/api/v1/docs", "/spark/api/v1/openapi.json")


async def test_a_raw_asgi_host_serves_a_facade_it_opened_itself(
    langflow_server: FakeLangflow, tmp_path: Path
) -> None:
    """``create_app(container, spark=...)`` mounted by a plain ASGI dispatcher serves the
    host's facade, whose lifecycle the host owns."""
    container = _container(tmp_path)
    async with spark_adapters.connect(container=container, shutdown_grace=0.2) as spark:
        spark_api = create_app(container, spark=spark)

        async def host(scope: Scope, receive: Receive, send: Send) -> None:
            path = str(scope.get("path", ""))
            if scope["type"] == ScopeType.HTTP and path.startswith("/spark/"):
                mounted = {**scope, "path": path.removeprefix("/spark"),
                           "root_path": f"{scope.get('root_path', '')}/spark"}
                await spark_api(cast("Scope", mounted), receive, send)
                return
            await send(cast("HTTPResponseStartEvent", {
                "type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]}))
            await send(cast("HTTPResponseBodyEvent", {"type": "http.response.body",
                                                    "body": b"host"}))

        source = await spark.add_source(name="lf", source_type="langflow",
                                        url=langflow_server.url, api_key=langflow_server.api_key)
        workflow = await spark.sync(ECHO_ID, source_id=source.id)
        async with http_client(host, AUTH) as client:  # type: ignore[arg-type]
            assert (await client.get("/anything")).text == "host"
            assert (await client.get("/spark/health")).json()["status"] == "healthy"
            task = (await client.post(f"/spark/api/v1/workflows/{workflow.id}/run",
                                      json="raw")).json()
            assert (task["status"], task["output_data"]) == ("completed", "raw")
    assert (spark.health()["scheduler"], spark.health()["worker"]) == ("stopped", "stopped")


async def test_clock_store_and_connector_are_replaced_through_the_container(
    tmp_path: Path,
) -> None:
    """Overriding providers swaps the clock, store, secrets and connector; the core is none
    the wiser and schedules by the replaced clock."""
    clock = FakeClock()
    connector = FakeConnector()
    connector.add_remote("http://flows.test").add_flow("echo")
    other_db = tmp_path / "elsewhere" / "other.db"
    other_db.parent.mkdir()
    container = _container(tmp_path)
    container.clock.override(providers.Object(clock))
    container.connector.override(providers.Object(connector))
    container.secrets.override(providers.Object(FakeSecretBox()))
    container.store.override(providers.Singleton(SqliteStore, other_db, clock=clock))
    async with spark_adapters.connect(container=container, run_background=False) as spark:
        source = await spark.add_source(name="fake", source_type="langflow",
                                        url="http://flows.test")
        assert source.created_at == clock.now()
        workflow = await spark.sync("echo", source_id=source.id)
        schedule = await spark.schedule(workflow.id, every="2s")
        assert schedule.next_run_at == clock.now() + timedelta(seconds=2)
        clock.advance(2)
        assert await spark.scheduler.tick() == 1
        [task] = (await spark.list_tasks(schedule_id=schedule.id)).items
        assert task.scheduled_for == clock.now()
    assert other_db.is_file()
    assert not (tmp_path / "spark.db").exists()
