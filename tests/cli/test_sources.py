"""`spark source …` against the real store and loopback fake servers."""

import json
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import HIVE_KEY, LANGFLOW_KEY, Spark
from tests.servers.hive import FakeHive
from tests.servers.langflow import FakeLangflow

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def test_add_langflow_then_list_and_show_never_print_the_key(
    spark: Spark, langflow: FakeLangflow, langflow_source: str
) -> None:
    """A LangFlow source added with its key is listed and shown, as a table and as JSON,
    and its key appears nowhere."""
    table = spark("source", "list")
    assert table.exit_code == 0
    assert table.stdout.splitlines()[0].split() == ["ID", "NAME", "TYPE", "URL", "STATUS",
                                                    "VERSION"]
    assert langflow_source in table.stdout
    assert "1.13.0" in table.stdout

    page = json.loads(spark("source", "list", "--json").stdout)
    assert set(page) == {"items", "total", "limit", "offset", "has_more"}
    assert page["total"] == 1
    assert page["items"][0]["url"] == langflow.url
    assert page["items"][0]["source_type"] == "langflow"

    shown = json.loads(spark("source", "show", langflow_source, "--json").stdout)
    assert shown["id"] == langflow_source
    assert shown["status"] == "active"
    assert "api_key" not in shown
    for output in (table.output, spark("source", "show", langflow_source).output,
                   json.dumps(page), json.dumps(shown)):
        assert LANGFLOW_KEY not in output


def test_add_hive_with_the_key_from_stdin(spark: Spark, hive: FakeHive) -> None:
    """A Hive source (`hive` alias) can take its key from stdin, and is stored canonically."""
    result = spark("source", "add", "--name", "hive", "--type", "hive", "--url", hive.url,
                   "--api-key-stdin", "--json", input=HIVE_KEY + "\n")
    assert result.exit_code == 0, result.output
    added = json.loads(result.stdout)
    assert added["source_type"] == "automagik-hive"
    assert HIVE_KEY not in result.output


def test_add_with_the_key_from_a_hidden_prompt(spark: Spark, langflow: FakeLangflow) -> None:
    """`--ask-api-key` prompts for the key without echoing it."""
    result = spark("source", "add", "--name", "lf", "--type", "langflow", "--url", langflow.url,
                   "--ask-api-key", input=LANGFLOW_KEY + "\n")
    assert result.exit_code == 0, result.output
    assert LANGFLOW_KEY not in result.output


def test_a_key_piped_into_ask_api_key_is_read_without_a_getpass_warning(
        workdir: Path, langflow: FakeLangflow) -> None:
    """With stdin not a terminal, ``--ask-api-key`` reads the line quietly."""
    result = subprocess.run(
        [sys.executable, "-m", "spark_cli", "--data-dir", str(workdir / "data"), "source", "add",
         "--name", "lf", "--type", "langflow", "--url", langflow.url, "--ask-api-key"],
        input=LANGFLOW_KEY + "\n", capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "GetPassWarning" not in result.stderr
    assert LANGFLOW_KEY not in result.stdout + result.stderr


def test_add_with_the_key_from_the_environment(spark: Spark, langflow: FakeLangflow) -> None:
    """The key can come from SPARK_SOURCE_API_KEY instead of the command line."""
    result = spark("source", "add", "--name", "lf", "--type", "langflow", "--url", langflow.url,
                   env={"SPARK_SOURCE_API_KEY": LANGFLOW_KEY})
    assert result.exit_code == 0, result.output


def test_add_with_a_wrong_key_fails_clearly(spark: Spark, langflow: FakeLangflow) -> None:
    """A key the server refuses exits 1 with a message naming the URL, and stores nothing."""
    result = spark("source", "add", "--name", "lf", "--type", "langflow", "--url", langflow.url,
                   "--api-key", "wrong-key")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Source validation failed for " + langflow.url)
    assert "wrong-key" not in result.output
    assert json.loads(spark("source", "list", "--json").stdout)["total"] == 0


def test_add_with_an_unknown_type_is_an_invalid_value(spark: Spark) -> None:
    """An unknown source type exits 2 and lists the supported ones."""
    result = spark("source", "add", "--name", "x", "--type", "zapier", "--url", "http://x")
    assert result.exit_code == 2
    assert "Unknown source type 'zapier'" in result.stderr


def test_update_renames_and_rekeys(spark: Spark, langflow_source: str) -> None:
    """`update` changes the name, and a new key is checked against the server first."""
    renamed = spark("source", "update", langflow_source, "--name", "production", "--json")
    assert renamed.exit_code == 0, renamed.output
    assert json.loads(renamed.stdout)["name"] == "production"
    refused = spark("source", "update", langflow_source, "--api-key", "nope")
    assert refused.exit_code == 1
    assert "Source validation failed" in refused.stderr


def test_check_records_status_and_fails_when_the_server_is_down(
    spark: Spark, langflow: FakeLangflow, langflow_source: str
) -> None:
    """`check` reports an active source; an unhealthy server exits 1 and marks it inactive."""
    ok = spark("source", "check", langflow_source, "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["version_info"]["version"] == "1.13.0"
    langflow.healthy = False
    down = spark("source", "check", langflow_source)
    assert down.exit_code == 1
    assert down.stderr.startswith("Error: ")
    shown = json.loads(spark("source", "show", langflow_source, "--json").stdout)
    assert shown["status"] == "inactive"


def test_remove_deletes_the_source(spark: Spark, langflow_source: str) -> None:
    """`remove --yes` deletes the source and says what went with it."""
    result = spark("source", "remove", langflow_source, "--yes")
    assert result.exit_code == 0, result.output
    assert "0 workflow(s)" in result.stdout
    assert spark("source", "show", langflow_source).exit_code == 1


def test_remove_without_yes_asks_first(spark: Spark, langflow_source: str) -> None:
    """Declining the confirmation keeps the source (exit 1, "Aborted")."""
    result = spark("source", "remove", langflow_source, input="n\n")
    assert result.exit_code == 1
    assert spark("source", "show", langflow_source).exit_code == 0


def test_an_unknown_id_is_a_failed_operation(spark: Spark) -> None:
    """Showing a source that does not exist exits 1 with `Error: …` on stderr."""
    assert spark("db", "migrate").exit_code == 0  # a store to look in
    result = spark("source", "show", UNKNOWN_ID)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert UNKNOWN_ID in result.stderr
    assert result.stdout == ""


def test_an_invalid_option_value_is_bad_usage(spark: Spark) -> None:
    """A value outside a choice or range exits 2."""
    assert spark("source", "list", "--status", "sleeping").exit_code == 2
    assert spark("source", "list", "--limit", "500").exit_code == 2
