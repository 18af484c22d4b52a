"""Schedule expressions: parsing, rejection with reasons, and fire times across DST."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_core.errors import InvalidScheduleError
from spark_core.models import ScheduleType
from spark_core.schedule_spec import (
    IntervalSpec,
    ScheduleSpec,
    parse_interval,
    parse_schedule,
    preview,
    validate_timezone,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def utc(*parts: int) -> datetime:
    """A UTC instant from year, month, day, hour, minute, second."""
    return datetime(*parts, tzinfo=UTC)


def cron(expr: str, timezone: str = "UTC") -> ScheduleSpec:
    """A cron spec parsed at NOW."""
    return parse_schedule("cron", expr, timezone=timezone, start_at=NOW, now=NOW)


def rejection(schedule_type: str, expr: str, timezone: str = "UTC") -> InvalidScheduleError:
    """The error parsing an expression raises."""
    with pytest.raises(InvalidScheduleError) as caught:
        parse_schedule(schedule_type, expr, timezone=timezone, start_at=NOW, now=NOW)
    return caught.value


# --- cron -----------------------------------------------------------------------------------


def test_five_field_cron_fires_at_matching_minutes_in_utc_by_default() -> None:
    """A plain five-field expression is read in UTC when no timezone is given."""
    spec = cron("15 9 * * MON-FRI")
    assert preview(spec, after=NOW, count=3) == [
        utc(2026, 1, 2, 9, 15),
        utc(2026, 1, 5, 9, 15),
        utc(2026, 1, 6, 9, 15),
    ]


def test_cron_in_a_timezone_fires_at_local_wall_time() -> None:
    """`0 9 * * *` in Europe/Berlin fires at 09:00 local, 08:00 UTC in winter."""
    assert cron("0 9 * * *", "Europe/Berlin").next_after(NOW) == utc(2026, 1, 2, 8)


def test_six_field_cron_reads_the_leading_field_as_seconds() -> None:
    """`*/20 30 * * * *` fires at seconds 0, 20 and 40 of minute 30 of every hour."""
    spec = cron("*/20 30 * * * *")
    assert preview(spec, after=NOW, count=4) == [
        utc(2026, 1, 1, 12, 30, 0),
        utc(2026, 1, 1, 12, 30, 20),
        utc(2026, 1, 1, 12, 30, 40),
        utc(2026, 1, 1, 13, 30, 0),
    ]


@pytest.mark.parametrize(
    ("nickname", "expected"),
    [
        ("@hourly", utc(2026, 1, 1, 13)),
        ("@daily", utc(2026, 1, 2)),
        ("@midnight", utc(2026, 1, 2)),
        ("@weekly", utc(2026, 1, 4)),
        ("@monthly", utc(2026, 2, 1)),
        ("@yearly", utc(2027, 1, 1)),
        ("@annually", utc(2027, 1, 1)),
    ],
)
def test_cron_nicknames_fire_like_their_expansions(nickname: str, expected: datetime) -> None:
    """Each supported nickname fires at the start of its period."""
    assert cron(nickname).next_after(NOW) == expected


def test_cron_first_fire_includes_a_match_at_now() -> None:
    """A cron schedule created exactly on a matching second fires at that second."""
    spec = cron("0 12 * * *")
    assert spec.first_fire(NOW) == NOW
    assert spec.next_after(NOW) == utc(2026, 1, 2, 12)


def test_cron_next_after_is_strictly_after_its_argument() -> None:
    """next_after never returns the instant it was given, even mid-second."""
    spec = cron("* * * * * *")
    assert spec.next_after(NOW) == NOW + timedelta(seconds=1)
    assert spec.next_after(NOW + timedelta(microseconds=1)) == NOW + timedelta(seconds=1)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("61 * * * *", "Invalid cron expression '61 * * * *': minute must be 0-59"),
        ("0 24 * * *", "Invalid cron expression '0 24 * * *': hour must be 0-23"),
        ("0 0 0 * *", "Invalid cron expression '0 0 0 * *': day of month must be 1-31 or L"),
        ("0 0 * 13 *", "Invalid cron expression '0 0 * 13 *': month must be 1-12 or JAN-DEC"),
        ("0 0 * * 8", "Invalid cron expression '0 0 * * 8': day of week must be 0-7 or SUN-SAT"),
        ("60 0 * * * *", "Invalid cron expression '60 0 * * * *': second must be 0-59"),
        ("*/0 * * * *", "Invalid cron expression '*/0 * * * *': minute must be 0-59"),
        (
            "0 0 30 2 *",
            "Invalid cron expression '0 0 30 2 *': it never fires (no date matches all its fields)",
        ),
        (
            "* * * *",
            "Invalid cron expression '* * * *': expected 5 fields (minute hour day-of-month "
            "month day-of-week) or 6 with leading seconds, got 4",
        ),
        (
            "0 0 1 1 * 2027",
            "Invalid cron expression '0 0 1 1 * 2027': day of week must be 0-7 or SUN-SAT",
        ),
        ("@reboot", "@reboot is not supported: Spark schedules fire at times, not on start"),
        ("H * * * *", "Invalid cron expression 'H * * * *': minute may not be random (H or R)"),
        ("0 R * * *", "Invalid cron expression '0 R * * *': hour may not be random (H or R)"),
    ],
)
def test_invalid_cron_expressions_are_rejected_with_the_reason(expr: str, message: str) -> None:
    """Anything croniter cannot execute, or that never fires, is refused and says why."""
    error = rejection("cron", expr)
    assert error.message == message
    assert error.errors == [("schedule_expr", message)]


def test_unknown_cron_nickname_lists_the_supported_ones() -> None:
    """An unknown @nickname names the nicknames that exist."""
    assert rejection("cron", "@fortnightly").message.startswith(
        "Unknown cron nickname '@fortnightly'; use one of @yearly"
    )


def test_leap_day_cron_is_accepted_because_it_fires_every_four_years() -> None:
    """`0 0 29 2 *` is rare but real, so it is not mistaken for a never-firing expression."""
    assert preview(cron("0 0 29 2 *"), after=NOW, count=2) == [utc(2028, 2, 29), utc(2032, 2, 29)]


def test_month_and_weekday_names_are_accepted() -> None:
    """Names such as MAR and THU are not mistaken for croniter's random H/R fields."""
    assert cron("0 0 1 MAR THU").next_after(NOW) == utc(2026, 3, 1)


