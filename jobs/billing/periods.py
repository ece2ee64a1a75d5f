"""Report periods (hour, day, week, month) in the configured time zone, and scheduled fire times.

A scheduled job carries its nominal fire time (kwarg ``fire_time``, ISO 8601 UTC) so that a retried
or caught-up run serves the period it was meant for, not the one around the clock when it ran.
Periods are half-open, ``[start, end)``, computed on the local wall clock; weeks start on Monday.
Everything here is a pure function of its arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from jobs.platform.errors import PermanentError

PERIOD_KINDS = ("hour", "day", "week", "month")
#: Subtracted from a period's start to land in the period before it.
_JUST_BEFORE = timedelta(microseconds=1)


class PeriodError(PermanentError, ValueError):
    """Raised when a fire time, a period start or a period kind cannot be understood."""


@dataclass(frozen=True)
class Period:
    """One period ``[start_local, end_local)``; both ends are aware datetimes in the period's zone."""

    kind: str
    start_local: datetime
    end_local: datetime

    @property
    def start_utc(self) -> datetime:
        return self.start_local.astimezone(UTC)

    @property
    def end_utc(self) -> datetime:
        return self.end_local.astimezone(UTC)

    @property
    def zone(self) -> ZoneInfo:
        return self.start_local.tzinfo  # type: ignore[return-value]

    @property
    def start_date(self) -> date:
        """The local date the period starts on."""
        return self.start_local.date()

    @property
    def end_date(self) -> date:
        """The local date the period ends on (exclusive for days, weeks and months)."""
        return self.end_local.date()

    @property
    def label(self) -> str:
        """A short name fit for a file name: ``2026-01``, ``2026-01-05``, ``2026-01-05T13-00+0800``."""
        if self.kind == "month":
            return self.start_local.strftime("%Y-%m")
        if self.kind == "hour":
            return self.start_local.strftime("%Y-%m-%dT%H-%M%z")
        return self.start_local.strftime("%Y-%m-%d")

    def __contains__(self, moment: datetime) -> bool:
        return self.start_utc <= moment.astimezone(UTC) < self.end_utc


def parse_fire_time(value: str | datetime | None, now: datetime | None = None) -> datetime:
    """Return the fire time as an aware UTC datetime; None means ``now`` (default: the clock).

    A string without an offset is read as UTC, which is what the scheduler sends.
    """
    if value is None:
        value = now or datetime.now(UTC)
    elif isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise PeriodError(f"fire_time must be an ISO 8601 time, got {value!r}") from None
    if not isinstance(value, datetime):
        raise PeriodError(f"fire_time must be an ISO 8601 string, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def period_containing(kind: str, moment: date | datetime, zone: ZoneInfo) -> Period:
    """The period of ``kind`` that contains ``moment``.

    ``moment`` is a local date (its first instant), a naive local wall time, or an aware datetime
    (converted to ``zone``).
    """
    local = _local(moment, zone)
    if kind == "hour":
        # Hours are counted in absolute time so that the repeated hour of a DST fall-back is two periods.
        start = local.replace(minute=0, second=0, microsecond=0)
        end = (start.astimezone(UTC) + timedelta(hours=1)).astimezone(zone)
        return Period(kind, start, end)
    if kind == "day":
        first = local.date()
        return _calendar_period(kind, first, first + timedelta(days=1), zone)
    if kind == "week":
        first = local.date() - timedelta(days=local.weekday())
        return _calendar_period(kind, first, first + timedelta(days=7), zone)
    if kind == "month":
        return month_period(local.year, local.month, zone)
    raise PeriodError(f"period kind must be one of {', '.join(PERIOD_KINDS)}, got {kind!r}")


def previous_period(kind: str, fire_time: datetime, zone: ZoneInfo) -> Period:
    """The latest period of ``kind`` that ended at or before ``fire_time``.

    Fired Monday 10:00 → the week from the previous Monday 00:00 to this Monday 00:00;
    fired on the 1st at 00:00 → the previous month.
    """
    current = period_containing(kind, parse_fire_time(fire_time), zone)
    return period_containing(kind, current.start_utc - _JUST_BEFORE, zone)


def month_period(year: int, month: int, zone: ZoneInfo) -> Period:
    """The calendar month ``year``-``month`` in ``zone``."""
    if not (1 <= month <= 12) or not (1 <= year <= 9998):
        raise PeriodError(f"no such month: {year}-{month}")
    first = date(year, month, 1)
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return _calendar_period("month", first, following, zone)


def parse_period_start(kind: str, value: str, zone: ZoneInfo) -> Period:
    """The period of ``kind`` starting at ``value`` (a local date or date-time, ISO 8601).

    A value that is not the first instant of such a period is refused rather than silently moved,
    so an operator asking for "the week of Wednesday" learns that weeks start on Monday.
    """
    try:
        moment: date | datetime = (
            date.fromisoformat(value) if len(value.strip()) == 10 else datetime.fromisoformat(value.strip())
        )
    except (ValueError, AttributeError):
        raise PeriodError(f"period_start must be an ISO 8601 date or time, got {value!r}") from None
    period = period_containing(kind, moment, zone)
    if period.start_local.replace(tzinfo=None) != _local(moment, zone).replace(tzinfo=None):
        raise PeriodError(
            f"period_start {value} does not start a {kind}; the {kind} containing it starts "
            f"{period.start_local.isoformat()}"
        )
    return period


def _calendar_period(kind: str, first: date, following: date, zone: ZoneInfo) -> Period:
    return Period(kind, _local_midnight(first, zone), _local_midnight(following, zone))


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    # Where midnight falls in a DST gap, fold=0 resolves it to the first instant of the day.
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def _local(moment: date | datetime, zone: ZoneInfo) -> datetime:
    if isinstance(moment, datetime):
        if moment.tzinfo is None or moment.utcoffset() is None:
            return moment.replace(tzinfo=zone)
        return moment.astimezone(zone)
    if isinstance(moment, date):
        return _local_midnight(moment, zone)
    raise PeriodError(f"expected a date or datetime, got {type(moment).__name__}")
