"""`spark schedule …`: schedules are created, changed, paused, resumed, fired and removed."""

import json
from datetime import datetime, timedelta

from tests.cli.conftest import Spark
from tests.servers.langflow import FakeLangflow


def _add(spark: Spark, workflow: str, *args: str) -> str:
    result = spark("schedule", "add", workflow, *args)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_add_list_and_show_a_cron_schedule(spark: Spark, echo_workflow: str) -> None:
    """A cron schedule in a timezone is stored with its next run, listed and shown."""
    schedule_id = _add(spark, echo_workflow, "--type", "cron", "--expr", "0 9 * * 1-5",
                       "--timezone", "Europe/Paris", "--input", "daily")
    shown = json.loads(spark("schedule", "show", schedule_id, "--json").stdout)
    assert shown["schedule_type"] == "cron"
    assert shown["timezone"] == "Europe/Paris"
    assert shown["input_value"] == "daily"
    assert shown["status"] == "active"
    assert shown["next_run_at"] is not None
    table = spark("schedule", "list")
    assert schedule_id in table.stdout
    assert "0 9 * * 1-5" in table.stdout
    page = json.loads(spark("schedule", "list", "--workflow", echo_workflow, "--json").stdout)
    assert [item["id"] for item in page["items"]] == [schedule_id]


def test_next_shows_upcoming_fire_times(spark: Spark, echo_workflow: str) -> None:
    """`next` lists the next fire times of an interval schedule, one interval apart."""
    schedule_id = _add(spark, echo_workflow, "--type", "interval", "--expr", "1h30m")
    times = json.loads(spark("schedule", "next", schedule_id, "--count", "3", "--json").stdout)
    assert times["count"] == 3
    moments = [datetime.fromisoformat(value) for value in times["next_runs"]]
    assert moments[1] - moments[0] == timedelta(hours=1, minutes=30)
    assert len(spark("schedule", "next", schedule_id).stdout.splitlines()) == 5


def test_an_invalid_expression_is_an_invalid_value(spark: Spark, echo_workflow: str) -> None:
    """An expression the scheduler cannot execute exits 2 with the reason."""
    result = spark("schedule", "add", echo_workflow, "--type", "cron", "--expr", "61 * * * *")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ")
    bad_zone = spark("schedule", "add", echo_workflow, "--type", "interval", "--expr", "5m",
                     "--timezone", "Mars/Olympus")
    assert bad_zone.exit_code == 2


def test_update_pause_and_resume(spark: Spark, echo_workflow: str) -> None:
    """`update` changes the expression; `pause` clears upcoming runs and `resume` restores them."""
    schedule_id = _add(spark, echo_workflow, "--type", "interval", "--expr", "5m")
    updated = spark("schedule", "update", schedule_id, "--expr", "10m", "--overlap", "allow",
                    "--json")
    assert updated.exit_code == 0, updated.output
    assert json.loads(updated.stdout)["schedule_expr"] == "10m"
    assert json.loads(updated.stdout)["overlap_policy"] == "allow"

    assert "paused" in spark("schedule", "pause", schedule_id).stdout
    assert json.loads(spark("schedule", "next", schedule_id, "--json").stdout)["next_runs"] == []
    assert spark("schedule", "list", "--status", "paused", "--json").stdout.count(schedule_id)
    resumed = json.loads(spark("schedule", "resume", schedule_id, "--json").stdout)
    assert resumed["status"] == "active"
    assert resumed["next_run_at"] is not None


def test_run_fires_now_with_the_schedule_input(
    spark: Spark, langflow: FakeLangflow, echo_workflow: str
) -> None:
    """`schedule run` runs the workflow now with the schedule's input and prints the answer."""
    schedule_id = _add(spark, echo_workflow, "--type", "cron", "--expr", "@daily",
                       "--input", "scheduled hello")
    result = spark("schedule", "run", schedule_id)
    assert result.exit_code == 0, result.output
    assert result.stdout == "scheduled hello\n"
    tasks = json.loads(spark("task", "list", "--schedule", schedule_id, "--json").stdout)
    assert tasks["items"][0]["schedule_id"] == schedule_id
    queued = spark("schedule", "run", schedule_id, "--no-wait")
    assert queued.exit_code == 0


def test_remove_keeps_the_tasks(spark: Spark, echo_workflow: str) -> None:
    """`remove` deletes the schedule; unknown schedule ids then exit 1."""
    schedule_id = _add(spark, echo_workflow, "--type", "one-time", "--expr", "2999-01-01T00:00")
    assert spark("schedule", "remove", schedule_id).exit_code == 0
    missing = spark("schedule", "show", schedule_id)
    assert missing.exit_code == 1
    assert schedule_id in missing.stderr