# --- timezones ------------------------------------------------------------------------------


def test_unknown_timezone_is_rejected_on_the_timezone_field() -> None:
    """A made-up zone name is refused and the error names the `timezone` field."""
    error = rejection("cron", "0 9 * * *", timezone="Mars/Base")
    assert error.message == "Unknown timezone 'Mars/Base'"
    assert error.errors == [("timezone", "Unknown timezone 'Mars/Base'")]


@pytest.mark.parametrize("name", ["", "America", "../etc/passwd", "/etc/localtime", "localtime"])
def test_malformed_or_host_dependent_timezones_are_rejected(name: str) -> None:
    """Empty names, directories, paths and the host's own `localtime` are not IANA zones."""
    with pytest.raises(InvalidScheduleError, match="Unknown timezone"):
        validate_timezone(name)


def test_a_valid_timezone_returns_its_zone() -> None:
    """validate_timezone hands back the ZoneInfo for a real IANA name."""
    assert validate_timezone("America/New_York").key == "America/New_York"


# --- DST ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timezone", "after", "expected"),
    [
        # Europe/Berlin springs forward at 2026-03-29 01:00 UTC (02:00 CET -> 03:00 CEST).
        (
            "Europe/Berlin",
            utc(2026, 3, 27),
            [
                utc(2026, 3, 27, 1, 30),
                utc(2026, 3, 28, 1, 30),
                utc(2026, 3, 29, 1),
                utc(2026, 3, 30, 0, 30),
            ],
        ),
        # America/New_York springs forward at 2026-03-08 07:00 UTC (02:00 EST -> 03:00 EDT).
        (
            "America/New_York",
            utc(2026, 3, 7),
            [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7), utc(2026, 3, 9, 6, 30)],
        ),
    ],
)
def test_daily_time_in_the_spring_gap_fires_once_at_the_end_of_the_gap(
    timezone: str, after: datetime, expected: list[datetime]
) -> None:
    """`30 2 * * *` fires at 03:00 local on the day 02:30 does not exist."""
    assert preview(cron("30 2 * * *", timezone), after=after, count=len(expected)) == expected


