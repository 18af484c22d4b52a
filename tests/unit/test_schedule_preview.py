"""Previewing an expression that is not stored yet (what the dashboard's form shows as it is
typed), over a settable clock."""

from datetime import UTC, datetime, timedelta

import pytest

from spark_core.errors import InvalidScheduleError
from tests.unit.conftest import World

T0 = datetime(2026, 1, 5, 9, 7, 30, tzinfo=UTC)  # a Monday


def test_a_cron_preview_lists_the_next_fire_times_from_now(world: World) -> None:
    """`*/15` at 09:07:30 fires next at 09:15, then every quarter hour."""
    world.clock.set(T0)
    times = world.spark.schedules.preview("cron", " */15 * * * * ", count=3)
    start = T0.replace(minute=15, second=0)
    assert times == [start, start + timedelta(minutes=15), start + timedelta(minutes=30)]


def test_a_preview_follows_the_timezone(world: World) -> None:
    """09:00 in Berlin is 08:00 UTC in winter."""
    world.clock.set(T0)
    times = world.spark.schedules.preview("cron", "0 9 * * *", timezone="Europe/Berlin",
                                          count=1)
    assert times == [datetime(2026, 1, 6, 8, 0, tzinfo=UTC)]


def test_an_interval_preview_counts_from_now(world: World) -> None:
    """Every 2 s from now."""
    world.clock.set(T0)
    times = world.spark.schedules.preview("interval", "2s", count=2)
    assert times == [T0 + timedelta(seconds=2), T0 + timedelta(seconds=4)]


@pytest.mark.parametrize(("kind", "expr", "says"), [
    ("cron", "0 9 * *", "cron"),
    ("interval", "soon", "Interval must be"),
    ("one-time", "2020-01-01T00:00", "past"),
    ("weekly", "x", "Unknown schedule type"),
])
def test_an_invalid_expression_is_refused_with_the_reason(
    world: World, kind: str, expr: str, says: str
) -> None:
    """The error says what is wrong, as creating the schedule would."""
    world.clock.set(T0)
    with pytest.raises(InvalidScheduleError, match=says):
        world.spark.schedules.preview(kind, expr)
