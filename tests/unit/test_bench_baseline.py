"""The bench's bare Litestar app: what Spark's figures are divided by."""

import sqlite3
from pathlib import Path

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


def recorded_rows(url: str, columns: str) -> list[tuple[object, ...]]:
    """``columns`` of the recorded runs in the store at ``url`` (PostgreSQL or SQLite)."""
    query = f"SELECT {columns} FROM {baseline.RECORD_TABLE}"
    if url.startswith(baseline.SQLITE_URL):
        conn = sqlite3.connect(url.removeprefix(baseline.SQLITE_URL))
        try:
            return conn.execute(query).fetchall()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url) as pg:
        return pg.execute(query).fetchall()


@pytest.fixture(params=["sqlite", "postgres"])
def record_in(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the recorded run is recorded: a SQLite file, or the test PostgreSQL."""
    if request.param == "sqlite":
        return f"{baseline.SQLITE_URL}{tmp_path / 'bare-runs.db'}"
    return str(request.getfixturevalue("postgres_url"))


async def test_the_recorded_run_commits_the_run_before_the_call_and_its_outcome_after(
    langflow_server: FakeLangflow, record_in: str,
) -> None:
    """Run-now is compared with this route in each store, so it must really write what a
    record needs: the run stored (committed: another connection reads it) before the source
    is called, its outcome after."""
    app = baseline.build_app(forward_to=langflow_server.url, forward_key=LANGFLOW_KEY,
                             record_in=record_in)
    seen_while_running: list[tuple[object, ...]] = []

    class LookingRuns(list[dict[str, object]]):
        def append(self, run: dict[str, object]) -> None:  # the source is being called
            seen_while_running.extend(recorded_rows(record_in, "flow_id, status, input, output"))
            super().append(run)

    langflow_server.runs = LookingRuns()
    async with lifespan(app), http_client(app) as client:
        answer = await client.post(f"{baseline.RECORDED_RUN_PATH}/{PROMPT_ID}",
                                   json={"input_value": "hello"})
    assert answer.status_code == 200
    assert "Spark received: hello" in answer.text
    assert seen_while_running == [(PROMPT_ID, "running", "hello", None)]
    [(status, output, finished)] = recorded_rows(
        record_in, "status, output, finished_at IS NOT NULL")
    assert status == "completed"
    assert finished
    assert "Spark received: hello" in str(output)
