"""The pieces of the scheduler process in this process: the fire time APScheduler hands a job,
a fire past its grace recorded missed, a tick Redis refused recorded failed."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from dramatiq.brokers.redis import RedisBroker

from jobs.platform.cron import CronExpression
from monitoring.alerts import RULES, Alerter
from monitoring.schedules import FAILED, MISSED, ScheduleManager, ScheduleStore
from scheduler.firing import EXECUTOR, AheadTrigger, FireTimeExecutor, claim_lead, on_missed
from tests.conftest import wait_for

TICK = "test_task"
SOME_SECOND = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


@pytest.fixture
def environment(environment):
    return {**environment, "JOBDECK_SCHEDULE_TEST_TASK": "* * * * * *"}


def test_each_job_gets_its_nominal_fire_time_not_the_moment_it_ran(settings):
    fire_times, started_at = [], []
    two = threading.Event()

    def job(fire_time=None):
        fire_times.append(fire_time)
        started_at.append(datetime.now(UTC))
        if len(fire_times) == 2:
            two.set()

    scheduler = BackgroundScheduler(timezone=settings.timezone, executors={EXECUTOR: FireTimeExecutor(2)})
    scheduler.add_job(job, CronExpression.parse("* * * * * *").trigger(settings.timezone), executor=EXECUTOR)
    scheduler.start()
    try:
        assert two.wait(5)
    finally:
        scheduler.shutdown(wait=False)

    assert [moment.microsecond for moment in fire_times] == [0, 0]
    assert (fire_times[1] - fire_times[0]).total_seconds() == 1
    assert all(started >= fired for started, fired in zip(started_at, fire_times, strict=True))
    assert {moment.utcoffset() for moment in fire_times} == {timedelta(hours=8)}


def test_a_schedule_is_claimed_a_moment_ahead_of_each_tick_and_sent_at_its_time(runtime):
    definition = runtime.schedule_monitor.definition(TICK)
    ahead = AheadTrigger(definition.trigger, claim_lead(definition))
    scheduler = BackgroundScheduler(timezone=definition.timezone, executors={EXECUTOR: FireTimeExecutor(2)})
    fired = []

    def job(fire_time=None):
        nominal = definition.next_fire_time(fire_time)
        fired.append((fire_time, nominal, runtime.schedule_manager.fire(TICK, nominal)))

    scheduler.add_job(job, ahead, executor=EXECUTOR)
    scheduler.start()
    try:
        wait_for(lambda: fired, timeout=5)
    finally:
        scheduler.shutdown(wait=False)

    [(claimed_at, nominal, tick), *_] = fired
    assert (nominal - claimed_at).total_seconds() == claim_lead(definition) == 0.2
    assert nominal.microsecond == 0
    assert tick.outcome == "enqueued" and tick.lateness >= 0  # claimed ahead, never sent early
    assert runtime.monitor.get_task_status(tick.task_id).enqueued_at >= nominal


def test_a_fire_apscheduler_found_past_its_grace_is_recorded_missed_once(runtime):
    manager = runtime.schedule_manager
    # APScheduler runs a schedule's job a moment ahead of each tick, to claim it: that is the
    # run time its event carries.
    claim_time = SOME_SECOND - timedelta(seconds=claim_lead(runtime.schedule_monitor.definition(TICK)))
    event = JobExecutionEvent(EVENT_JOB_MISSED, f"schedule:{TICK}", "default", claim_time)

    on_missed(manager, event)
    on_missed(manager, event)  # another scheduler process saw it too

    [tick] = runtime.schedule_monitor.ticks(TICK)
    assert (tick.outcome, tick.fire_time) == (MISSED, SOME_SECOND)
    assert tick.detail.startswith("the scheduler got to it ") and tick.detail.endswith("past its 1 s grace")
    assert manager.fire(TICK, SOME_SECOND).outcome == "duplicate"  # and it is not sent after all


def test_a_claimed_tick_redis_refused_to_enqueue_is_recorded_failed_and_alerts(runtime):
    unreachable = RedisBroker(url="redis://127.0.0.1:1/0")
    unreachable.declare_actor(runtime.broker.get_actor(TICK))
    manager = ScheduleManager(
        monitor=runtime.schedule_monitor,
        store=ScheduleStore(runtime.broker.client),
        task_store=runtime.store,
        broker=unreachable,
        process="cut-off:1",
    )

    tick = manager.fire(TICK, SOME_SECOND)

    assert tick.outcome == FAILED and tick.detail.startswith("ConnectionError: ")
    assert runtime.schedule_monitor.find(TICK).last_outcome == FAILED
    time.sleep(1.1)  # the rule leaves the last second's records to its next evaluation
    [alert] = RULES["missed_schedule"](Alerter(store=runtime.store))
    assert alert.subject == TICK and alert.details["fire_times"] == [SOME_SECOND.isoformat()]


def test_prepare_loads_every_script_a_fire_runs_before_the_first_tick(runtime):
    client = runtime.broker.client
    client.script_flush()
    manager = runtime.schedule_manager
    scripts = [
        manager.store._claim.sha,
        manager.store._record.sha,
        runtime.store._script.sha,
        *(script.sha for script in runtime.broker.scripts.values()),
    ]
    assert not any(client.script_exists(*scripts))

    manager.prepare()

    assert all(client.script_exists(*scripts))
