"""``jobdeck schedules`` and ``schedules pause|resume|run NAME`` against the real Redis: the table,
the JSON field by field against the API's answer, actions audited as the operator, bad names."""

from __future__ import annotations

import getpass
import json

import pytest

from tests.api.cli.conftest import assert_red_line

HOURLY = "generate_hourly_report"


@pytest.fixture
def environment(environment):
    """The minutely check made yearly, so that no next run moves between the CLI's and the API's read."""
    return {**environment, "JOBDECK_SCHEDULE_CHECK_PENDING_BILLS": "0 0 1 1 *"}


def test_the_json_is_the_apis_answer_field_by_field(jobdeck, api):
    jobdeck("schedules", "run", HOURLY)

    listed = json.loads(jobdeck("schedules", "--json").stdout)
    from_api = api("/api/core/schedules/")["schedules"]

    assert [schedule["name"] for schedule in listed] == [schedule["name"] for schedule in from_api]
    for mine, theirs in zip(listed, from_api, strict=True):
        assert list(mine) == list(theirs)
        for name in mine:
            assert mine[name] == theirs[name], (mine["name"], name)
    hourly = next(schedule for schedule in listed if schedule["name"] == HOURLY)
    assert (
        hourly["last_outcome"] == "run_now" and hourly["recent_ticks"][0]["requested_by"] == getpass.getuser()
    )


def test_the_table_shows_each_schedule_with_its_times_in_the_configured_zone(jobdeck, runtime):
    runtime.schedule_manager.pause(HOURLY, requested_by="alice")

    result = jobdeck("schedules")

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    [heading] = [line for line in lines if "Schedule" in line and "Next run" in line]
    for column in ("Job", "Cron", "Time zone", "Last run", "Last outcome", "Paused"):
        assert column in heading
    [hourly] = [line for line in lines if line.strip().startswith(HOURLY)]
    assert "0 * * * *" in hourly and "Asia/Shanghai" in hourly and "yes, by alice" in hourly
    assert "(in " in hourly  # the next run: absolute, and how long until it
    [check] = [line for line in lines if line.strip().startswith("check_pending_bills")]
    assert "0 0 1 1 *" in check and check.rstrip().endswith("no")
    assert "times in Asia/Shanghai" in result.stdout and "1 paused" in result.stdout


def test_pause_resume_and_run_act_as_the_operator_and_are_audited(jobdeck, runtime):
    paused = jobdeck("schedules", "pause", HOURLY)
    again = jobdeck("schedules", "pause", HOURLY)
    state_paused = runtime.schedule_monitor.find(HOURLY)
    resumed = jobdeck("schedules", "resume", HOURLY, "--json")
    ran = jobdeck("schedules", "run", HOURLY, "--json")

    user = getpass.getuser()
    assert (paused.exit_code, paused.stdout.strip()) == (0, f"Paused {HOURLY}.")
    assert again.stdout.strip() == f"{HOURLY} was paused already."
    assert (state_paused.paused, state_paused.paused_by) == (True, user)
    assert runtime.schedule_monitor.find(HOURLY).paused is False
    resume_body = json.loads(resumed.stdout)
    assert (resume_body["action"], resume_body["requested_by"], resume_body["changed"]) == (
        "resume",
        user,
        True,
    )
    assert resume_body["at"].endswith("+08:00")
    run_body = json.loads(ran.stdout)
    assert runtime.monitor.get_task_status(run_body["task_id"]).task_name == HOURLY
    entries = runtime.audit.entries().entries
    assert [(entry.actor, entry.source, entry.action, entry.target) for entry in entries] == [
        (user, "cli", "schedule.run_now", HOURLY),
        (user, "cli", "schedule.resume", HOURLY),
        (user, "cli", "schedule.pause", HOURLY),
        (user, "cli", "schedule.pause", HOURLY),
    ]
    assert entries[0].details == {"changed": True, "task_id": run_body["task_id"]}


@pytest.mark.parametrize("action", ["pause", "resume", "run"])
def test_an_unknown_schedule_is_one_red_line_and_exit_2(jobdeck, runtime, action):
    result = jobdeck("schedules", action, "nope")

    assert_red_line(result, "no schedule is called 'nope'; the schedules are: ", 2)
    assert HOURLY in result.stderr
    assert runtime.schedule_monitor.actions() == []


def test_help_shows_an_example_for_the_group_and_each_action(jobdeck):
    for arguments in (["schedules"], ["schedules", "pause"], ["schedules", "resume"], ["schedules", "run"]):
        shown = jobdeck(*arguments, "--help").stdout

        assert "Example" in shown and "jobdeck schedules" in shown, arguments
