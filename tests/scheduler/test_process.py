"""The scheduler process starts, says what it will fire, fires, lists, and stops cleanly on SIGTERM."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from jobs.platform.schedules import schedule_definitions
from jobs.platform.settings import load_settings
from tests.conftest import ROOT, process_environment, wait_for
from tests.scheduler.conftest import PRODUCTION_SCHEDULES_OFF

pytestmark = pytest.mark.slow


def run_scheduler(environment, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scheduler", *arguments],
        cwd=ROOT,
        env=process_environment(environment),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_scheduler_starts_logs_and_stops_on_sigterm_within_seconds(start_scheduler):
    scheduler = start_scheduler()
    assert "Scheduler started (time zone Asia/Shanghai" in scheduler.log()

    status, seconds = scheduler.stop()

    assert status == 0
    assert seconds < 3
    assert "Scheduler stopped." in scheduler.log()


def test_start_up_shows_each_schedules_next_three_runs_and_every_fire_gets_a_line(runtime, start_scheduler):
    scheduler = start_scheduler(JOBDECK_SCHEDULE_TEST_TASK="* * * * * *")
    wait_for(lambda: scheduler.log().count("Schedule test_task fired for") >= 2, timeout=10)
    scheduler.stop()
    log = scheduler.log()
    every_second = load_settings(
        {"JOBDECK_SCHEDULE_TEST_TASK": "* * * * * *"}, dotenv=False
    ).schedule_overrides

    mondays = runtime.schedule_monitor.definition("generate_weekly_report").next_fire_times(
        datetime.now(UTC), 3
    )
    shown = ", ".join(day.isoformat() for day in mondays)
    assert (
        "Schedule generate_weekly_report (generate_weekly_report, cron 0 10 * * 1 in Asia/Shanghai, "
        f"window 86400 s, grace 86400 s, from actor): next runs {shown}."
    ) in log
    assert {day.strftime("%A %H:%M") for day in mondays} == {"Monday 10:00"}
    assert "from JOBDECK_SCHEDULE_TEST_TASK" in log
    fires = re.findall(
        r"Schedule test_task fired for (\S+\+08:00): enqueued task ([0-9a-f-]{36}), (\d+) ms late\.", log
    )
    assert len(fires) >= 2
    [tick_schedule] = [
        definition
        for definition in schedule_definitions(
            runtime.broker.actors.values(), runtime.settings.with_overrides(schedule_overrides=every_second)
        )
        if definition.name == "test_task"
    ]
    for fire_time, task_id, _ in fires:
        assert tick_schedule.task_id(datetime.fromisoformat(fire_time)) == task_id


def test_list_prints_every_schedule_with_next_and_last_run_and_pause(runtime, environment):
    hourly = runtime.schedule_monitor.definition("generate_hourly_report")
    now = datetime.now(UTC)
    last_hour = hourly.latest_fire_time(now, now - timedelta(hours=1))
    runtime.schedule_manager.fire("generate_hourly_report", last_hour)
    runtime.schedule_manager.pause("generate_monthly_report", requested_by="ops@example.com")

    result = run_scheduler(environment, "--list")

    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == [
        "name",
        "actor",
        "cron",
        "time",
        "zone",
        "next",
        "run",
        "last",
        "run",
        "last",
        "outcome",
        "paused",
    ]
    by_name = {row.split()[0]: row for row in rows}
    assert set(by_name) == {
        name.removeprefix("JOBDECK_SCHEDULE_").lower() for name in PRODUCTION_SCHEDULES_OFF
    }
    hourly_row = by_name["generate_hourly_report"].split()
    assert hourly_row[:7] == ["generate_hourly_report", "generate_hourly_report", "0", "*", "*", "*", "*"]
    assert hourly_row[7] == "Asia/Shanghai"
    assert hourly_row[8] == hourly.next_fire_time(datetime.now(UTC)).isoformat()
    assert hourly_row[9:] == [last_hour.astimezone(hourly.timezone).isoformat(), "enqueued", "no"]
    assert "yes, by ops@example.com since " in by_name["generate_monthly_report"]
    assert by_name["check_pending_bills"].split()[-3:] == ["-", "-", "no"]


def test_list_with_redis_down_says_so_in_one_line(environment):
    result = run_scheduler({**environment, "REDIS_URL": "redis://127.0.0.1:9/0"}, "--list")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "jobdeck scheduler: Redis cannot be reached" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("JOBDECK_TIMEZONE", "Nowhere/Land", "JOBDECK_TIMEZONE is not a known time zone"),
        (
            "JOBDECK_SCHEDULE_TEST_TASK",
            "0 10 * * 9",
            'JOBDECK_SCHEDULE_TEST_TASK must be a cron expression or "off"',
        ),
        ("JOBDECK_SCHEDULE_NO_SUCH_JOB", "* * * * *", "JOBDECK_SCHEDULE_NO_SUCH_JOB names no job"),
    ],
)
def test_scheduler_with_a_bad_setting_exits_with_one_line(environment, variable, value, message):
    result = run_scheduler({**environment, variable: value})

    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
