"""`spark api-key`, `spark version` and `spark db`."""

import asyncio
import io
import json
import re
import stat
import sys
from pathlib import Path

import pytest

from spark_adapters.settings import read_dotenv
from spark_adapters.sqlite import LATEST_VERSION
from spark_cli.output import progress
from tests.cli.conftest import Spark

URL_SAFE_KEY = re.compile(r"[A-Za-z0-9_-]{43,}")


def test_api_key_generate_prints_a_url_safe_key_of_32_bytes(spark: Spark, workdir: Path) -> None:
    """`api-key generate` prints a URL-safe key of at least 43 characters and writes nothing."""
    result = spark("api-key", "generate")
    assert result.exit_code == 0
    assert URL_SAFE_KEY.fullmatch(result.stdout.strip())
    assert not (workdir / ".env").exists()


def test_api_key_generate_write_stores_it_in_dotenv_mode_0600(spark: Spark, workdir: Path) -> None:
    """`api-key generate --write` keeps other `.env` lines and stores the key with mode 0600."""
    (workdir / ".env").write_text("SPARK_LOG_LEVEL=DEBUG\nSPARK_API_KEY=old\n")
    result = spark("api-key", "generate", "--write")
    assert result.exit_code == 0
    key = result.stdout.strip()
    dotenv = workdir / ".env"
    assert stat.S_IMODE(dotenv.stat().st_mode) == 0o600
    assert read_dotenv(dotenv) == {"SPARK_LOG_LEVEL": "DEBUG", "SPARK_API_KEY": key}


def test_version_prints_the_package_version(spark: Spark) -> None:
    """`version` prints `spark <version>`, and `--json` an object with `version`."""
    assert spark("version").stdout.startswith("spark ")
    assert "version" in json.loads(spark("version", "--json").stdout)


def test_db_migrate_creates_the_store_and_prints_its_schema_version(
    spark: Spark, workdir: Path
) -> None:
    """`db migrate` creates the SQLite store under the data dir and prints the schema version."""
    result = spark("db", "migrate")
    assert result.exit_code == 0, result.output
    assert f"Schema version {LATEST_VERSION}" in result.stdout
    assert (workdir / "data" / "spark.db").exists()
    assert spark("db", "migrate").exit_code == 0


def test_database_url_flag_wins_over_data_dir(spark: Spark, workdir: Path) -> None:
    """`--database-url` picks the store file, over the data dir default."""
    target = workdir / "elsewhere.db"
    result = spark("--database-url", f"sqlite:///{target}", "db", "migrate")
    assert result.exit_code == 0, result.output
    assert target.exists()


def test_an_unsupported_database_url_is_an_invalid_value(spark: Spark) -> None:
    """A database URL Spark cannot use exits 2 with the reason."""
    result = spark("--database-url", "mysql://db/spark", "source", "list")
    assert result.exit_code == 2
    assert "Unsupported SPARK_DATABASE_URL scheme 'mysql'" in result.stderr


def test_dotenv_in_the_working_directory_is_read(spark: Spark, workdir: Path) -> None:
    """Settings come from `.env` in the working directory (the flag still wins)."""
    (workdir / ".env").write_text(f"SPARK_DATABASE_URL=sqlite:///{workdir / 'from-env.db'}\n")
    assert spark("db", "migrate").exit_code == 0
    assert (workdir / "from-env.db").exists()


def test_progress_is_shown_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress appears on stderr when it is a terminal, and not at all otherwise."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    async def slow() -> None:
        async with progress("Running flow"):
            await asyncio.sleep(0.3)

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    asyncio.run(slow())
    assert "Running flow (0s)" in terminal.getvalue()
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    asyncio.run(slow())
    assert piped.getvalue() == ""
