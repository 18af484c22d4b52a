"""Schedule expressions: parsing, validation and fire-time arithmetic (the only croniter user).

Three kinds of expression become a :class:`ScheduleSpec`:

- ``cron``: five fields (minute hour day-of-month month day-of-week), six with a leading
  *seconds* field, or a nickname (``@hourly``, ``@daily``/``@midnight``, ``@weekly``,
  ``@monthly``, ``@yearly``/``@annually``), read in the schedule's IANA timezone.
- ``interval``: a positive duration (``30s``, ``5m``, ``1h30m``, ``1d12h``, ``1w``) counted
  from the schedule's ``start_at``: fire times are ``start_at + k * interval`` for ``k >= 1``,
  so a restart never resets the countdown.
- ``one-time``: an ISO-8601 datetime (naive means in the schedule's timezone, a bare date
  means local midnight) or ``now``.

All instants going in and out are timezone-aware; results are UTC.

Daylight-saving time (cron only). Expressions are matched against local wall-clock time and
each match is turned into an instant as follows:

- A wall time that does not exist (the spring-forward gap) fires once, at the first valid
  instant after the gap, i.e. the moment of the change: ``30 2 * * *`` in Europe/Berlin on
  2026-03-29 fires at 03:00 CEST (01:00 UTC). Several matches inside one gap collapse into
  that single instant, and a match right at the end of the gap (03:00) does not fire again.
- A wall time that occurs twice (the repeated autumn hour) fires once, at its first
  occurrence: ``30 2 * * *`` in Europe/Berlin on 2026-10-25 fires at 02:30 CEST (00:30 UTC).
- Exception: when the hour field matches every hour (``0 * * * *``, ``*/15 * * * *``,
  ``@hourly``), matches in the repeated hour fire at both occurrences, so the schedule keeps
  its steady UTC cadence: ``0 * * * *`` in Berlin on 2026-10-25 fires at 00:00, 01:00 and
  02:00 UTC (02:00 CEST, 02:00 CET, 03:00 CET). Across the spring gap it fires at 00:00,
  01:00 and 02:00 UTC (01:00 CET, 03:00 CEST, 04:00 CEST).
- No instant is ever returned twice and results strictly increase.

croniter only ever sees naive wall-clock datetimes; the conversions above use ``zoneinfo``.
"""

import heapq
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter

from spark_core.errors import InvalidScheduleError
from spark_core.models import ScheduleType

__all__ = [
    "CronSpec",
    "IntervalSpec",
    "OneTimeSpec",
    "ScheduleSpec",
    "parse_interval",
    "parse_schedule",
    "preview",
    "validate_timezone",
]

_NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELD_RULES = (  # (name, what it accepts), in five-field order
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day of month", "1-31 or L"),
    ("month", "1-12 or JAN-DEC"),
    ("day of week", "0-7 or SUN-SAT"),
)
_SECOND_RULE = ("second", "0-59")
# croniter's R (random) and H (hashed) extensions would make fire times differ between parses.
_RANDOM_PART = re.compile(r"^[HR](?:$|[(/])", re.IGNORECASE)
_INTERVAL = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_INTERVAL_UNITS = ("weeks", "days", "hours", "minutes", "seconds")
_INTERVAL_HELP = "Interval must be a positive duration like 30s, 5m, 1h30m, 1d or 1w"
# Zone keys that name the host's own setting rather than a place; they would vary by machine.
_HOST_ZONES = frozenset({"localtime", "posixrules", "Factory"})
_ONE_TIME_GRACE = timedelta(seconds=60)
_TINY = timedelta(microseconds=1)
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)
_WINDOW_LIMIT = 100_000  # bounds the work of one look-back window in last_fire_times


