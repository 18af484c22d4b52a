"""``ScheduleService.apply``: create-or-replace by key over the fake store and a settable clock."""

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from spark_core.errors import InvalidScheduleError
from spark_core.models import ScheduleStatus, Workflow
from spark_core.services.schedules import ApplyOutcome, ScheduleFields
from tests.unit.conftest import World

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _fields(workflow: Workflow, **options: object) -> ScheduleFields:
    return msgspec.convert({"workflow_id": workflow.id, "schedule_type": "interval",
                            "schedule_expr": "1h", **options}, ScheduleFields)


async def test_applying_the_same_fields_again_writes_nothing(world: World, echo: Workflow) -> None:
    """The second apply finds the schedule unchanged: same id, same version, same clock."""
    world.clock.set(T0)
    created = await world.spark.schedules.apply("hourly", _fields(echo))
    assert created.outcome is ApplyOutcome.CREATED
    assert created.schedule.key == "hourly"
    assert created.schedule.next_run_at == T0 + timedelta(hours=1)
    world.clock.set(T0 + timedelta(minutes=20))
    again = await world.spark.schedules.apply("hourly", _fields(echo, schedule_expr=" 1h "))
    assert again.outcome is ApplyOutcome.UNCHANGED
    assert again.schedule == created.schedule


async def test_applying_changed_fields_replaces_in_place_and_restarts_the_clock(
    world: World, echo: Workflow
) -> None:
    """New fields replace the keyed schedule under its id, timed from the apply."""
    world.clock.set(T0)
    created = await world.spark.schedules.apply("hourly", _fields(echo))
    world.clock.set(T0 + timedelta(minutes=20))
    replaced = await world.spark.schedules.apply("hourly", _fields(echo, schedule_expr="2h"))
    assert replaced.outcome is ApplyOutcome.REPLACED
    assert replaced.schedule.id == created.schedule.id
    assert replaced.schedule.next_run_at == T0 + timedelta(hours=2, minutes=20)
    assert (await world.spark.schedules.list()).total == 1


async def test_an_unchanged_apply_keeps_a_paused_schedule_paused(
    world: World, echo: Workflow
) -> None:
    """Status is the operator's, not the declaration's: re-applying does not resume."""
    world.clock.set(T0)
    created = await world.spark.schedules.apply("hourly", _fields(echo))
    await world.spark.schedules.disable(created.schedule.id)
    again = await world.spark.schedules.apply("hourly", _fields(echo))
    assert again.outcome is ApplyOutcome.UNCHANGED
    assert again.schedule.status is ScheduleStatus.PAUSED


@pytest.mark.parametrize("key", ["", "-dash-first", "has space", "x" * 201])
async def test_a_malformed_key_is_refused(world: World, echo: Workflow, key: str) -> None:
    """Keys are 1-200 URL-safe characters starting with a letter or digit."""
    with pytest.raises(InvalidScheduleError):
        await world.spark.schedules.apply(key, _fields(echo))
