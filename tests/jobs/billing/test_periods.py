"""Report periods in a zone: hour, day, Monday weeks, months; DST and month/year boundaries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobs.billing.periods import (
    PeriodError,
    month_period,
    parse_fire_time,
    parse_period_start,
    period_containing,
    previous_period,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_parse_fire_time_reads_utc_strings_offsets_and_none():
    assert parse_fire_time("2026-03-01T00:00:00Z") == utc(2026, 3, 1)
    assert parse_fire_time("2026-03-01T08:00:00+08:00") == utc(2026, 3, 1)
    assert parse_fire_time("2026-03-01T00:00:00") == utc(2026, 3, 1)  # no offset: UTC
    assert parse_fire_time(None, now=utc(2026, 1, 2, 3)) == utc(2026, 1, 2, 3)
    assert parse_fire_time(None).tzinfo is UTC


def test_parse_fire_time_refuses_nonsense_without_retry():
    with pytest.raises(PeriodError, match="ISO 8601"):
        parse_fire_time("yesterday")


def test_weekly_report_fired_monday_morning_covers_the_previous_monday_week():
    fired = datetime(2026, 1, 12, 10, tzinfo=SHANGHAI)  # a Monday

    week = previous_period("week", fired.astimezone(UTC), SHANGHAI)

    assert week.start_local == datetime(2026, 1, 5, tzinfo=SHANGHAI)
    assert week.end_local == datetime(2026, 1, 12, tzinfo=SHANGHAI)
    assert week.start_utc == utc(2026, 1, 4, 16)
    assert week.start_local.weekday() == 0


def test_month_fired_on_the_first_at_midnight_is_the_previous_month_across_a_year():
    fired = datetime(2026, 1, 1, tzinfo=SHANGHAI).astimezone(UTC)  # 2025-12-31 16:00 UTC

    month = previous_period("month", fired, SHANGHAI)

    assert (month.start_date, month.end_date) == (date(2025, 12, 1), date(2026, 1, 1))
    assert month.label == "2025-12"


def test_fire_time_exactly_on_a_boundary_serves_the_period_that_just_ended():
    fired = datetime(2026, 3, 5, tzinfo=SHANGHAI)

    day = previous_period("day", fired, SHANGHAI)
    hour = previous_period("hour", fired, SHANGHAI)

    assert day.start_local == datetime(2026, 3, 4, tzinfo=SHANGHAI)
    assert hour.start_local == datetime(2026, 3, 4, 23, tzinfo=SHANGHAI)
    assert hour.end_utc - hour.start_utc == timedelta(hours=1)


def test_late_evening_utc_is_already_the_next_day_and_month_in_shanghai():
    moment = utc(2026, 1, 31, 23, 30)

    assert period_containing("day", moment, SHANGHAI).start_date == date(2026, 2, 1)
    assert period_containing("month", moment, SHANGHAI).label == "2026-02"


def test_week_crossing_a_month_and_a_year():
    week = period_containing("week", date(2026, 1, 1), SHANGHAI)  # a Thursday

    assert (week.start_date, week.end_date) == (date(2025, 12, 29), date(2026, 1, 5))


def test_february_in_a_leap_year():
    assert month_period(2028, 2, SHANGHAI).end_date == date(2028, 3, 1)
    assert (month_period(2028, 2, SHANGHAI).end_utc - month_period(2028, 2, SHANGHAI).start_utc).days == 29


def test_new_york_spring_forward_day_has_23_hours_and_fall_back_day_25():
    spring = period_containing("day", date(2026, 3, 8), NEW_YORK)
    autumn = period_containing("day", date(2026, 11, 1), NEW_YORK)

    assert spring.end_utc - spring.start_utc == timedelta(hours=23)
    assert autumn.end_utc - autumn.start_utc == timedelta(hours=25)
    assert spring.start_utc == utc(2026, 3, 8, 5)
    assert autumn.end_utc == utc(2026, 11, 2, 5)


def test_new_york_repeated_hour_is_two_distinct_hourly_periods():
    first = period_containing("hour", utc(2026, 11, 1, 5, 30), NEW_YORK)  # 01:30 EDT
    second = period_containing("hour", utc(2026, 11, 1, 6, 30), NEW_YORK)  # 01:30 EST

    assert first.start_utc == utc(2026, 11, 1, 5)
    assert second.start_utc == utc(2026, 11, 1, 6)
    assert first.label != second.label
    assert previous_period("hour", second.end_utc, NEW_YORK) == second


def test_new_york_week_and_month_spanning_dst_change():
    week = period_containing("week", date(2026, 3, 5), NEW_YORK)  # Mon 2 to Mon 9 March
    month = month_period(2026, 3, NEW_YORK)

    assert week.end_utc - week.start_utc == timedelta(days=7, hours=-1)
    assert month.start_utc == utc(2026, 3, 1, 5)
    assert month.end_utc == utc(2026, 4, 1, 4)


def test_parse_period_start_accepts_period_starts_and_refuses_the_middle_of_a_week():
    assert parse_period_start("week", "2026-01-05", SHANGHAI).end_date == date(2026, 1, 12)
    assert parse_period_start("hour", "2026-01-05T13:00", SHANGHAI).start_utc == utc(2026, 1, 5, 5)
    with pytest.raises(PeriodError, match="does not start a week"):
        parse_period_start("week", "2026-01-07", SHANGHAI)
    with pytest.raises(PeriodError):
        parse_period_start("day", "../../etc/passwd", SHANGHAI)


def test_unknown_kind_and_month_are_refused():
    with pytest.raises(PeriodError):
        period_containing("fortnight", date(2026, 1, 1), SHANGHAI)
    with pytest.raises(PeriodError):
        month_period(2026, 13, SHANGHAI)


def test_a_period_contains_its_start_but_not_its_end():
    day = period_containing("day", date(2026, 1, 1), SHANGHAI)

    assert day.start_utc in day
    assert day.end_utc not in day
