"""`spark workflow update`: the concurrency limit and the workflow's own webhook, set, shown,
kept by a sync, and lifted."""

import json

from tests.cli.conftest import Spark
from tests.servers.langflow import ECHO_ID


def test_update_sets_shows_and_lifts_the_limit(spark: Spark, echo_workflow: str) -> None:
    """The limit is set and shown, survives a sync, and `--unlimited` lifts it."""
    result = spark("workflow", "update", echo_workflow, "--max-concurrency", "2", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["max_concurrency"] == 2
    assert "max_concurrency" in spark("workflow", "show", echo_workflow).stdout
    assert spark("workflow", "sync", ECHO_ID).exit_code == 0
    shown = json.loads(spark("workflow", "show", echo_workflow, "--json").stdout)
    assert shown["max_concurrency"] == 2
    [listed] = json.loads(spark("workflow", "list", "--json").stdout)["items"]
    assert listed["max_concurrency"] == 2
    lifted = spark("workflow", "update", ECHO_ID, "--unlimited", "--json")
    assert lifted.exit_code == 0, lifted.output
    assert json.loads(lifted.stdout)["max_concurrency"] is None


def test_update_needs_exactly_one_change_and_a_limit_of_at_least_one(
    spark: Spark, echo_workflow: str
) -> None:
    """No option, both options, or a limit of 0 is a usage error; nothing changes."""
    for args in ((), ("--max-concurrency", "1", "--unlimited"), ("--max-concurrency", "0")):
        result = spark("workflow", "update", echo_workflow, *args)
        assert result.exit_code == 2, (args, result.output)
    shown = json.loads(spark("workflow", "show", echo_workflow, "--json").stdout)
    assert shown["max_concurrency"] is None


def test_updating_an_unknown_workflow_fails_with_not_found(spark: Spark) -> None:
    """An unknown id exits non-zero with the store's message."""
    result = spark("workflow", "update", "nope", "--max-concurrency", "1")
    assert result.exit_code != 0
    assert "not found" in result.output


def test_update_sets_and_removes_the_workflow_webhook_keeping_the_limit(
    spark: Spark, echo_workflow: str
) -> None:
    """`--webhook-url` sets it (the limit stays), `--no-webhook` removes it; a URL that is not
    http(s) is refused with the reason and changes nothing."""
    assert spark("workflow", "update", echo_workflow, "--max-concurrency", "2").exit_code == 0
    result = spark("workflow", "update", echo_workflow, "--webhook-url",
                   "https://hooks.example.com/spark", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["webhook_url"], shown["max_concurrency"]) == (
        "https://hooks.example.com/spark", 2)
    refused = spark("workflow", "update", echo_workflow, "--webhook-url", "ftp://x/y")
    assert refused.exit_code != 0
    assert "http:// or https://" in refused.output
    both = spark("workflow", "update", echo_workflow, "--webhook-url", "https://a/b",
                 "--no-webhook")
    assert both.exit_code == 2
    removed = spark("workflow", "update", echo_workflow, "--no-webhook", "--json")
    assert json.loads(removed.stdout)["webhook_url"] is None
    assert json.loads(removed.stdout)["max_concurrency"] == 2
