"""The bench's bare Litestar app: what Spark's figures are divided by."""

import pytest

from bench import baseline
from tests.http.conftest import http_client, lifespan
from tests.servers import LANGFLOW_KEY, FakeLangflow
from tests.servers.langflow import PROMPT_ID


async def test_the_bare_run_sends_the_run_on_and_answers_with_the_sources_answer(
    langflow_server: FakeLangflow,
) -> None:
    """The run-now figures are compared with this route, so it must really make the call
    Spark makes: the input posted to the source's run endpoint with its key, the answer
    relayed."""
    app = baseline.build_app(forward_to=langflow_server.url, forward_key=LANGFLOW_KEY)
    async with lifespan(app), http_client(app) as client:
        answer = await client.post(f"{baseline.RUN_PATH}/{PROMPT_ID}",
                                   json={"input_value": "hello"})
    assert answer.status_code == 200
    assert "Spark received: hello" in answer.text
    [run] = langflow_server.runs
    assert run["json"]["input_value"] == "hello"
    assert run["query"] == {"stream": "false"}
    headers = {key.lower(): value for key, value in run["headers"].items()}
    assert headers["x-api-key"] == LANGFLOW_KEY


async def test_without_a_source_the_bare_app_has_no_run_route(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The list figures' baseline stays the page alone when no source is given."""
    monkeypatch.delenv(baseline.FORWARD_TO_ENV, raising=False)
    app = baseline.build_app()
    async with lifespan(app), http_client(app) as client:
        assert (await client.get(baseline.PAGE_PATH)).status_code == 200
        assert (await client.post(f"{baseline.RUN_PATH}/any", json={})).status_code == 404
