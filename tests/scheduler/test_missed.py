"""With no scheduler running at all, the workers find the ticks nobody sent and alert."""

from __future__ import annotations

import pytest

from jobs.platform import keys
from monitoring.schedules import MISSED
from tests.conftest import wait_for
from tests.scheduler.conftest import PRODUCTION_SCHEDULES_OFF

pytestmark = pytest.mark.slow

PROBE = "scheduled_probe"


@pytest.fixture
def environment(environment, webhook):
    return {
        **environment,
        **PRODUCTION_SCHEDULES_OFF,
        "JOBDECK_SCHEDULE_SCHEDULED_PROBE": "* * * * * *",
        "JOBDECK_ALERT_INTERVAL": "1",
        "JOBDECK_ALERT_SCHEDULER_SILENCE": "3",
        "JOBDECK_ALERT_WEBHOOK_URL": webhook.url,
    }


def test_no_scheduler_running_shows_missed_runs_and_alerts(runtime, start_worker, webhook):
    start_worker()

    [alert] = wait_for(
        lambda: [post for post in webhook.posts() if post["rule"] == "missed_schedule"], timeout=30
    )

    assert alert["subject"] == PROBE and alert["severity"] == "error"
    assert alert["details"]["missed"] >= 1
    ticks = runtime.schedule_monitor.ticks(PROBE)
    assert ticks and {tick.outcome for tick in ticks} == {MISSED}
    assert {tick.detail for tick in ticks} == {"no scheduler sent it by its deadline"}
    assert set(alert["details"]["fire_times"]) <= {tick.fire_time.isoformat() for tick in ticks}
    schedule = runtime.schedule_monitor.find(PROBE)
    assert (schedule.last_outcome, schedule.last_run) == (MISSED, None)
    assert runtime.broker.client.llen(keys.broker_queue(runtime.broker.namespace, "default")) == 0
    wait_for(lambda: [post for post in webhook.posts() if post["rule"] == "no_scheduler"], timeout=10)