@pytest.mark.parametrize(
    ("timezone", "expr", "after", "expected"),
    [
        # Berlin falls back at 2026-10-25 01:00 UTC: 02:00-03:00 local happens twice.
        (
            "Europe/Berlin",
            "30 2 * * *",
            utc(2026, 10, 24),
            [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
        ),
        # New York falls back at 2026-11-01 06:00 UTC: 01:00-02:00 local happens twice.
        (
            "America/New_York",
            "30 1 * * *",
            utc(2026, 10, 31),
            [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)],
        ),
    ],
)
def test_daily_time_in_the_repeated_autumn_hour_fires_once_at_its_first_occurrence(
    timezone: str, expr: str, after: datetime, expected: list[datetime]
) -> None:
    """A fixed-time cron runs once on the day its local time occurs twice."""
    assert preview(cron(expr, timezone), after=after, count=len(expected)) == expected


@pytest.mark.parametrize(
    ("timezone", "after"),
    [
        ("Europe/Berlin", utc(2026, 3, 28, 22)),
        ("Europe/Berlin", utc(2026, 10, 24, 22)),
        ("America/New_York", utc(2026, 3, 8, 4)),
        ("America/New_York", utc(2026, 11, 1, 3)),
    ],
)
def test_hourly_cron_keeps_a_steady_utc_cadence_across_dst_changes(
    timezone: str, after: datetime
) -> None:
    """`0 * * * *` fires every UTC hour through both changes: no gap, no duplicate."""
    expected = [after + timedelta(hours=hours) for hours in range(1, 7)]
    assert preview(cron("0 * * * *", timezone), after=after, count=6) == expected


def test_sub_hourly_cron_collapses_the_spring_gap_into_one_instant() -> None:
    """`*/20 * * * *` matches inside the Berlin gap all map to 01:00 UTC, fired once."""
    times = preview(cron("*/20 * * * *", "Europe/Berlin"), after=utc(2026, 3, 29, 0, 30), count=4)
    assert times == [
        utc(2026, 3, 29, 0, 40),
        utc(2026, 3, 29, 1, 0),
        utc(2026, 3, 29, 1, 20),
        utc(2026, 3, 29, 1, 40),
    ]


def test_sub_hourly_cron_fires_through_both_occurrences_of_the_repeated_hour() -> None:
    """`*/30 * * * *` in Berlin fires every 30 UTC minutes across the autumn change."""
    after = utc(2026, 10, 24, 23, 30)
    expected = [after + timedelta(minutes=30 * step) for step in range(1, 8)]
    assert preview(cron("*/30 * * * *", "Europe/Berlin"), after=after, count=7) == expected


def test_next_after_inside_the_repeated_hour_finds_the_second_occurrence() -> None:
    """Asked from the first 02:30 CEST, the hourly schedule's next fire is 02:00 CET."""
    spec = cron("0 * * * *", "Europe/Berlin")
    assert spec.next_after(utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 25, 1)
    assert spec.next_after(utc(2026, 10, 25, 1)) == utc(2026, 10, 25, 2)


def test_hour_restricted_cron_runs_the_repeated_hour_only_once() -> None:
    """`*/30 2 * * *` runs 02:00 and 02:30 at their first occurrence only."""
    spec = cron("*/30 2 * * *", "Europe/Berlin")
    assert preview(spec, after=utc(2026, 10, 24, 12), count=3) == [
        utc(2026, 10, 25, 0),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 26, 1),
    ]


# --- interval -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
    ],
)
def test_intervals_parse_single_and_compound_durations(text: str, expected: timedelta) -> None:
    """Lower-case units, each at most once, largest first."""
    assert parse_interval(text) == expected


