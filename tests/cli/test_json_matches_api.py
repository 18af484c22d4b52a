"""``spark … --json`` prints byte for byte what the REST API answers for the same store: the
same shapes, the same field order and the same datetimes (``+00:00``), for lists and single
reads of tasks, workflows, schedules and sources."""

import asyncio
from pathlib import Path

import pytest

from spark_adapters.container import build_container
from spark_adapters.settings import Settings
from spark_http.app import create_app
from tests.cli.conftest import Spark
from tests.http.conftest import http_client, lifespan

API_KEY = "cli-api-key"


def api_bodies(data_dir: Path, paths: list[str]) -> list[bytes]:
    """The API's answers for ``paths``, served over the store in ``data_dir`` (no worker)."""

    async def read() -> list[bytes]:
        settings = Settings(api_keys=(API_KEY,), data_dir=data_dir)
        app = create_app(build_container(settings), run_background=False)
        async with lifespan(app), http_client(app, {"X-API-Key": API_KEY}) as client:
            bodies = []
            for path in paths:
                response = await client.get(path)
                assert response.status_code == 200, response.text
                bodies.append(response.content)
            return bodies

    return asyncio.run(read())


@pytest.fixture
def store(spark: Spark, echo_workflow: str, langflow_source: str) -> dict[str, str]:
    """A store with a source, a workflow, a finished and a queued task, and a schedule."""
    finished = spark("workflow", "run", echo_workflow, "--input", "hello", "--json")
    assert finished.exit_code == 0, finished.output
    queued = spark("workflow", "run", echo_workflow, "--input", "later", "--no-wait", "--json")
    assert queued.exit_code == 0, queued.output
    schedule = spark("schedule", "add", echo_workflow, "--type", "interval", "--expr", "1h",
                     "--json")
    assert schedule.exit_code == 0, schedule.output
    return {
        "source": langflow_source,
        "workflow": echo_workflow,
        "task": finished.stdout.split('"id":"', 1)[1].split('"', 1)[0],
        "schedule": schedule.stdout.split('"id":"', 1)[1].split('"', 1)[0],
    }


def test_cli_json_is_the_api_answer_byte_for_byte(
    spark: Spark, store: dict[str, str], workdir: Path
) -> None:
    """Each ``--json`` list and show prints the API's body for the same read, plus a newline."""
    commands = {
        "/api/v1/tasks": ("task", "list", "--json"),
        f"/api/v1/tasks/{store['task']}": ("task", "show", store["task"], "--json"),
        "/api/v1/workflows": ("workflow", "list", "--json"),
        f"/api/v1/workflows/{store['workflow']}": ("workflow", "show", store["workflow"],
                                                   "--json"),
        "/api/v1/schedules": ("schedule", "list", "--json"),
        f"/api/v1/schedules/{store['schedule']}": ("schedule", "show", store["schedule"],
                                                   "--json"),
        "/api/v1/sources": ("source", "list", "--json"),
        f"/api/v1/sources/{store['source']}": ("source", "show", store["source"], "--json"),
    }
    printed = {path: spark(*command) for path, command in commands.items()}
    answered = dict(zip(commands, api_bodies(workdir / "data", list(commands)), strict=True))
    for path, result in printed.items():
        assert result.exit_code == 0, (path, result.output)
        assert result.stdout.encode() == answered[path] + b"\n", path


def test_cli_json_datetimes_carry_an_explicit_utc_offset(spark: Spark,
                                                          store: dict[str, str]) -> None:
    """Datetimes in ``--json`` end in ``+00:00``, which ``datetime.fromisoformat`` reads on
    every Python version, never in ``Z``."""
    shown = spark("task", "show", store["task"], "--json").stdout
    assert '"created_at":"' in shown
    created = shown.split('"created_at":"', 1)[1].split('"', 1)[0]
    assert created.endswith("+00:00"), created
