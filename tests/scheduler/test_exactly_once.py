"""Two scheduler processes against one Redis send each tick once, over many ticks."""

from __future__ import annotations

from collections import defaultdict

import pytest

from jobs.platform import keys
from monitoring.schedules import DUPLICATE, ENQUEUED
from tests.conftest import wait_for
from tests.scheduler.conftest import PRODUCTION_SCHEDULES_OFF

pytestmark = pytest.mark.slow

PROBE = "scheduled_probe"
TICKS = 15


@pytest.fixture
def environment(environment):
    return {**environment, **PRODUCTION_SCHEDULES_OFF, "JOBDECK_SCHEDULE_SCHEDULED_PROBE": "* * * * * *"}


def test_two_scheduler_processes_send_each_tick_once(runtime, start_scheduler):
    first, second = start_scheduler(), start_scheduler()
    monitor = runtime.schedule_monitor

    wait_for(lambda: sum(tick.outcome == DUPLICATE for tick in monitor.ticks(PROBE)) >= TICKS, timeout=60)
    assert [scheduler.stop()[0] for scheduler in (first, second)] == [0, 0]

    by_second = defaultdict(list)
    for tick in monitor.ticks(PROBE, limit=1000):
        by_second[tick.fire_time].append(tick)
    seconds = sorted(by_second)
    sent = [tick for ticks in by_second.values() for tick in ticks if tick.outcome == ENQUEUED]
    # Every tick from the first to the last was sent exactly once; while both ran, the other
    # process found it taken.
    assert [(seconds[index + 1] - seconds[index]).total_seconds() for index in range(len(seconds) - 1)] == [
        1.0
    ] * (len(seconds) - 1)
    assert all([tick.outcome for tick in ticks].count(ENQUEUED) == 1 for ticks in by_second.values())
    assert all(len(ticks) <= 2 for ticks in by_second.values())
    assert sum(len(ticks) == 2 for ticks in by_second.values()) >= TICKS
    assert {tick.recorded_by for tick in sent} <= {first.signature, second.signature}
    assert "duplicate (already taken by " in first.log() + second.log()
    # One message per tick in the queue, under the tick's own task id.
    queue = keys.broker_queue(runtime.broker.namespace, "default")
    assert runtime.broker.client.llen(queue) == len(sent)
    history = runtime.monitor.get_task_history(actor=PROBE, limit=1000).tasks
    assert sorted(task.task_id for task in history) == sorted(tick.task_id for tick in sent)
    definition = monitor.definition(PROBE)
    assert all(tick.task_id == definition.task_id(tick.fire_time) for tick in sent)
