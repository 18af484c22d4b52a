"""`spark schedule add --pause-after-failures` and `pause/resume --note`."""

import json

from tests.cli.conftest import Spark


def test_pause_after_failures_and_notes_from_the_command_line(
    spark: Spark, echo_workflow: str
) -> None:
    """--pause-after-failures reaches the schedule; pause --note shows it, resume clears it."""
    result = spark("schedule", "add", echo_workflow, "--type", "interval", "--expr", "1h",
                   "--pause-after-failures", "3")
    assert result.exit_code == 0, result.output
    schedule_id = result.stdout.strip()
    shown = json.loads(spark("schedule", "show", schedule_id, "--json").stdout)
    assert shown["pause_after_failures"] == 3
    paused = json.loads(spark("schedule", "pause", schedule_id, "--note", "migrating",
                              "--json").stdout)
    assert (paused["status"], paused["note"]) == ("paused", "migrating")
    resumed = json.loads(spark("schedule", "resume", schedule_id, "--json").stdout)
    assert (resumed["status"], resumed["note"]) == ("active", None)
