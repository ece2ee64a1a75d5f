"""Cron expressions, parsed once and turned into APScheduler triggers in the configured zone.

Standard cron (``minute hour day month weekday``; weekday 0 or 7 is Sunday, 1 Monday), the
``@hourly``-style names, and an optional leading seconds field (``second minute hour day month
weekday``, as Quartz and Spring write it) for schedules finer than a minute. Two traps of
APScheduler 3.x are avoided here and nowhere else:

- it numbers weekdays from Monday = 0, so ``CronTrigger.from_crontab("0 10 * * 1")`` fires on
  Tuesdays: the weekday field is handed over as names (``mon``), never as numbers;
- a trigger built without ``timezone=`` uses the host's zone: every trigger is built in the zone
  it is given (the scheduler's, ``JOBDECK_TIMEZONE``).

Cron's rule for a day restricted both by day of month and by weekday ("either matches") is kept
with an OrTrigger; APScheduler alone would require both. On a day whose clocks go back, a fire
at a fixed hour (hour field not ``*``) happens once, at the first of the two wall times, as cron
does; wildcard-hour schedules (hourly, minutely) fire at every real hour and minute. A fixed time
that a spring-forward skips fires once, at the same distance past the jump.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

from jobs.platform.errors import JobdeckError

#: Cron's weekday numbers (0 and 7 are Sunday) as APScheduler's names.
WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
NAMED_EXPRESSIONS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
#: Each field's name and its smallest and largest value (weekday 7 is Sunday again).
FIELDS = (
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day", 1, 31),
    ("month", 1, 12),
    ("weekday", 0, 7),
)


class CronError(JobdeckError):
    """Raised when a cron expression cannot be parsed; the message says which field is wrong."""


@dataclass(frozen=True)
class CronExpression:
    """A parsed cron expression: the set of values each field allows (weekday 0 = Sunday)."""

    text: str
    second: tuple[int, ...]
    minute: tuple[int, ...]
    hour: tuple[int, ...]
    day: tuple[int, ...]
    month: tuple[int, ...]
    weekday: tuple[int, ...]
    #: cron's own rule: a field is restricted unless it starts with ``*``.
    day_restricted: bool
    weekday_restricted: bool
    hour_restricted: bool

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        """Parse five fields (or six, seconds first) or an @name; CronError says what is wrong."""
        written = " ".join(str(text).split())
        fields = NAMED_EXPRESSIONS.get(written.lower(), written).split()
        if len(fields) == 5:
            fields = ["0", *fields]
        if len(fields) != 6:
            raise CronError(
                f"{written!r} is not a cron expression: it needs five fields "
                "(minute hour day month weekday), or six with seconds first"
            )
        values = {
            name: _expand(field, name, low, high)
            for field, (name, low, high) in zip(fields, FIELDS, strict=True)
        }
        weekdays = tuple(sorted({day % 7 for day in values["weekday"]}))
        return cls(
            text=written,
            second=values["second"],
            minute=values["minute"],
            hour=values["hour"],
            day=values["day"],
            month=values["month"],
            weekday=weekdays,
            day_restricted=not fields[3].startswith("*"),
            weekday_restricted=not fields[5].startswith("*"),
            hour_restricted=not fields[2].startswith("*"),
        )

    def __str__(self) -> str:
        return self.text

    def trigger(self, zone: ZoneInfo) -> BaseTrigger:
        """The APScheduler trigger firing at this expression's times in ``zone``."""
        common = {
            "second": _listed(self.second, 0, 59),
            "minute": _listed(self.minute, 0, 59),
            "hour": _listed(self.hour, 0, 23),
            "month": _listed(self.month, 1, 12),
            "timezone": zone,
            "once_at_fixed_hours": self.hour_restricted,
        }
        by_day = {"day": _listed(self.day, 1, 31) if self.day_restricted else "*"}
        by_weekday = {"day_of_week": _weekday_names(self.weekday) if self.weekday_restricted else "*"}
        if self.day_restricted and self.weekday_restricted:
            # cron fires when either matches; CronTrigger alone would want both.
            return OrTrigger(
                [WallClockCronTrigger(**common, **by_day), WallClockCronTrigger(**common, **by_weekday)]
            )
        return WallClockCronTrigger(**common, **by_day, **by_weekday)

    @property
    def shortest_gap(self) -> int:
        """The fewest seconds between two fires when more than one falls in a minute, else 60."""
        if len(self.second) < 2:
            return 60
        seconds = list(self.second)
        gaps = [later - earlier for earlier, later in zip(seconds, seconds[1:], strict=False)]
        return min([*gaps, 60 + seconds[0] - seconds[-1]])


