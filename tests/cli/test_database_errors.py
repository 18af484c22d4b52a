"""A bad or unreachable database is one readable line and exit status 2, from every entrypoint.

Run as real subprocesses, so a traceback, a second line or a leaked password would show.
"""

import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from tests.postgres import TEST_DATABASE_URL
from tests.servers import unused_port

PASSWORD = "hunter2-do-not-print"
COMMANDS = (
    ("serve", "--port", "0"),
    ("worker",),
    ("task", "list"),
    ("db", "migrate"),
)


def _spark(workdir: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "API_"))},
        "SPARK_DATABASE_URL": database_url,
        "SPARK_API_KEY": "database-errors-test-key",
    }
    return subprocess.run([sys.executable, "-m", "spark_cli", *args], cwd=workdir,
                          env=environment, capture_output=True, text=True, timeout=60,
                          check=False)


def _assert_one_clear_line(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    for text in expected:
        assert text in lines[0], lines[0]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"mysql://spark:{PASSWORD}@db/spark", ("Unsupported SPARK_DATABASE_URL scheme 'mysql'",)),
        (f"postgresql://spark:{PASSWORD}@db:port/spark", ("port is not a number",)),
        (f"postgresql://spark:{PASSWORD}@/spark", ("no host",)),
    ],
    ids=["unknown-scheme", "bad-port", "no-host"],
)
def test_a_malformed_database_url_is_refused_by_every_command(
    tmp_path: Path, url: str, expected: tuple[str, ...]
) -> None:
    """An unknown scheme or a malformed URL: each command says what is wrong, exit 2."""
    for command in COMMANDS:
        _assert_one_clear_line(_spark(tmp_path, url, *command), *expected)


def test_an_unreachable_database_is_refused_by_every_command(tmp_path: Path) -> None:
    """Nothing listens at the URL's port: each command names the database, without its
    password, and exits 2 instead of starting."""
    url = f"postgresql://spark:{PASSWORD}@127.0.0.1:{unused_port()}/spark"
    for command in COMMANDS:
        _assert_one_clear_line(_spark(tmp_path, url, *command), "127.0.0.1")


def test_a_refusing_database_is_refused_by_every_command(tmp_path: Path) -> None:
    """A server that answers but refuses us (no such database): one line, exit 2."""
    server = os.environ.get(TEST_DATABASE_URL)
    if not server:
        pytest.skip(f"needs a PostgreSQL server named by {TEST_DATABASE_URL}")
    parts = urllib.parse.urlsplit(server)
    netloc = f"{parts.username or 'postgres'}:{PASSWORD}@{parts.hostname}:{parts.port or 5432}"
    url = urllib.parse.urlunsplit(parts._replace(netloc=netloc, path="/spark_no_such_database"))
    for command in COMMANDS:
        _assert_one_clear_line(_spark(tmp_path, url, *command), "spark_no_such_database")
