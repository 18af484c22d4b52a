"""`spark schedule apply`: a schedule declared under a key, applied as often as a script likes."""

import json

from tests.cli.conftest import Spark


def test_apply_twice_keeps_one_schedule_and_a_change_replaces_it(
    spark: Spark, echo_workflow: str
) -> None:
    """The same options twice: one schedule, unchanged; new options: replaced, same id."""
    args = ("schedule", "apply", "digest.daily", echo_workflow, "--type", "cron",
            "--expr", "0 9 * * *")
    first = spark(*args)
    assert first.exit_code == 0, first.output
    assert "Created" in first.stderr
    again = spark(*args)
    assert again.stdout == first.stdout
    assert "Unchanged" in again.stderr
    changed = spark(*args, "--input", "digest")
    assert changed.stdout == first.stdout
    assert "Replaced" in changed.stderr
    page = json.loads(spark("schedule", "list", "--key", "digest.daily", "--json").stdout)
    assert [item["id"] for item in page["items"]] == [first.stdout.strip()]
    assert page["items"][0]["input_value"] == "digest"
    assert json.loads(spark("schedule", "list", "--json").stdout)["total"] == 1
