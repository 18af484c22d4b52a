"""Fixtures for the CLI: an isolated working directory, the command, and loopback fake servers.

``CliRunner`` is synchronous and every command runs its own event loop, so the fake LangFlow
and Hive servers run on an event loop of their own in a background thread (``ServerThread``;
the ``langflow`` fixture comes from ``tests.processes``).
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
from click.testing import CliRunner, Result

from spark_cli.main import cli
from tests.processes import ServerThread, langflow
from tests.servers import HIVE_KEY, LANGFLOW_KEY, FakeHive, FakeLangflow
from tests.servers.langflow import ECHO_ID

CONFIG_VARIABLES = (
    "API_HOST", "API_PORT", "SPARK_API_KEY", "AUTOMAGIK_SPARK_API_KEY", "SPARK_DATA_DIR",
    "SPARK_DATABASE_URL", "SPARK_ENCRYPTION_KEY", "SPARK_CORS_ORIGINS", "SPARK_HTTP_TIMEOUT",
    "SPARK_WORKERS", "SPARK_LOG_LEVEL", "SPARK_SOURCE_API_KEY",
)


class Spark(Protocol):
    """The ``spark`` command as tests call it."""

    def __call__(self, *args: str, input: str | None = None,
                 env: dict[str, str] | None = None) -> Result: ...


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory (its own `.env`) with no Spark configuration in the env."""
    for variable in CONFIG_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def spark(workdir: Path) -> Spark:
    """Invoke ``spark --data-dir <tmp>/data …``; unexpected exceptions fail the test."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None,
               env: dict[str, str] | None = None) -> Result:
        result = runner.invoke(cli, ["--data-dir", str(workdir / "data"), *args],
                               input=input, env=env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    return invoke


@pytest.fixture
def hive() -> Iterator[FakeHive]:
    """A fake Automagik Hive on loopback whose key is ``HIVE_KEY``."""
    with ServerThread(FakeHive(api_key=HIVE_KEY)) as server:
        yield server


@pytest.fixture
def langflow_source(spark: Spark, langflow: FakeLangflow) -> str:
    """The id of a LangFlow source added through the CLI."""
    result = spark("source", "add", "--name", "lf", "--type", "langflow", "--url", langflow.url,
                   "--api-key", LANGFLOW_KEY)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


@pytest.fixture
def echo_workflow(spark: Spark, langflow_source: str) -> str:
    """The local id of LangFlow's echo flow, synced through the CLI."""
    result = spark("workflow", "sync", ECHO_ID, "--source", langflow_source)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


__all__ = ["HIVE_KEY", "LANGFLOW_KEY", "Spark", "langflow"]
