"""`spark schedule fires` and `spark schedule explain`: the fire ledger from the command line."""

import json

from tests.cli.conftest import Spark


def _add(spark: Spark, workflow: str, *args: str) -> str:
    result = spark("schedule", "add", workflow, *args)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_fires_of_a_schedule_not_yet_fired_is_an_empty_page(
    spark: Spark, echo_workflow: str
) -> None:
    """A new schedule has no records: an empty envelope as JSON, a note as text."""
    schedule_id = _add(spark, echo_workflow, "--type", "interval", "--expr", "1h")
    page = json.loads(spark("schedule", "fires", schedule_id, "--json").stdout)
    assert (page["items"], page["total"]) == ([], 0)
    assert spark("schedule", "fires", schedule_id, "--outcome", "missed").exit_code == 0


def test_explain_now_names_the_next_fire_and_a_pause(spark: Spark, echo_workflow: str) -> None:
    """Without --at, explain gives the next fire time; once paused, it says so."""
    schedule_id = _add(spark, echo_workflow, "--type", "interval", "--expr", "1h")
    assert "Next fire:" in spark("schedule", "explain", schedule_id).stdout
    assert spark("schedule", "pause", schedule_id).exit_code == 0
    answer = json.loads(spark("schedule", "explain", schedule_id, "--json").stdout)
    assert "paused" in answer["summary"]
    assert "the schedule is paused" in answer["blockers"]


def test_explain_a_time_before_the_schedule_existed(spark: Spark, echo_workflow: str) -> None:
    """A past time before creation is answered as such; a malformed time is bad usage."""
    schedule_id = _add(spark, echo_workflow, "--type", "interval", "--expr", "1h")
    result = spark("schedule", "explain", schedule_id, "--at", "2020-01-01T09:00")
    assert "did not exist yet" in result.stdout
    assert spark("schedule", "explain", schedule_id, "--at", "yesterday").exit_code == 2
