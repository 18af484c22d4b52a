"""`spark schedule add/update --jitter`: jittered schedules."""

import json

from tests.cli.conftest import Spark


def test_jitter_is_set_and_changed_from_the_command_line(spark: Spark, echo_workflow: str) -> None:
    """--jitter reaches the schedule on add and update; a bad one exits non-zero."""
    result = spark("schedule", "add", echo_workflow, "--type", "interval", "--expr", "1h",
                   "--jitter", "30s")
    assert result.exit_code == 0, result.output
    schedule_id = result.stdout.strip()
    shown = json.loads(spark("schedule", "show", schedule_id, "--json").stdout)
    assert shown["jitter"] == "30s"
    updated = spark("schedule", "update", schedule_id, "--jitter", "2m", "--json")
    assert json.loads(updated.stdout)["jitter"] == "2m"
    refused = spark("schedule", "update", schedule_id, "--jitter", "later")
    assert refused.exit_code != 0
    assert "jitter" in refused.output
