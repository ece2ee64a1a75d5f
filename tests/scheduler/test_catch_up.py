"""A scheduler stopped across a tick catches it up exactly once on restart, within the schedule's
window; a schedule without a window (like the minutely one) does not, and its tick shows missed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from monitoring.schedules import CAUGHT_UP, ENQUEUED, MISSED
from tests.conftest import wait_for
from tests.scheduler.conftest import PRODUCTION_SCHEDULES_OFF

pytestmark = pytest.mark.slow

PROBE, NO_WINDOW = "scheduled_probe", "test_task"
PERIOD = 10


@pytest.fixture
def environment(environment):
    return {
        **environment,
        **PRODUCTION_SCHEDULES_OFF,
        # Both every 10 s; the probe may be caught up for 9 s after its time, test_task never.
        "JOBDECK_SCHEDULE_SCHEDULED_PROBE": f"*/{PERIOD} * * * * *",
        "JOBDECK_SCHEDULE_SCHEDULED_PROBE_WINDOW": "9",
        "JOBDECK_SCHEDULE_TEST_TASK": f"*/{PERIOD} * * * * *",
        "JOBDECK_ALERT_INTERVAL": "1",
    }


def outcomes(monitor, name: str, fire_time: datetime) -> list[str]:
    return [tick.outcome for tick in monitor.ticks(name) if tick.fire_time == fire_time]


def sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


def test_a_restart_catches_up_the_tick_it_slept_through_once_and_the_windowless_one_not(
    runtime, start_scheduler
):
    monitor = runtime.schedule_monitor
    first = start_scheduler()
    [sent] = wait_for(lambda: monitor.ticks(PROBE), timeout=PERIOD + 10)
    assert first.stop()[0] == 0
    slept_through = sent.fire_time + timedelta(seconds=PERIOD)
    sleep_until(slept_through + timedelta(seconds=0.5))

    second = start_scheduler()
    wait_for(lambda: outcomes(monitor, NO_WINDOW, slept_through), timeout=PERIOD + 10)
    after = slept_through + timedelta(seconds=PERIOD)
    wait_for(lambda: outcomes(monitor, PROBE, after), timeout=PERIOD + 10)
    assert second.stop()[0] == 0
    third = start_scheduler()  # back within the window of a tick that was sent: nothing to catch up
    assert third.stop()[0] == 0

    assert outcomes(monitor, PROBE, sent.fire_time) == [ENQUEUED]
    assert outcomes(monitor, PROBE, slept_through) == [CAUGHT_UP]
    assert outcomes(monitor, PROBE, after) == [ENQUEUED]
    assert outcomes(monitor, NO_WINDOW, slept_through) == [MISSED]
    [caught_up] = [tick for tick in monitor.ticks(PROBE) if tick.outcome == CAUGHT_UP]
    assert caught_up.recorded_by == second.signature
    assert caught_up.task_id == monitor.definition(PROBE).task_id(slept_through)
    assert runtime.monitor.get_task_status(caught_up.task_id).kwargs == {
        "fire_time": slept_through.isoformat()
    }
    shown = slept_through.astimezone(monitor.timezone).isoformat()
    assert f"Schedule {PROBE} caught up for {shown}: enqueued task {caught_up.task_id}" in second.log()
    assert "caught up" not in third.log() and "caught up" not in first.log()
    probe_tasks = runtime.monitor.get_task_history(actor=PROBE, limit=100).tasks
    assert len(probe_tasks) == len([tick for tick in monitor.ticks(PROBE) if tick.sent])
