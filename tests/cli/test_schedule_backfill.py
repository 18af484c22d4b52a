"""`spark schedule backfill`: runs for a past range, previewed with --dry-run."""

import json

from tests.cli.conftest import Spark


def test_backfill_previews_then_creates_and_skips_what_already_ran(
    spark: Spark, echo_workflow: str
) -> None:
    """--dry-run lists the times and creates nothing; the real run creates them; a second
    run skips them all; the ledger shows `backfilled`."""
    result = spark("schedule", "add", echo_workflow, "--type", "cron", "--expr", "0 * * * *")
    assert result.exit_code == 0, result.output
    schedule_id = result.stdout.strip()
    window = ["--start", "2026-01-01T00:00", "--end", "2026-01-01T02:00"]
    preview = spark("schedule", "backfill", schedule_id, *window, "--dry-run", "--json")
    assert preview.exit_code == 0, preview.output
    planned = json.loads(preview.stdout)
    assert [run["nominal_time"][:16] for run in planned["runs"]] == [
        "2026-01-01T00:00", "2026-01-01T01:00", "2026-01-01T02:00"]
    assert all(run["task_id"] is None for run in planned["runs"])
    done = spark("schedule", "backfill", schedule_id, *window)
    assert done.exit_code == 0, done.output
    assert "created 3 run(s)" in done.stdout
    again = spark("schedule", "backfill", schedule_id, *window)
    assert "created 0 run(s)" in again.stdout
    assert "3 skipped" in again.stdout
    ledger = json.loads(spark("schedule", "fires", schedule_id, "--outcome", "backfilled",
                              "--json").stdout)
    assert ledger["total"] == 3


def test_a_backfill_range_in_the_future_is_refused(spark: Spark, echo_workflow: str) -> None:
    """An end after now exits non-zero naming the problem."""
    schedule_id = spark("schedule", "add", echo_workflow, "--type", "interval",
                        "--expr", "1h").stdout.strip()
    refused = spark("schedule", "backfill", schedule_id, "--start", "2099-01-01T00:00",
                    "--end", "2099-01-02T00:00")
    assert refused.exit_code != 0
    assert "past" in refused.output