@pytest.mark.parametrize("text", ["0s", "-5m", "5M", "5", "1.5h", "", "m", "30m1h", "5m5m", "1 h"])
def test_invalid_intervals_are_rejected_with_the_expected_format(text: str) -> None:
    """Zero, negative, upper-case, unit-less, fractional, empty and disordered are refused."""
    error = rejection("interval", text)
    message = f"Interval must be a positive duration like 30s, 5m, 1h30m, 1d or 1w, got {text!r}"
    assert error.message == message
    assert error.errors == [("schedule_expr", message)]


def test_interval_fires_at_multiples_of_the_interval_after_start() -> None:
    """Fire times are start_at + k * interval for k >= 1."""
    start = utc(2026, 1, 1, 12)
    spec = parse_schedule(ScheduleType.INTERVAL, "1h30m", start_at=start, now=start)
    assert spec.first_fire(start) == utc(2026, 1, 1, 13, 30)
    assert preview(spec, after=start, count=3) == [
        utc(2026, 1, 1, 13, 30),
        utc(2026, 1, 1, 15),
        utc(2026, 1, 1, 16, 30),
    ]


def test_interval_restart_keeps_the_countdown_anchored_at_start() -> None:
    """A process restarting 20 minutes in still fires at start + 30 min, not restart + 30 min."""
    start = utc(2026, 1, 1, 12)
    restart = start + timedelta(minutes=20)
    spec = parse_schedule("interval", "30m", start_at=start, now=restart)
    assert spec.first_fire(restart) == utc(2026, 1, 1, 12, 30)
    assert spec.first_fire(utc(2026, 1, 1, 13)) == utc(2026, 1, 1, 13)
    assert spec.next_after(utc(2026, 1, 1, 13)) == utc(2026, 1, 1, 13, 30)


def test_interval_next_after_before_start_is_the_first_tick() -> None:
    """Asked before the anchor, an interval's next fire is start + interval."""
    start = utc(2026, 1, 1, 12)
    spec = parse_schedule("interval", "5m", start_at=start, now=start)
    assert spec.next_after(start - timedelta(days=3)) == utc(2026, 1, 1, 12, 5)


def test_interval_catch_up_lists_missed_times_up_to_the_limit() -> None:
    """fire_times after downtime returns after < t <= until, earliest first, capped."""
    start = utc(2026, 1, 1)
    spec = parse_schedule("interval", "1h", start_at=start, now=start)
    missed = spec.fire_times(utc(2026, 1, 1, 2), utc(2026, 1, 1, 5), limit=10)
    assert missed == [utc(2026, 1, 1, 3), utc(2026, 1, 1, 4), utc(2026, 1, 1, 5)]
    assert spec.fire_times(start, utc(2026, 2, 1), limit=100) == [
        start + timedelta(hours=hour) for hour in range(1, 101)
    ]


def test_cron_catch_up_lists_missed_times_up_to_the_limit() -> None:
    """fire_times for cron honours both the end bound and the limit."""
    spec = cron("0 */6 * * *")
    assert spec.fire_times(NOW, utc(2026, 1, 2, 12), limit=10) == [
        utc(2026, 1, 1, 18),
        utc(2026, 1, 2, 0),
        utc(2026, 1, 2, 6),
        utc(2026, 1, 2, 12),
    ]
    assert spec.fire_times(NOW, utc(2026, 1, 2, 12), limit=2) == [
        utc(2026, 1, 1, 18),
        utc(2026, 1, 2, 0),
    ]


# --- one-time -------------------------------------------------------------------------------


def test_naive_one_time_date_is_read_in_the_schedule_timezone() -> None:
    """`2026-12-01T09:00` in Europe/Berlin is 08:00 UTC."""
    spec = parse_schedule(
        "one-time", "2026-12-01T09:00", timezone="Europe/Berlin", start_at=NOW, now=NOW
    )
    assert spec.first_fire(NOW) == utc(2026, 12, 1, 8)


