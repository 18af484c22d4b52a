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


async def test_the_recorded_run_commits_the_run_before_the_call_and_its_outcome_after(
    langflow_server: FakeLangflow, postgres_url: str,
) -> None:
    """PostgreSQL's run-now is compared with this route, so it must really write what a
    durable record needs: the run stored before the source is called, its outcome after."""
    import psycopg

    app = baseline.build_app(forward_to=langflow_server.url, forward_key=LANGFLOW_KEY,
                             record_in=postgres_url)
    seen_while_running: list[tuple[object, ...]] = []

    class LookingRuns(list[dict[str, object]]):
        def append(self, run: dict[str, object]) -> None:  # the source is being called
            with psycopg.connect(postgres_url) as conn:
                seen_while_running.extend(conn.execute(
                    f"SELECT flow_id, status, input, output FROM {baseline.RECORD_TABLE}"))
            super().append(run)

    langflow_server.runs = LookingRuns()
    async with lifespan(app), http_client(app) as client:
        answer = await client.post(f"{baseline.RECORDED_RUN_PATH}/{PROMPT_ID}",
                                   json={"input_value": "hello"})
    assert answer.status_code == 200
    assert "Spark received: hello" in answer.text
    assert seen_while_running == [(PROMPT_ID, "running", "hello", None)]
    with psycopg.connect(postgres_url) as conn:
        [(status, output, finished)] = conn.execute(
            f"SELECT status, output, finished_at IS NOT NULL FROM {baseline.RECORD_TABLE}")
    assert status == "completed"
    assert finished
    assert "Spark received: hello" in output
