"""Schedules are declared on their actors, changed per deployment, and fired by jobdeck only."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from periodiq import PeriodiqMiddleware

from jobs.platform.errors import SettingsError
from jobs.platform.schedules import PeriodiqRunnerRefused, schedule_definitions
from jobs.platform.settings import load_settings
from tests.conftest import BIN, ROOT, process_environment

FIVE_SCHEDULES = {
    "check_pending_bills": ("* * * * *", "finance", 0),
    "generate_hourly_report": ("0 * * * *", "reports", 600),
    "generate_weekly_report": ("0 10 * * 1", "reports", 86400),
    "generate_monthly_report": ("0 0 1 * *", "reports", 172800),
    "cleanup_old_notifications": ("0 2 * * *", "email", 21600),
}


def definitions_with(runtime, **environment):
    settings = load_settings({"JOBDECK_VAR_DIR": str(runtime.settings.var_dir), **environment}, dotenv=False)
    return {
        definition.name: definition
        for definition in schedule_definitions(runtime.broker.actors.values(), settings)
    }


def test_the_five_schedules_come_from_their_actors_periodic_option(runtime):
    definitions = {definition.name: definition for definition in runtime.schedule_definitions}

    assert {
        name: (str(definition.cron), definition.queue_name, definition.window)
        for name, definition in definitions.items()
    } == FIVE_SCHEDULES
    assert {definition.timezone.key for definition in definitions.values()} == {"Asia/Shanghai"}
    assert {definition.source for definition in definitions.values()} == {"actor"}
    # The minutely one tolerates a slow moment but never catches up; the others' grace is their window.
    assert (definitions["check_pending_bills"].grace, definitions["generate_hourly_report"].grace) == (
        15,
        600,
    )
    assert definitions["generate_weekly_report"].as_dict() == {
        "name": "generate_weekly_report",
        "actor": "generate_weekly_report",
        "queue": "reports",
        "cron": "0 10 * * 1",
        "timezone": "Asia/Shanghai",
        "window": 86400,
        "source": "actor",
    }


def test_a_deployment_changes_disables_or_adds_a_schedule_by_configuration(runtime):
    definitions = definitions_with(
        runtime,
        JOBDECK_SCHEDULE_CHECK_PENDING_BILLS="*/5 * * * *",
        JOBDECK_SCHEDULE_GENERATE_HOURLY_REPORT="off",
        JOBDECK_SCHEDULE_GENERATE_WEEKLY_REPORT_WINDOW="3600",
        JOBDECK_SCHEDULE_TEST_TASK="* * * * * *",
        JOBDECK_TIMEZONE="America/New_York",
    )

    assert str(definitions["check_pending_bills"].cron) == "*/5 * * * *"
    assert definitions["check_pending_bills"].source == "JOBDECK_SCHEDULE_CHECK_PENDING_BILLS"
    assert "generate_hourly_report" not in definitions
    assert definitions["generate_weekly_report"].window == 3600
    assert str(definitions["generate_weekly_report"].cron) == "0 10 * * 1"
    assert (definitions["test_task"].cron.second, definitions["test_task"].grace) == (tuple(range(60)), 1)
    assert definitions["generate_monthly_report"].trigger.timezone.key == "America/New_York"


def test_an_override_naming_no_job_or_with_a_bad_cron_names_its_variable(runtime, tmp_path: Path):
    with pytest.raises(SettingsError, match="JOBDECK_SCHEDULE_NO_SUCH_JOB names no job; the jobs are: "):
        definitions_with(runtime, JOBDECK_SCHEDULE_NO_SUCH_JOB="* * * * *")
    with pytest.raises(
        SettingsError, match=r'JOBDECK_SCHEDULE_TEST_TASK must be a cron expression or "off": the hour'
    ):
        load_settings(
            {"JOBDECK_VAR_DIR": str(tmp_path), "JOBDECK_SCHEDULE_TEST_TASK": "0 25 * * *"}, dotenv=False
        )
    with pytest.raises(SettingsError, match="JOBDECK_SCHEDULE_TEST_TASK_WINDOW must be a number"):
        load_settings(
            {"JOBDECK_VAR_DIR": str(tmp_path), "JOBDECK_SCHEDULE_TEST_TASK_WINDOW": "soon"}, dotenv=False
        )


def test_a_tick_has_one_task_id_and_carries_its_nominal_time_as_fire_time(runtime):
    definitions = definitions_with(runtime, JOBDECK_SCHEDULE_LONG_RUNNING_TASK="0 3 * * *")
    hourly = definitions["generate_hourly_report"]
    ten = datetime(2026, 3, 1, 2, tzinfo=UTC)

    assert hourly.task_id(ten) == hourly.task_id(ten.astimezone(hourly.timezone))  # every process agrees
    assert hourly.task_id(ten) != hourly.task_id(datetime(2026, 3, 1, 3, tzinfo=UTC))
    assert hourly.task_id(ten) != definitions["check_pending_bills"].task_id(ten)
    assert hourly.kwargs(ten.astimezone(hourly.timezone)) == {"fire_time": "2026-03-01T02:00:00+00:00"}
    assert definitions["long_running_task"].kwargs(ten) == {}  # it takes no fire_time


def test_periodiqs_middleware_is_not_installed_and_its_runners_messages_are_refused(runtime):
    from jobs.billing.finance import check_pending_bills

    assert not any(isinstance(middleware, PeriodiqMiddleware) for middleware in runtime.broker.middleware)

    with pytest.raises(PeriodiqRunnerRefused, match="periodiq's runner, which must not run"):
        check_pending_bills.send_with_options(scheduled_at="2026-03-01T00:00:00+08:00")

    assert runtime.broker.client.llen("dramatiq:finance") == 0
    assert runtime.monitor.get_task_history().tasks == []


@pytest.mark.slow
def test_periodiqs_runner_cannot_fire_anything(environment):
    result = subprocess.run(
        [str(BIN / "periodiq"), "jobs.worker"],
        cwd=ROOT,
        env=process_environment(environment),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "must not run: `python -m scheduler` fires jobdeck's schedules" in result.stderr


def test_a_periodic_actor_module_imports_before_start_and_moves_to_jobdecks_broker(environment):
    script = (
        "from jobs.billing.finance import check_pending_bills\n"
        "print(check_pending_bills.options['periodic'], type(check_pending_bills.broker).__name__)\n"
        "from jobs.runtime import start\n"
        "runtime = start()\n"
        "print(check_pending_bills.broker is runtime.broker, len(runtime.schedule_definitions))\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=process_environment(environment),
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["* * * * * StubBroker", "True 5"]