def test_naive_one_time_date_in_the_spring_gap_fires_when_the_gap_ends() -> None:
    """`2026-03-29T02:30` in Europe/Berlin does not exist, so it fires at 03:00 CEST."""
    spec = parse_schedule(
        "one-time", "2026-03-29T02:30", timezone="Europe/Berlin", start_at=NOW, now=NOW
    )
    assert spec.first_fire(NOW) == utc(2026, 3, 29, 1)


def test_interval_too_long_for_the_calendar_is_rejected() -> None:
    """A duration beyond what a datetime can hold is refused like any bad interval."""
    assert rejection("interval", "999999999999w").message.endswith("(too long)")


def test_interval_ends_quietly_at_the_end_of_the_calendar() -> None:
    """Near year 9999 an interval has no next fire time rather than crashing; such an
    expression is refused when a schedule is created."""
    start = utc(9999, 12, 31)
    spec = IntervalSpec(parse_interval("1w"), start)
    assert spec.next_after(start) is None
    assert preview(spec, after=start, count=3) == []
    with pytest.raises(InvalidScheduleError, match="never fires"):
        parse_schedule("interval", "1w", start_at=start, now=start)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("2026-12-01T09:00:30", utc(2026, 12, 1, 14, 0, 30)),
        ("2026-12-01T09:00Z", utc(2026, 12, 1, 9)),
        ("2026-12-01T09:00+02:00", utc(2026, 12, 1, 7)),
        ("2026-12-01", utc(2026, 12, 1, 5)),
    ],
)
def test_one_time_accepts_seconds_offsets_and_bare_dates(expr: str, expected: datetime) -> None:
    """Explicit offsets win over the timezone; a bare date is local midnight (New York here)."""
    spec = parse_schedule("one-time", expr, timezone="America/New_York", start_at=NOW, now=NOW)
    assert spec.first_fire(NOW) == expected


def test_one_time_now_fires_at_now_then_never_again() -> None:
    """`now` fires at the given now; after it, next_after is None."""
    spec = parse_schedule("one-time", "now", start_at=NOW, now=NOW)
    assert spec.first_fire(NOW) == NOW
    assert spec.next_after(NOW - timedelta(seconds=1)) == NOW
    assert spec.next_after(NOW) is None
    assert preview(spec, after=NOW, count=5) == []


def test_one_time_in_the_past_is_rejected_beyond_a_minute_of_grace() -> None:
    """A date more than 60 s before now is refused; one within the grace is kept."""
    error = rejection("one-time", "2020-01-01T00:00")
    assert error.message == "One-time date '2020-01-01T00:00' is in the past"
    spec = parse_schedule("one-time", "2026-01-01T11:59:30Z", start_at=NOW, now=NOW)
    assert spec.first_fire(NOW) == utc(2026, 1, 1, 11, 59, 30)


def test_one_time_garbage_is_rejected_with_the_accepted_forms() -> None:
    """Text that is neither ISO-8601 nor `now` is refused and the message shows examples."""
    assert rejection("one-time", "tomorrow").message.startswith(
        "One-time date 'tomorrow' is not an ISO-8601 datetime like 2026-12-01T09:00"
    )


# --- general --------------------------------------------------------------------------------


def test_unknown_schedule_type_is_rejected_on_its_field() -> None:
    """A schedule type outside cron, interval and one-time names the valid ones."""
    error = rejection("weekly", "x")
    assert error.errors[0][0] == "schedule_type"
    assert "'cron', 'interval', 'one-time'" in error.message


