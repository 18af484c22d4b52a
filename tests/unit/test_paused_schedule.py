"""A paused schedule's ``next_run_at``: when it would fire if resumed now, never a stale time."""

from datetime import UTC, datetime

import msgspec

from spark_core.models import Workflow
from spark_core.services.schedules import ScheduleFields
from tests.unit.conftest import World


def _at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, 5, hour, minute, tzinfo=UTC)


async def test_a_paused_schedule_shows_when_it_would_fire_on_resume(
    world: World, echo: Workflow
) -> None:
    """Long after pausing, get, list and pause answer the time a resume now would give, not
    the stale time the schedule had when it was paused; the resume agrees."""
    world.clock.set(_at(9))
    fields = msgspec.convert({"workflow_id": echo.id, "schedule_type": "interval",
                              "schedule_expr": "5m"}, ScheduleFields)
    schedule = await world.spark.schedules.create(fields)
    world.clock.set(_at(9, 6))
    paused = await world.spark.schedules.disable(schedule.id)
    assert paused.next_run_at == _at(9, 10)
    world.clock.set(_at(9, 22))
    assert (await world.spark.schedules.get(schedule.id)).next_run_at == _at(9, 25)
    [listed] = (await world.spark.schedules.list()).items
    assert listed.next_run_at == _at(9, 25)
    assert (await world.spark.schedules.enable(schedule.id)).next_run_at == _at(9, 25)

