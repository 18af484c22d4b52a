"""``spark status``: which store the commands use, its schema version and what it holds."""

import json
import urllib.parse
from pathlib import Path

from click.testing import CliRunner

from spark_cli.main import cli
from tests.cli.conftest import Spark


def test_status_names_the_store_its_schema_version_and_what_it_holds(
    spark: Spark, workdir: Path, echo_workflow: str
) -> None:
    """After a source, a workflow and one run, status shows the store's path, its schema
    version and the counts, tasks by status, as text and as JSON."""
    assert spark("workflow", "run", echo_workflow, "--input", "hi").exit_code == 0
    text = spark("status")
    assert text.exit_code == 0, text.output
    assert str(workdir / "data" / "spark.db") in text.stdout
    assert "schema version" in text.stdout
    assert "1 completed" in text.stdout
    report = json.loads(spark("status", "--json").stdout)
    assert report["store"] == str(workdir / "data" / "spark.db")
    assert isinstance(report["schema_version"], int)
    assert report["schema_version"] > 0
    assert (report["sources"], report["workflows"], report["schedules"]) == (1, 1, 0)
    assert report["tasks"] == {
        "pending": 0, "running": 0, "completed": 1, "failed": 0, "cancelled": 0,
    }


def test_status_shows_a_postgresql_store_without_its_password(postgres_url: str) -> None:
    """The store is named by its URL with the password left out."""
    parts = urllib.parse.urlsplit(postgres_url)
    secret = "status-secret-password"
    netloc = f"{parts.username or 'postgres'}:{secret}@{parts.hostname}:{parts.port or 5432}"
    url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    result = CliRunner().invoke(cli, ["--database-url", url, "status", "--json"])
    assert result.exit_code == 0, result.output
    assert secret not in result.output
    report = json.loads(result.stdout)
    assert parts.hostname in report["store"]
    assert report["sources"] == 0