def test_naive_datetimes_are_a_programming_error() -> None:
    """Passing a naive now or after raises ValueError, not a wrong answer."""
    spec = cron("* * * * *")
    with pytest.raises(ValueError, match="timezone-aware"):
        spec.next_after(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_schedule("cron", "* * * * *", start_at=NOW, now=datetime(2026, 1, 1))


def test_results_are_utc_even_for_inputs_with_other_offsets() -> None:
    """An aware input in another offset gives the same UTC answer."""
    spec = cron("0 9 * * *", "Europe/Berlin")
    berlin = validate_timezone("Europe/Berlin")
    result = spec.next_after(NOW.astimezone(berlin))
    assert result == utc(2026, 1, 2, 8)
    assert result is not None
    assert result.tzinfo is UTC


def test_preview_returns_exactly_count_fire_times() -> None:
    """preview lists the next N fire times strictly after the given instant."""
    times = preview(cron("*/5 * * * *"), after=NOW, count=12)
    assert len(times) == 12
    assert times[0] == utc(2026, 1, 1, 12, 5)
    assert times[-1] == utc(2026, 1, 1, 13)


_CRON_FIELDS = st.tuples(  # minute, hour, day of month, month, day of week
    st.sampled_from(["*", "0", "*/7", "15,45", "0-10/5", "59"]),
    st.sampled_from(["*", "2", "1-3", "*/5", "0,12", "23"]),
    st.sampled_from(["*", "1", "15", "28-31", "L", "*/10"]),
    st.sampled_from(["*", "3", "10,11", "*/2", "JAN-MAR"]),
    st.sampled_from(["*", "0", "1-5", "SAT,SUN", "7"]),
)


@settings(max_examples=60, deadline=None)
@given(
    fields=_CRON_FIELDS,
    with_seconds=st.booleans(),
    timezone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney"]),
    start=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
)
def test_next_after_strictly_increases_over_fifty_steps(
    fields: tuple[str, ...], with_seconds: bool, timezone: str, start: datetime
) -> None:
    """For valid cron expressions, chaining next_after never repeats or goes back in time."""
    expr = " ".join(fields)
    if with_seconds:
        expr = "*/13 " + expr
    spec = cron(expr, timezone)
    seen: list[datetime] = []
    current = start
    for _ in range(50):
        nxt = spec.next_after(current)
        assert nxt is not None
        assert nxt > current
        seen.append(nxt)
        current = nxt
    assert len(set(seen)) == len(seen)


_DST_CHANGES = [  # (zone, the UTC instant its clocks change in 2026)
    ("Europe/Berlin", utc(2026, 3, 29, 1)),
    ("Europe/Berlin", utc(2026, 10, 25, 1)),
    ("America/New_York", utc(2026, 3, 8, 7)),
    ("America/New_York", utc(2026, 11, 1, 6)),
    ("Australia/Sydney", utc(2026, 4, 4, 16)),
    ("Australia/Sydney", utc(2026, 10, 3, 16)),
]


@settings(max_examples=40, deadline=None)
@given(
    expr=st.sampled_from(["0 * * * *", "*/15 * * * *", "@hourly"]),
    change=st.sampled_from(_DST_CHANGES),
    lead=st.timedeltas(min_value=timedelta(hours=1), max_value=timedelta(hours=40)),
)
def test_hour_wildcard_crons_keep_an_exact_utc_step_through_dst_changes(
    expr: str, change: tuple[str, datetime], lead: timedelta
) -> None:
    """Expressions matching every hour fire at a constant UTC step through a DST change."""
    timezone, instant = change
    times = preview(cron(expr, timezone), after=instant - lead, count=200)
    assert times[0] <= instant <= times[-1]
    steps = {later - earlier for earlier, later in itertools.pairwise(times)}
    assert len(steps) == 1


def test_last_fire_times_finds_the_newest_times_without_walking_the_whole_span() -> None:
    """Looking back from `until` gives the newest matches of a long span, earliest first."""
    spec = cron("0 9 * * *", "Europe/Berlin")
    last = spec.last_fire_times(utc(2020, 1, 1), utc(2026, 6, 1, 10), count=3)
    assert last == [utc(2026, 5, 30, 7), utc(2026, 5, 31, 7), utc(2026, 6, 1, 7)]


def test_last_fire_times_stops_at_after() -> None:
    """Nothing at or before `after` is returned, even when fewer than `count` times exist."""
    spec = cron("0 * * * *")
    assert spec.last_fire_times(utc(2026, 1, 1, 8), utc(2026, 1, 1, 10, 30), count=5) == [
        utc(2026, 1, 1, 9), utc(2026, 1, 1, 10)]