class ScheduleSpec(ABC):
    """A validated schedule expression that answers when it fires."""

    @abstractmethod
    def first_fire(self, now: datetime) -> datetime | None:
        """The first fire time of a schedule created or resumed at ``now``."""

    @abstractmethod
    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after``; None when there is none."""

    def fire_times(self, after: datetime, until: datetime, *, limit: int) -> list[datetime]:
        """Fire times ``t`` with ``after < t <= until``, earliest first, at most ``limit``."""
        end = _utc(until, "until")
        times: list[datetime] = []
        for instant in self._iter_after(after):
            if instant > end or len(times) >= limit:
                break
            times.append(instant)
        return times

    def last_fire_times(self, after: datetime, until: datetime, *, count: int) -> list[datetime]:
        """The last ``count`` fire times ``t`` with ``after < t <= until``, earliest first.

        Looks back from ``until`` through doubling windows, so the cost follows ``count``, not
        the length of the outage: no expression fires more than once a second, so a window of
        ``count`` seconds holds at most ``count`` times.
        """
        start_limit = _utc(after, "after")
        end = _utc(until, "until")
        window = timedelta(seconds=max(1, count))
        while True:
            start = max(start_limit, end - window)
            times = self.fire_times(start, end, limit=_WINDOW_LIMIT)
            if len(times) >= count or start == start_limit:
                return times[-count:] if count > 0 else []
            window *= 2

    @abstractmethod
    def _iter_after(self, after: datetime) -> Iterator[datetime]:
        """Every fire time strictly after ``after``, earliest first."""


class CronSpec(ScheduleSpec):
    """A cron expression evaluated in an IANA timezone (see the module docstring for DST)."""

    def __init__(self, fields: str, zone: ZoneInfo) -> None:
        self.fields = fields  # croniter's order: seconds, when present, come last
        self.zone = zone
        # croniter reports a field that matches every value as ["*"].
        self._every_hour: bool = croniter(fields).expanded[1] == ["*"]

    def first_fire(self, now: datetime) -> datetime | None:
        """The first fire time at or after ``now``."""
        return self.next_after(_utc(now, "now") - _TINY)

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after``."""
        return next(self._iter_after(after), None)

    def _iter_after(self, after: datetime) -> Iterator[datetime]:
        last = _utc(after, "after")
        matches = croniter(self.fields, self._wall_start(last))
        # Second occurrences in a repeated hour fire later than the first occurrences of the
        # matches after them, so they wait here until the walk passes their instant.
        pending: list[datetime] = []
        while True:
            try:
                wall: datetime = matches.get_next(datetime)
            except (CroniterError, OverflowError, ValueError):
                break  # past the end of the calendar: no more fire times
            first = _first_instant(wall, self.zone)
            while pending and pending[0] <= first:
                second = heapq.heappop(pending)
                if second > last:
                    last = second
                    yield second
            if first > last:
                last = first
                yield first
            if self._every_hour and (repeat := _second_occurrence(wall, self.zone)):
                heapq.heappush(pending, repeat)
        yield from (second for second in sorted(pending) if second > last)

    def _wall_start(self, after: datetime) -> datetime:
        """A local wall time from which every match firing after ``after`` is still ahead."""
        # Reading `after` with the smaller of today's and tomorrow's UTC offsets starts the walk
        # early enough to see wall times whose second occurrence (autumn) is after `after`.
        offset = after.astimezone(self.zone).utcoffset() or timedelta()
        try:
            tomorrow = (after + timedelta(days=1)).astimezone(self.zone).utcoffset()
        except OverflowError:
            tomorrow = None
        if tomorrow is not None:
            offset = min(offset, tomorrow)
        return after.replace(tzinfo=None) + offset


