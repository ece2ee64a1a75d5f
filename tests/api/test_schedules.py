"""/api/core/schedules/ against the real Redis: the list and one schedule as the read model gives
them, and pause, resume and run-now refused to a viewer, done for an admin and audit-logged."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitoring.audit import OK, REFUSED

MINUTELY = "check_pending_bills"
HOURLY = "generate_hourly_report"


@pytest.fixture
def environment(environment):
    """test_task made a per-second schedule and the minutely check turned off, by the deployment."""
    return {
        **environment,
        "JOBDECK_SCHEDULE_TEST_TASK": "* * * * * *",
        "JOBDECK_SCHEDULE_CHECK_PENDING_BILLS": "off",
    }


def schedules(client, headers) -> dict[str, dict]:
    response = client.get("/api/core/schedules/", headers=headers)
    assert response.status_code == 200, response.get_json()
    return {schedule["name"]: schedule for schedule in response.get_json()["schedules"]}


def test_the_list_is_the_read_models_schedules_with_times_in_the_configured_zone(client, tokens, runtime):
    before = datetime.now(UTC)
    listed = schedules(client, tokens.viewer)
    after = datetime.now(UTC)

    expected = {schedule.name: schedule.as_dict() for schedule in runtime.schedule_monitor.list(now=before)}
    assert (
        set(listed)
        == set(expected)
        == {
            "test_task",
            HOURLY,
            "generate_weekly_report",
            "generate_monthly_report",
            "cleanup_old_notifications",
        }
    )
    hourly = listed[HOURLY]
    assert {**hourly, "next_run": None} == {**expected[HOURLY], "next_run": None}
    definition = runtime.schedule_monitor.definition(HOURLY)
    assert hourly["next_run"] in {definition.next_fire_time(moment).isoformat() for moment in (before, after)}
    assert hourly["next_run"].endswith("+08:00") and hourly["timezone"] == "Asia/Shanghai"
    assert (hourly["cron"], hourly["actor"], hourly["paused"], hourly["recent_ticks"]) == (
        "0 * * * *",
        HOURLY,
        False,
        [],
    )
    assert listed["test_task"]["cron"] == "* * * * * *"


def test_actors_show_the_schedule_the_scheduler_fires_overrides_applied(client, tokens):
    response = client.get("/api/core/actors/", headers=tokens.viewer)

    actors = {actor["name"]: actor["schedule"] for actor in response.get_json()["actors"]}
    assert (actors["test_task"], actors[MINUTELY], actors[HOURLY]) == ("* * * * * *", None, "0 * * * *")


def test_a_viewer_may_read_one_schedule_but_not_act_on_it(client, tokens, runtime):
    one = client.get(f"/api/core/schedules/{HOURLY}", headers=tokens.viewer)
    refused = [
        client.post(f"/api/core/schedules/{HOURLY}/{action}/", headers=tokens.viewer).status_code
        for action in ("pause", "resume", "run")
    ]

    assert one.status_code == 200 and one.get_json()["name"] == HOURLY
    assert refused == [403, 403, 403]
    schedule = runtime.schedule_monitor.find(HOURLY)
    assert (schedule.paused, schedule.last_run, runtime.schedule_monitor.actions()) == (False, None, [])
    assert runtime.audit.entries().entries == []


def test_an_admin_pauses_and_resumes_as_its_token_and_each_action_is_audited(client, tokens, runtime):
    paused = client.post(f"/api/core/schedules/{HOURLY}/pause/", headers=tokens.admin)
    again = client.post(f"/api/core/schedules/{HOURLY}/pause", headers=tokens.admin)
    while_paused = schedules(client, tokens.viewer)[HOURLY]
    resumed = client.post(f"/api/core/schedules/{HOURLY}/resume/", headers=tokens.admin)

    assert paused.status_code == again.status_code == resumed.status_code == 200
    assert [
        (body["action"], body["requested_by"], body["changed"])
        for body in (paused.get_json(), again.get_json(), resumed.get_json())
    ] == [("pause", "admin-bot", True), ("pause", "admin-bot", False), ("resume", "admin-bot", True)]
    assert paused.get_json()["at"].endswith("+08:00")
    assert (while_paused["paused"], while_paused["paused_by"]) == (True, "admin-bot")
    assert runtime.schedule_monitor.find(HOURLY).paused is False
    entries = runtime.audit.entries().entries
    assert [(entry.actor, entry.action, entry.target, entry.outcome, entry.details) for entry in entries] == [
        ("admin-bot", "schedule.resume", HOURLY, OK, {"changed": True, "task_id": None}),
        ("admin-bot", "schedule.pause", HOURLY, OK, {"changed": False, "task_id": None}),
        ("admin-bot", "schedule.pause", HOURLY, OK, {"changed": True, "task_id": None}),
    ]


def test_an_admin_runs_a_schedule_now_and_its_task_and_tick_are_recorded(client, tokens, runtime):
    response = client.post(f"/api/core/schedules/{HOURLY}/run/", headers=tokens.admin)

    assert response.status_code == 202
    body = response.get_json()
    assert (body["schedule"], body["action"], body["requested_by"]) == (HOURLY, "run_now", "admin-bot")
    task = runtime.monitor.get_task_status(body["task_id"])
    assert (task.task_name, task.status) == (HOURLY, "PENDING")
    schedule = client.get(f"/api/core/schedules/{HOURLY}/", headers=tokens.viewer).get_json()
    assert (schedule["last_outcome"], schedule["last_task_id"], schedule["last_task_state"]) == (
        "run_now",
        body["task_id"],
        "PENDING",
    )
    assert schedule["last_run"].endswith("+08:00")
    [tick] = schedule["recent_ticks"]
    assert (tick["outcome"], tick["task_id"], tick["requested_by"]) == (
        "run_now",
        body["task_id"],
        "admin-bot",
    )
    [entry] = runtime.audit.entries(action="schedule.run_now").entries
    assert (entry.actor, entry.target, entry.details) == (
        "admin-bot",
        HOURLY,
        {"changed": True, "task_id": body["task_id"]},
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/core/schedules/nope/"),
        ("POST", "/api/core/schedules/nope/pause/"),
        ("POST", "/api/core/schedules/nope/resume"),
        ("POST", "/api/core/schedules/nope/run/"),
    ],
)
def test_an_unknown_schedule_is_a_404_in_the_one_error_shape(client, tokens, runtime, method, path):
    response = client.open(path, method=method, headers=tokens.admin)

    assert response.status_code == 404
    error = response.get_json()["error"]
    assert error["code"] == "unknown_schedule"
    assert error["message"].startswith("no schedule is called 'nope'; the schedules are: ")
    # An action on an unknown schedule is audited as refused; a read is not audited.
    outcomes = [entry.outcome for entry in runtime.audit.entries().entries]
    assert outcomes == ([] if method == "GET" else [REFUSED])
