"""Cron expressions become APScheduler triggers that fire on cron's days, in the configured zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from jobs.platform.cron import CronError, CronExpression

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def fire_times(expression: str, zone: ZoneInfo, start: datetime, count: int) -> list[datetime]:
    trigger = CronExpression.parse(expression).trigger(zone)
    times: list[datetime] = []
    while len(times) < count:
        previous = times[-1] if times else None
        times.append(trigger.get_next_fire_time(previous, previous or start))
    return times


def fires_between(expression: str, zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    trigger = CronExpression.parse(expression).trigger(zone)
    times, now = [], start
    while (fire_time := trigger.get_next_fire_time(times[-1] if times else None, now)) < end:
        times.append(fire_time)
        now = fire_time
    return times


def test_apscheduler_alone_would_fire_the_weekly_report_on_tuesday():
    # The trap this module exists for: APScheduler 3.x numbers weekdays from Monday = 0.
    naive = CronTrigger.from_crontab("0 10 * * 1", timezone=SHANGHAI)
    assert naive.get_next_fire_time(None, datetime(2026, 1, 1, tzinfo=SHANGHAI)).strftime("%A") == "Tuesday"

    ours = fire_times("0 10 * * 1", SHANGHAI, datetime(2026, 1, 1, tzinfo=SHANGHAI), 3)

    assert [moment.isoformat() for moment in ours] == [
        "2026-01-05T10:00:00+08:00",
        "2026-01-12T10:00:00+08:00",
        "2026-01-19T10:00:00+08:00",
    ]
    assert {moment.strftime("%A") for moment in ours} == {"Monday"}


@pytest.mark.parametrize(
    ("expression", "first", "second"),
    [
        ("* * * * *", "2026-01-31T23:59:00+08:00", "2026-02-01T00:00:00+08:00"),
        ("0 * * * *", "2026-02-01T00:00:00+08:00", "2026-02-01T01:00:00+08:00"),
        ("0 2 * * *", "2026-02-01T02:00:00+08:00", "2026-02-02T02:00:00+08:00"),
        ("0 10 * * 1", "2026-02-02T10:00:00+08:00", "2026-02-09T10:00:00+08:00"),
        ("0 0 1 * *", "2026-02-01T00:00:00+08:00", "2026-03-01T00:00:00+08:00"),
    ],
)
def test_the_five_schedules_next_fire_times_in_shanghai(expression, first, second):
    start = datetime(2026, 1, 31, 23, 58, 30, tzinfo=SHANGHAI)

    times = fire_times(expression, SHANGHAI, start, 2)

    assert [moment.isoformat() for moment in times] == [first, second]


def test_every_trigger_is_in_the_zone_it_is_given_not_the_hosts(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")  # what a trigger without timezone= would use

    trigger = CronExpression.parse("0 2 * * *").trigger(SHANGHAI)
    fire_time = trigger.get_next_fire_time(None, datetime(2026, 2, 28, 17, tzinfo=UTC))  # 01:00 there

    assert trigger.timezone == SHANGHAI
    assert fire_time.isoformat() == "2026-03-01T02:00:00+08:00"


def test_sunday_is_0_or_7_and_names_work():
    for expression in ("0 9 * * 0", "0 9 * * 7", "0 9 * * sun", "0 9 * * SUN"):
        times = fire_times(expression, SHANGHAI, datetime(2026, 1, 1, tzinfo=SHANGHAI), 2)
        assert {moment.strftime("%A") for moment in times} == {"Sunday"}, expression
    weekdays = fire_times("0 9 * * 1-5", SHANGHAI, datetime(2026, 1, 3, tzinfo=SHANGHAI), 5)
    assert [moment.strftime("%a") for moment in weekdays] == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    assert CronExpression.parse("0 0 1 jan,jul *").month == (1, 7)


def test_day_of_month_and_weekday_together_fire_when_either_matches():
    # cron: the 13th, and every Friday; APScheduler alone would want Friday the 13th.
    times = fire_times("0 0 13 * 5", SHANGHAI, datetime(2026, 1, 1, tzinfo=SHANGHAI), 4)

    assert [moment.date().isoformat() for moment in times] == [
        "2026-01-02",
        "2026-01-09",
        "2026-01-13",
        "2026-01-16",
    ]


def test_six_fields_put_seconds_first_and_named_expressions_expand():
    every_second = fire_times(
        "* * * * * *", SHANGHAI, datetime(2026, 1, 1, 0, 0, 0, 500_000, tzinfo=SHANGHAI), 3
    )

    assert [moment.second for moment in every_second] == [1, 2, 3]
    assert CronExpression.parse("*/20 * * * * *").shortest_gap == 20
    assert CronExpression.parse("0 * * * *").shortest_gap == 60
    weekly = CronExpression.parse("@weekly")
    assert (weekly.minute, weekly.hour, weekly.weekday, str(weekly)) == ((0,), (0,), (0,), "@weekly")


def test_spring_forward_fires_a_skipped_time_once_and_the_hourly_one_each_real_hour():
    # 8 March 2026, New York: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist that day.
    start, end = datetime(2026, 3, 7, 12, tzinfo=NEW_YORK), datetime(2026, 3, 9, 12, tzinfo=NEW_YORK)

    daily = fires_between("30 2 * * *", NEW_YORK, start, end)
    hourly = fires_between(
        "0 * * * *", NEW_YORK, datetime(2026, 3, 8, tzinfo=NEW_YORK), datetime(2026, 3, 9, tzinfo=NEW_YORK)
    )

    assert [moment.isoformat() for moment in daily] == [
        "2026-03-08T03:30:00-04:00",  # once, just after the jump
        "2026-03-09T02:30:00-04:00",
    ]
    assert len(hourly) == 23  # a 23-hour day
    assert len({moment.astimezone(UTC) for moment in hourly}) == 23


def test_fall_back_fires_a_fixed_time_once_and_the_hourly_one_each_real_hour():
    # 1 November 2026, New York: 02:00 EDT goes back to 01:00 EST; 01:00-01:59 happen twice.
    day_start, day_end = datetime(2026, 11, 1, tzinfo=NEW_YORK), datetime(2026, 11, 2, tzinfo=NEW_YORK)

    at_0230 = fires_between("30 2 * * *", NEW_YORK, day_start - timedelta(days=1), day_end)
    at_0130 = fires_between("30 1 * * *", NEW_YORK, day_start, day_end)
    hourly = fires_between("0 * * * *", NEW_YORK, day_start, day_end)

    assert [moment.isoformat() for moment in at_0230] == [
        "2026-10-31T02:30:00-04:00",
        "2026-11-01T02:30:00-05:00",
    ]
    assert [moment.isoformat() for moment in at_0130] == ["2026-11-01T01:30:00-04:00"]  # not again at EST
    assert len(hourly) == 25  # a 25-hour day: both 01:00s
    assert [moment.isoformat() for moment in hourly[1:3]] == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:00:00-05:00",
    ]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * *", "needs five fields"),
        ("61 * * * *", "minute field '61' must stay within 0-59"),
        ("* * * * 8", "weekday field '8' must stay within 0-7"),
        ("x * * * *", "minute field 'x' is not a cron field"),
        ("5-1 * * * *", "in ascending order"),
        ("*/0 * * * *", "step below 1"),
        ("* * 0 * *", "day field '0' must stay within 1-31"),
    ],
)
def test_a_bad_expression_says_what_is_wrong(expression, message):
    with pytest.raises(CronError, match=message):
        CronExpression.parse(expression)
