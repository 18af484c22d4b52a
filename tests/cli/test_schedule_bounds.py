"""`spark schedule add/update/apply --start-at/--end-at/--max-runs`: bounded schedules."""

import json

from tests.cli.conftest import Spark


def test_bounds_are_set_from_the_command_line(spark: Spark, echo_workflow: str) -> None:
    """--start-at, --end-at and --max-runs reach the schedule; next honours max_runs."""
    result = spark("schedule", "add", echo_workflow, "--type", "interval", "--expr", "1h",
                   "--start-at", "2030-01-01T00:00:00", "--end-at", "2030-02-01T00:00:00Z",
                   "--max-runs", "2")
    assert result.exit_code == 0, result.output
    schedule_id = result.stdout.strip()
    shown = json.loads(spark("schedule", "show", schedule_id, "--json").stdout)
    assert (shown["max_runs"], shown["run_count"]) == (2, 0)
    assert shown["next_run_at"].startswith("2030-01-01T01:00:00")
    assert shown["end_at"].startswith("2030-02-01T00:00:00")
    upcoming = spark("schedule", "next", schedule_id, "--count", "5", "--json")
    assert len(json.loads(upcoming.stdout)["next_runs"]) == 2
