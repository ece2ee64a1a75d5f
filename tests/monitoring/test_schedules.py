"""The schedules' read and act model against a real Redis: ticks claimed once, recorded, paused,
resumed, run now, and missed runs found with no scheduler at all."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from jobs.platform import keys
from jobs.platform.errors import BadArguments, UnknownSchedule
from monitoring.alerts import RULES, Alerter
from monitoring.records import PENDING
from monitoring.schedules import (
    DUPLICATE,
    ENQUEUED,
    MISSED,
    PAUSED,
    RUN_NOW,
    ScheduleManager,
    ScheduleStore,
    Tick,
)
from tests.conftest import wait_for

#: The per-second test schedule (test_task takes **kwargs, so it receives fire_time).
TICK = "test_task"
HOURLY = "generate_hourly_report"
#: A whole second a few minutes ago: tick records are kept by their nominal time, 31 days.
SOME_SECOND = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


@pytest.fixture
def environment(environment):
    return {**environment, "JOBDECK_SCHEDULE_TEST_TASK": "* * * * * *"}


def other_process(runtime, name: str = "other-host:1") -> ScheduleManager:
    """The schedule manager of another scheduler process on the same Redis."""
    return ScheduleManager(
        monitor=runtime.schedule_monitor,
        store=ScheduleStore(runtime.broker.client),
        task_store=runtime.store,
        broker=runtime.broker,
        process=name,
    )


def queued(runtime, queue: str = "default") -> int:
    return runtime.broker.client.llen(keys.broker_queue(runtime.broker.namespace, queue))


def test_a_fired_tick_sends_one_task_named_by_the_tick_and_is_recorded(runtime):
    manager = runtime.schedule_manager

    tick = manager.fire(TICK, SOME_SECOND)

    definition = runtime.schedule_monitor.definition(TICK)
    assert (tick.outcome, tick.task_id) == (ENQUEUED, definition.task_id(SOME_SECOND))
    assert tick.lateness > 0 and tick.recorded_by == manager.process
    task = runtime.monitor.get_task_status(tick.task_id)
    assert (task.task_name, task.status, task.kwargs) == (
        TICK,
        PENDING,
        {"fire_time": SOME_SECOND.isoformat()},
    )
    schedule = runtime.schedule_monitor.find(TICK, now=SOME_SECOND)
    assert (schedule.last_run, schedule.last_outcome, schedule.last_task_id) == (
        SOME_SECOND,
        ENQUEUED,
        tick.task_id,
    )
    assert schedule.last_task_state == PENDING
    assert [(each.outcome, each.task_state) for each in schedule.recent_ticks] == [(ENQUEUED, PENDING)]


def test_a_second_scheduler_process_finds_the_tick_taken_and_sends_nothing(runtime):
    runtime.schedule_manager.fire(TICK, SOME_SECOND)

    duplicate = other_process(runtime).fire(TICK, SOME_SECOND)

    assert duplicate.outcome == DUPLICATE and duplicate.task_id is None
    assert duplicate.detail == f"already taken by {runtime.schedule_manager.process}"
    assert queued(runtime) == 1
    schedule = runtime.schedule_monitor.find(TICK)
    assert schedule.last_outcome == ENQUEUED  # a duplicate says nothing new about the tick
    assert sorted(tick.outcome for tick in schedule.recent_ticks) == [DUPLICATE, ENQUEUED]


def test_pause_is_honoured_by_every_process_until_resumed_and_who_asked_is_kept(runtime):
    manager, other = runtime.schedule_manager, other_process(runtime)

    paused = manager.pause(TICK, requested_by="ops@example.com")
    again = other.pause(TICK, requested_by="someone-else")
    during = other.fire(TICK, SOME_SECOND)
    resumed = other.resume(TICK, requested_by="ops@example.com")
    after = manager.fire(TICK, SOME_SECOND + timedelta(seconds=1))

    assert (paused.changed, again.changed, resumed.changed) == (True, False, True)
    assert (during.outcome, during.detail, during.task_id) == (PAUSED, "paused by ops@example.com", None)
    assert after.outcome == ENQUEUED
    assert queued(runtime) == 1
    actions = runtime.schedule_monitor.actions()
    assert [(action.action, action.requested_by, action.changed) for action in actions] == [
        ("resume", "ops@example.com", True),
        ("pause", "someone-else", False),
        ("pause", "ops@example.com", True),
    ]


def test_a_paused_schedule_is_listed_with_who_paused_it(runtime):
    runtime.schedule_manager.pause(HOURLY, requested_by="ops@example.com")

    schedule = runtime.schedule_monitor.find(HOURLY).as_dict()

    assert (schedule["paused"], schedule["paused_by"]) == (True, "ops@example.com")
    assert schedule["paused_at"].endswith("+08:00")


def test_run_now_sends_a_new_task_each_time_even_when_paused_and_records_who_asked(runtime):
    manager = runtime.schedule_manager
    manager.pause(HOURLY, requested_by="ops")

    first = manager.run_now(HOURLY, requested_by="alice")
    second = manager.run_now(HOURLY, requested_by="bob")

    assert first.task_id != second.task_id
    assert queued(runtime, "reports") == 2
    task = runtime.monitor.get_task_status(first.task_id)
    assert task.task_name == HOURLY and set(task.kwargs) == {"fire_time"}
    ticks = runtime.schedule_monitor.ticks(HOURLY)
    assert [(tick.outcome, tick.requested_by, tick.task_state) for tick in ticks] == [
        (RUN_NOW, "bob", PENDING),
        (RUN_NOW, "alice", PENDING),
    ]
    assert runtime.schedule_monitor.find(HOURLY).last_task_id == second.task_id
    assert runtime.schedule_monitor.actions(limit=1)[0].task_id == second.task_id


def test_actions_refuse_an_unknown_schedule_or_a_missing_requester(runtime):
    with pytest.raises(UnknownSchedule, match="no schedule is called 'nope'; the schedules are: "):
        runtime.schedule_manager.pause("nope", requested_by="ops")
    with pytest.raises(BadArguments, match="requested_by must name who asks"):
        runtime.schedule_manager.run_now(HOURLY, requested_by="  ")
    assert queued(runtime, "reports") == 0


def test_the_list_gives_every_schedule_with_iso_times_in_the_configured_zone(runtime):
    now = datetime(2026, 3, 1, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai

    listed = {schedule.name: schedule.as_dict() for schedule in runtime.schedule_monitor.list(now=now)}

    assert set(listed) == {TICK, HOURLY, "check_pending_bills", "cleanup_old_notifications",
                           "generate_weekly_report", "generate_monthly_report"}  # fmt: skip
    weekly = listed["generate_weekly_report"]
    assert weekly["next_run"] == "2026-03-02T10:00:00+08:00"  # Monday
    assert (weekly["cron"], weekly["timezone"], weekly["window"]) == ("0 10 * * 1", "Asia/Shanghai", 86400)
    assert (weekly["last_run"], weekly["last_outcome"], weekly["paused"], weekly["lag"]) == (
        None,
        None,
        False,
        None,
    )
    assert listed["generate_monthly_report"]["next_run"] == "2026-04-01T00:00:00+08:00"
    assert set(weekly) >= {
        "name",
        "actor",
        "cron",
        "timezone",
        "next_run",
        "last_run",
        "last_outcome",
        "paused",
    }


def test_no_scheduler_running_shows_as_missed_runs_and_alerts(runtime):
    manager = runtime.schedule_manager
    assert manager.detect_missed(now=SOME_SECOND + timedelta(seconds=0.5)) == []  # starts the watch
    assert manager.detect_missed(now=SOME_SECOND + timedelta(seconds=3)) == []  # nothing past due yet
    manager.fire(TICK, SOME_SECOND + timedelta(seconds=3))  # the one tick a scheduler sent
    checked = SOME_SECOND + timedelta(seconds=9.5)

    missed = manager.detect_missed(now=checked)
    again = other_process(runtime).detect_missed(now=checked)

    # The watch began at second 0.5; past their deadline (1 s grace + 2 s settle) are 1 to 6; 3 was sent.
    assert [((tick.fire_time - SOME_SECOND).seconds, tick.outcome) for tick in missed] == [
        (1, MISSED),
        (2, MISSED),
        (4, MISSED),
        (5, MISSED),
        (6, MISSED),
    ]
    assert {tick.schedule for tick in missed} == {TICK}  # the minute and hour ticks are not due
    assert again == []  # each tick is taken once, whichever process checks
    schedule = runtime.schedule_monitor.find(TICK, now=checked)
    assert schedule.last_outcome == MISSED
    assert [tick.outcome for tick in schedule.recent_ticks] == [MISSED] * 3 + [ENQUEUED] + [MISSED] * 2
    assert schedule.lag == pytest.approx(5.5)  # behind since second 4, the first run it did not send
    time.sleep(1.1)  # the rule leaves the last second's records to its next evaluation
    [alert] = RULES["missed_schedule"](Alerter(store=runtime.store))
    assert alert.subject == TICK and alert.details["missed"] == 5


def test_ticks_due_while_paused_are_recorded_paused_not_missed(runtime):
    manager = runtime.schedule_manager
    manager.pause(TICK, requested_by="ops")
    start = datetime.now(UTC) + timedelta(seconds=3.5)  # the watch starts after the pause
    manager.detect_missed(now=start)

    found = manager.detect_missed(now=start + timedelta(seconds=8))

    assert [tick.outcome for tick in found] == [PAUSED] * 5
    assert {tick.detail for tick in found} == {"paused by ops"}
    assert runtime.schedule_monitor.find(TICK).lag == 0


def test_catch_up_is_the_latest_tick_within_the_window_of_a_schedule_that_has_ticked(runtime):
    manager = runtime.schedule_manager
    now = datetime(2026, 3, 1, 2, 7, tzinfo=UTC)  # 10:07 in Shanghai

    never_ticked = manager.catch_up_time(HOURLY, now)
    manager.fire(HOURLY, datetime(2026, 3, 1, 1, 0, tzinfo=UTC))
    within = manager.catch_up_time(HOURLY, now)
    too_late = manager.catch_up_time(HOURLY, now + timedelta(minutes=5))  # 10:12: past 10 minutes

    assert never_ticked is None
    assert within == datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    assert too_late is None
    manager.fire("check_pending_bills", datetime(2026, 3, 1, 2, 6, tzinfo=UTC))
    assert manager.catch_up_time("check_pending_bills", now) is None  # no window: never caught up


def test_tick_records_are_bounded_by_age_and_count(runtime):
    store = ScheduleStore(runtime.broker.client, retention=3600, max_ticks=5)
    now = datetime.now(UTC).replace(microsecond=0)

    store.record_tick(Tick(TICK, now - timedelta(hours=2), MISSED))  # older than the retention
    for second in range(8):
        store.record_tick(Tick(TICK, now + timedelta(seconds=second), MISSED))

    kept = store.ticks(TICK, limit=100)
    assert len(kept) == 5
    assert [tick.fire_time for tick in kept] == [
        now + timedelta(seconds=second) for second in range(7, 2, -1)
    ]
    assert runtime.broker.client.pttl(keys.schedule(TICK)) > 0


@pytest.mark.slow
def test_metrics_export_each_schedules_lag_and_last_success(runtime, start_worker):
    from tests.api.test_metrics import app_client, scrape

    start_worker()
    now = datetime.now(UTC).replace(microsecond=0)
    tick = runtime.schedule_manager.fire(TICK, now - timedelta(seconds=2))
    wait_for(lambda: runtime.monitor.get_task_status(tick.task_id).status == "SUCCESS", timeout=20)
    runtime.schedule_manager.pause(HOURLY, requested_by="ops")

    samples = scrape(app_client(runtime))

    task = runtime.monitor.get_task_status(tick.task_id)
    labels = (("schedule", TICK),)
    assert samples["jobdeck_schedule_last_success_timestamp_seconds", labels] == pytest.approx(
        task.finished_at.timestamp(), abs=0.001
    )
    assert (
        samples["jobdeck_schedule_last_run_timestamp_seconds", labels]
        == (now - timedelta(seconds=2)).timestamp()
    )
    assert samples["jobdeck_schedule_last_lateness_seconds", labels] == pytest.approx(
        tick.lateness, abs=0.001
    )
    assert 0 < samples["jobdeck_schedule_lag_seconds", labels] < 30  # the ticks since were not sent
    assert samples["jobdeck_schedule_paused", (("schedule", HOURLY),)] == 1
    assert ("jobdeck_schedule_lag_seconds", (("schedule", HOURLY),)) not in samples  # never ticked


def test_the_registered_jobs_show_the_schedule_the_scheduler_fires(runtime):
    schedules = {actor.name: actor.schedule for actor in runtime.describe_actors()}

    assert schedules["test_task"] == "* * * * * *"  # made periodic by JOBDECK_SCHEDULE_TEST_TASK
    assert schedules["generate_weekly_report"] == "0 10 * * 1"
    assert schedules["send_bill_reminders"] is None


def test_an_unknown_schedule_is_answered_with_every_schedule_name_in_alphabetical_order(runtime):
    with pytest.raises(UnknownSchedule) as refused:
        runtime.schedule_monitor.find("nope")

    listed = str(refused.value).split("the schedules are: ", 1)[1].split(", ")
    assert listed == sorted(schedule.name for schedule in runtime.schedule_monitor.list())