class WallClockCronTrigger(CronTrigger):
    """CronTrigger that fires a fixed-hour schedule once on a day whose clocks go back.

    APScheduler fires at both of a repeated wall time's instants (01:30 EDT and 01:30 EST);
    cron, and an operator reading "every day at 01:30", expect one run. Wildcard-hour schedules
    are left alone: every real hour and minute is a tick of theirs.
    """

    def __init__(self, *, once_at_fixed_hours: bool, **fields) -> None:
        super().__init__(**fields)
        self.once_at_fixed_hours = once_at_fixed_hours

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        fire_time = super().get_next_fire_time(previous_fire_time, now)
        while fire_time is not None and self.once_at_fixed_hours and _second_of_repeated(fire_time):
            # Search on from the instant after it, reckoned in UTC: wall-clock arithmetic on a
            # repeated time would land on the first instant again.
            after = (fire_time.astimezone(UTC) + timedelta(microseconds=1)).astimezone(self.timezone)
            fire_time = super().get_next_fire_time(None, after)
        if fire_time is None:
            return None
        # A time a spring-forward skipped comes back with the offset before the jump: normalise it.
        return fire_time.astimezone(UTC).astimezone(self.timezone)


def _second_of_repeated(fire_time: datetime) -> bool:
    """Whether ``fire_time`` is the later of two instants sharing its wall time (clocks went back)."""
    wall = fire_time.replace(tzinfo=None)
    first = wall.replace(tzinfo=fire_time.tzinfo, fold=0)
    # Compared as timestamps: aware datetimes sharing a tzinfo compare by wall time, fold ignored.
    return first.utcoffset() != fire_time.utcoffset() and first.timestamp() < fire_time.timestamp()


def _expand(field: str, name: str, low: int, high: int) -> tuple[int, ...]:
    """The values a cron field allows: ``*``, ``a``, ``a-b``, ``*/n``, ``a-b/n``, ``a/n``, lists, names."""
    values: set[int] = set()
    for part in field.lower().split(","):
        span, _, step_text = part.partition("/")
        step = _number(step_text, name, field) if step_text else 1
        if step < 1:
            raise CronError(f"the {name} field {field!r} has a step below 1")
        if span == "*":
            first, last = low, high
        else:
            start, dash, end = span.partition("-")
            first = _value(start, name, field)
            last = _value(end, name, field) if dash else (high if step_text else first)
        if not low <= first <= last <= high:
            raise CronError(f"the {name} field {field!r} must stay within {low}-{high}, in ascending order")
        values.update(range(first, last + 1, step))
    return tuple(sorted(values))


def _value(text: str, name: str, field: str) -> int:
    names = {"weekday": WEEKDAY_NAMES, "month": MONTH_NAMES}.get(name, ())
    if text in names:
        return names.index(text) + (1 if name == "month" else 0)
    return _number(text, name, field)


def _number(text: str, name: str, field: str) -> int:
    if not text.isdigit():
        raise CronError(f"the {name} field {field!r} is not a cron field")
    return int(text)


def _listed(values: tuple[int, ...], low: int, high: int) -> str:
    if values == tuple(range(low, high + 1)):
        return "*"
    return ",".join(str(value) for value in values)


def _weekday_names(weekdays: tuple[int, ...]) -> str:
    return ",".join(WEEKDAY_NAMES[day] for day in weekdays)