class IntervalSpec(ScheduleSpec):
    """A fixed duration repeated from an anchor: fire times are ``start_at + k * every``, k >= 1."""

    def __init__(self, every: timedelta, start_at: datetime) -> None:
        self.every = every
        self.start_at = _utc(start_at, "start_at")

    def first_fire(self, now: datetime) -> datetime | None:
        """The first fire time at or after ``now`` (and always after ``start_at``)."""
        return self.next_after(_utc(now, "now") - _TINY)

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after``, computed without iterating."""
        elapsed = _utc(after, "after") - self.start_at
        steps = max(1, elapsed // self.every + 1)
        try:
            return self.start_at + steps * self.every
        except OverflowError:  # beyond year 9999: the calendar has no more fire times
            return None

    def _iter_after(self, after: datetime) -> Iterator[datetime]:
        instant = self.next_after(after)
        while instant is not None:
            yield instant
            try:
                instant += self.every
            except OverflowError:
                return


class OneTimeSpec(ScheduleSpec):
    """A single instant."""

    def __init__(self, at: datetime) -> None:
        self.at = _utc(at, "at")

    def first_fire(self, now: datetime) -> datetime | None:
        """The instant itself, even when ``now`` is past it (it has not fired yet)."""
        _utc(now, "now")
        return self.at

    def next_after(self, after: datetime) -> datetime | None:
        """The instant if it is after ``after``, else None."""
        return self.at if self.at > _utc(after, "after") else None

    def _iter_after(self, after: datetime) -> Iterator[datetime]:
        instant = self.next_after(after)
        if instant is not None:
            yield instant


class BoundedSpec(ScheduleSpec):
    """Another spec's fire times from ``not_before`` to ``not_after`` (both inclusive, either
    open)."""

    def __init__(self, inner: ScheduleSpec, *, not_before: datetime | None = None,
                 not_after: datetime | None = None) -> None:
        self.inner = inner
        self.not_before = None if not_before is None else _utc(not_before, "not_before")
        self.not_after = None if not_after is None else _utc(not_after, "not_after")

    def first_fire(self, now: datetime) -> datetime | None:
        """The inner first fire time, moved to the first one at or after ``not_before``."""
        first = self.inner.first_fire(now)
        if first is not None and self.not_before is not None and first < self.not_before:
            first = self.inner.next_after(self.not_before - _TINY)
        return self._within(first)

    def next_after(self, after: datetime) -> datetime | None:
        """The first inner fire time after ``after`` within the bounds."""
        return self._within(self.inner.next_after(self._from(after)))

    def _iter_after(self, after: datetime) -> Iterator[datetime]:
        for instant in self.inner._iter_after(self._from(after)):
            if self.not_after is not None and instant > self.not_after:
                return
            yield instant

    def _from(self, after: datetime) -> datetime:
        after = _utc(after, "after")
        if self.not_before is not None and after < self.not_before:
            return self.not_before - _TINY
        return after

    def _within(self, instant: datetime | None) -> datetime | None:
        if instant is None or (self.not_after is not None and instant > self.not_after):
            return None
        return instant


def parse_schedule(
    schedule_type: ScheduleType | str,
    expr: str,
    *,
    timezone: str = "UTC",
    start_at: datetime,
    now: datetime,
) -> ScheduleSpec:
    """Validate a schedule expression and return its spec, or raise InvalidScheduleError.

    ``start_at`` anchors intervals; ``now`` resolves one-time ``now`` and rejects one-time
    dates more than a minute in the past.
    """
    now = _utc(now, "now")
    start_at = _utc(start_at, "start_at")
    zone = validate_timezone(timezone)
    try:
        kind = ScheduleType(schedule_type)
    except ValueError:
        kinds = ", ".join(repr(str(k)) for k in ScheduleType)
        message = f"Unknown schedule type {schedule_type!r}; use one of {kinds}"
        raise InvalidScheduleError(message, errors=[("schedule_type", message)]) from None
    spec: ScheduleSpec
    if kind is ScheduleType.CRON:
        spec = CronSpec(_cron_fields(expr), zone)
    elif kind is ScheduleType.INTERVAL:
        spec = IntervalSpec(parse_interval(expr), start_at)
    else:
        spec = OneTimeSpec(_one_time_instant(expr, zone, now))
    # Every accepted expression fires at least once: an active schedule always has a time.
    if spec.first_fire(now) is None:
        raise _invalid(f"{kind} schedule {expr!r} never fires (its first time would be after "
                       "the year 9999)")
    return spec


def validate_timezone(name: str) -> ZoneInfo:
    """The zone for an IANA timezone name such as ``Europe/Berlin``; raise if unknown."""
    message = f"Unknown timezone {name!r}"
    if name in _HOST_ZONES:
        raise InvalidScheduleError(message, errors=[("timezone", message)])
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # not found, malformed key, or a directory
        raise InvalidScheduleError(message, errors=[("timezone", message)]) from None


def parse_interval(text: str) -> timedelta:
    """The duration of an interval such as ``30s``, ``1h30m`` or ``1w``; raise if invalid."""
    match = _INTERVAL.fullmatch(text.strip())
    if match is None or not any(match.groups()):
        raise _invalid(f"{_INTERVAL_HELP}, got {text!r}")
    amounts = {
        unit: int(value)
        for unit, value in zip(_INTERVAL_UNITS, match.groups(), strict=True)
        if value
    }
    try:
        every = timedelta(**amounts)
    except OverflowError:
        raise _invalid(f"{_INTERVAL_HELP}, got {text!r} (too long)") from None
    if every < timedelta(seconds=1):
        raise _invalid(f"{_INTERVAL_HELP}, got {text!r}")
    return every


def preview(spec: ScheduleSpec, *, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times strictly after ``after`` (fewer if the schedule ends)."""
    return spec.fire_times(after, _END_OF_TIME, limit=count)


