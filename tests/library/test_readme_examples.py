"""The README's "Use as a library" and "Embed in your service" code blocks, executed as written
against loopback fakes, so that they can never go stale.

The blocks read their server URLs and keys from environment variables, which these tests set;
scripts that call ``asyncio.run`` run in a worker thread with their own event loop while the
fakes keep serving in the test's loop.
"""

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar

from tests.http.conftest import http_client, lifespan
from tests.library.webhook_server import FakeWebhook
from tests.servers import FakeLangflow
from tests.servers.langflow import ECHO_ID

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
API_KEY = "readme-key"


def python_blocks(section: str) -> list[tuple[str, int]]:
    """The fenced ``python`` blocks of one ``## `` section, with their first line numbers."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    body = text[start : end if end != -1 else len(text)]
    first_line = text[:start].count("\n") + 1
    return [
        (match.group(1), first_line + body[: match.start(1)].count("\n"))
        for match in BLOCK.finditer(body)
    ]


def execute(code: str, line: int) -> dict[str, Any]:
    """Run a block as a script would run (``__name__`` is ``__main__``); returns its globals."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(code, f"{README}:{line}", "exec"), namespace)
    return namespace


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each block runs in an empty directory with no Spark configuration of the host."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("SPARK_", "AUTOMAGIK_SPARK_", "API_")):
            monkeypatch.delenv(name)


def test_the_readme_has_the_library_and_embedding_examples() -> None:
    """Two library scripts (connect, and from_ports), a host service and a custom-source script
    are documented."""
    assert len(python_blocks("Use as a library")) == 2
    assert len(python_blocks("Embed in your service")) == 2


async def test_the_library_example_runs_against_langflow(
    langflow_server: FakeLangflow,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The library script adds a source, syncs, runs, waits, schedules and lists tasks."""
    monkeypatch.setenv("LANGFLOW_URL", langflow_server.url)
    monkeypatch.setenv("LANGFLOW_API_KEY", str(langflow_server.api_key))
    monkeypatch.setenv("LANGFLOW_FLOW_ID", ECHO_ID)
    [(code, line), (from_ports, from_ports_line)] = python_blocks("Use as a library")
    await asyncio.to_thread(execute, code, line)
    await asyncio.to_thread(execute, from_ports, from_ports_line)
    out = capsys.readouterr().out
    assert "from ports: again" in out
    assert f"offered: {ECHO_ID} spark-echo" in out
    assert "ran: completed hello" in out
    assert "waited: completed" in out
    assert "next: [datetime.datetime(" in out
    assert out.count("task: ") == 2
    assert (tmp_path / ".spark" / "spark.db").is_file()


async def test_the_library_example_runs_again_on_the_same_data(
    langflow_server: FakeLangflow, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Run a second time, the library script reuses the source it added instead of failing."""
    monkeypatch.setenv("LANGFLOW_URL", langflow_server.url)
    monkeypatch.setenv("LANGFLOW_API_KEY", str(langflow_server.api_key))
    monkeypatch.setenv("LANGFLOW_FLOW_ID", ECHO_ID)
    code, line = python_blocks("Use as a library")[0]
    await asyncio.to_thread(execute, code, line)
    capsys.readouterr()
    await asyncio.to_thread(execute, code, line)
    out = capsys.readouterr().out
    assert "ran: completed hello" in out
    assert out.count("task: ") == 4


async def test_the_embedding_example_serves_the_host_and_spark_under_a_prefix(
    langflow_server: FakeLangflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented host answers its own route and Spark's API under ``/spark``, runs a flow
    through Spark's worker in its loop, and stops it on shutdown."""
    monkeypatch.setenv("SPARK_API_KEY", API_KEY)
    monkeypatch.setenv("SPARK_DATA_DIR", str(tmp_path / "data"))
    code, line = python_blocks("Embed in your service")[0]
    host: Litestar = execute(code, line)["app"]
    async with lifespan(host), http_client(host, {"X-API-Key": API_KEY}) as client:
        assert (await client.get("/hello")).json() == {"hello": "from the host"}
        health = (await client.get("/spark/api/v1/health")).json()
        assert health["services"] == {"database": "ok", "scheduler": "running",
                                      "worker": "running"}
        source = (await client.post("/spark/api/v1/sources", json={
            "name": "lf", "source_type": "langflow", "url": langflow_server.url,
            "api_key": langflow_server.api_key})).json()
        workflow = (await client.post(f"/spark/api/v1/workflows/sync/{ECHO_ID}",
                                      params={"source_id": source["id"]})).json()
        task = (await client.post(f"/spark/api/v1/workflows/{workflow['id']}/run",
                                  json="through the host")).json()
        assert (task["status"], task["output_data"]) == ("completed", "through the host")
        assert (await client.get("/spark/api/v1/sources")).status_code == 200
        assert (await client.get("/spark/api/v1/sources", headers={"X-API-Key": "no"})
                ).status_code == 401
        spark = host.state.spark
    assert spark.health()["worker"] == "stopped"
    assert spark.health()["scheduler"] == "stopped"


async def test_the_custom_source_example_runs_a_webhook(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The container-override script registers the webhook type and runs a webhook flow."""
    webhook = FakeWebhook()
    await webhook.start()
    try:
        monkeypatch.setenv("WEBHOOK_URL", webhook.url)
        code, line = python_blocks("Embed in your service")[1]
        await asyncio.to_thread(execute, code, line)
    finally:
        await webhook.stop()
    assert "webhook: HELLO" in capsys.readouterr().out
    assert webhook.runs == [{"flow": "shout", "json": {"input": "hello"}}]