def _cron_fields(expr: str) -> str:
    """croniter's field string for a cron expression, after checking it can fire."""
    text = expr.strip()
    if text.startswith("@"):
        if text.lower() == "@reboot":
            raise _invalid("@reboot is not supported: Spark schedules fire at times, not on start")
        nickname = _NICKNAMES.get(text.lower())
        if nickname is None:
            names = ", ".join(_NICKNAMES)
            raise _invalid(f"Unknown cron nickname {text!r}; use one of {names}")
        text = nickname
    parts = text.split()
    if len(parts) not in (5, 6):
        raise _invalid(
            f"Invalid cron expression {expr!r}: expected 5 fields (minute hour day-of-month "
            f"month day-of-week) or 6 with leading seconds, got {len(parts)}"
        )
    rules = _FIELD_RULES if len(parts) == 5 else (_SECOND_RULE, *_FIELD_RULES)
    for (name, _), part in zip(rules, parts, strict=True):
        if any(_RANDOM_PART.match(piece) for piece in part.split(",")):
            raise _invalid(f"Invalid cron expression {expr!r}: {name} may not be random (H or R)")
    if len(parts) == 6:  # ours: seconds first; croniter's default: seconds last
        parts = [*parts[1:], parts[0]]
    fields = " ".join(parts)
    try:
        croniter(fields)
    except CroniterError:
        raise _invalid(f"Invalid cron expression {expr!r}: {_bad_field(parts)}") from None
    try:  # croniter searches a bounded number of years, so this ends
        croniter(fields, datetime(2000, 1, 1)).get_next(datetime)  # noqa: DTZ001 - wall time
    except CroniterError:
        raise _invalid(
            f"Invalid cron expression {expr!r}: it never fires (no date matches all its fields)"
        ) from None
    return fields


def _bad_field(parts: list[str]) -> str:
    """Why croniter rejects fields ``parts`` (croniter's order), naming the first bad field."""
    rules = [*_FIELD_RULES, _SECOND_RULE][: len(parts)]
    for index, (name, accepted) in enumerate(rules):
        alone = ["*"] * len(parts)
        alone[index] = parts[index]
        try:
            croniter(" ".join(alone))
        except CroniterError:
            return f"{name} must be {accepted}"
    return "the fields do not combine into a valid schedule"


def _one_time_instant(expr: str, zone: ZoneInfo, now: datetime) -> datetime:
    """The instant a one-time expression names, rejecting dates in the past."""
    text = expr.strip()
    if text.lower() == "now":
        return now
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _invalid(
            f"One-time date {expr!r} is not an ISO-8601 datetime like 2026-12-01T09:00, "
            "2026-12-01T09:00:00Z or 2026-12-01, nor 'now'"
        ) from None
    try:
        instant = (_first_instant(parsed, zone) if parsed.tzinfo is None
                   else parsed.astimezone(UTC))
    except OverflowError:
        raise _invalid(f"One-time date {expr!r} is after the year 9999 in UTC") from None
    if instant < now - _ONE_TIME_GRACE:
        raise _invalid(f"One-time date {expr!r} is in the past")
    return instant


def _first_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant of a local wall time: its first occurrence, or the end of a DST gap."""
    instant = wall.replace(tzinfo=zone).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    # In a gap, fold=0 reads the wall time with the offset from before the change and fold=1
    # with the one after, so the change itself lies between the two readings.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return _change_between(before, instant, zone)


def _second_occurrence(wall: datetime, zone: ZoneInfo) -> datetime | None:
    """The second instant of a wall time that occurs twice (autumn), else None."""
    first = wall.replace(tzinfo=zone).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if second > first and second.astimezone(zone).replace(tzinfo=None) == wall:
        return second
    return None


def _change_between(low: datetime, high: datetime, zone: ZoneInfo) -> datetime:
    """The first instant in ``(low, high]`` with the UTC offset in force at ``high``."""
    target = high.astimezone(zone).utcoffset()
    low_s, high_s = int(low.timestamp()), int(high.timestamp())
    while high_s - low_s > 1:  # zone changes happen on whole seconds
        middle = (low_s + high_s) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == target:
            high_s = middle
        else:
            low_s = middle
    return datetime.fromtimestamp(high_s, UTC)


def _utc(value: datetime, name: str) -> datetime:
    """``value`` in UTC; naive datetimes are a programming error."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _invalid(message: str) -> InvalidScheduleError:
    return InvalidScheduleError(message, errors=[("schedule_expr", message)])
