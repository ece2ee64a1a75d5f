"""Retry spacing, errors never retried, lost connections, time limits and shutdown, on real workers."""

from __future__ import annotations

import pytest
import redis
from dramatiq import Message

from monitoring.actions import FAILURE, SUCCESS, TaskManager
from tests.conftest import redis_events, wait_for

pytestmark = pytest.mark.slow


def gaps(events: list[tuple[str, float]]) -> list[float]:
    times = [at for _, at in events]
    return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]


def test_business_retries_are_a_fixed_delay_apart_and_stop_after_three(runtime, start_worker, redis_url):
    start_worker(JOBDECK_RETRY_DELAY="2")
    manager = TaskManager(broker=runtime.broker)

    message = manager.send_task("flaky", ["attempts"], {"kind": "business"})
    outcome = manager.wait_for_result(message, timeout=30)

    assert outcome.status == FAILURE
    assert "RuntimeError: attempt 4 failed on purpose" in outcome.error
    attempts = redis_events(redis_url, "attempts")
    assert len(attempts) == 4  # the first run and three retries
    # Fixed spacing: Dramatiq's default would double (2, 4, 8 s) and add jitter. Each gap is the
    # delay plus up to two idle polls (1 s each) of the worker's delay and work consumers.
    assert all(1.9 <= gap <= 4.4 for gap in gaps(attempts)), gaps(attempts)


def test_permanent_error_is_never_retried(runtime, start_worker, redis_url):
    start_worker()
    manager = TaskManager(broker=runtime.broker)

    outcome = manager.wait_for_result(manager.send_task("flaky", ["once"], {"kind": "permanent"}), timeout=20)

    assert outcome.status == FAILURE
    assert outcome.error.startswith("PermanentError")
    assert len(redis_events(redis_url, "once")) == 1


def test_lost_connection_retries_outside_the_business_retries(runtime, start_worker, redis_url):
    start_worker(JOBDECK_MAX_RETRIES="0")
    manager = TaskManager(broker=runtime.broker)

    message = manager.send_task("flaky", ["reconnect"], {"kind": "transient", "failures": 2})
    outcome = manager.wait_for_result(message, timeout=30)

    assert outcome.status == SUCCESS
    assert outcome.result == 3
    assert len(redis_events(redis_url, "reconnect")) == 3


def test_soft_time_limit_raises_inside_the_job_and_is_not_retried(runtime, start_worker, redis_url):
    start_worker(JOBDECK_SOFT_TIME_LIMIT="1", JOBDECK_TIME_LIMIT="5")
    manager = TaskManager(broker=runtime.broker)

    outcome = manager.wait_for_result(manager.send_task("sleeper", ["soft"], {"seconds": 20}), timeout=20)

    assert outcome.status == FAILURE
    assert outcome.error.startswith("SoftTimeLimitExceeded")
    events = [event for event, _ in redis_events(redis_url, "soft")]
    assert events == ["started", "soft"]


def test_hard_time_limit_fails_dead_letters_and_recycles_the_process(runtime, start_worker, redis_url):
    worker = start_worker(JOBDECK_SOFT_TIME_LIMIT="1", JOBDECK_TIME_LIMIT="3")
    manager = TaskManager(broker=runtime.broker)
    first_pid = worker.worker_pids()[0]

    message = manager.send_task("sleeper", ["hard"], {"seconds": 60, "keep_going_after_soft_limit": True})
    outcome = manager.wait_for_result(message, timeout=20)

    assert outcome.status == FAILURE
    assert outcome.error.startswith("HardTimeLimitExceeded")
    dead_letters = redis.Redis.from_url(redis_url).hvals("dramatiq:default.XQ.msgs")
    assert [Message.decode(data).message_id for data in dead_letters] == [message.message_id]
    # The stuck process is replaced by a fresh one, which then does work.
    worker.wait_until_ready(count=2, timeout=60)
    assert worker.worker_pids()[-1] != first_pid
    after = manager.wait_for_result(manager.send_task("test_task", ["after"]), timeout=20)
    assert after.status == SUCCESS
    assert [event for event, _ in redis_events(redis_url, "hard")] == ["started", "soft"]


def test_worker_stops_within_its_shutdown_timeout_on_sigterm(runtime, start_worker):
    worker = start_worker(shutdown_timeout=5000)
    manager = TaskManager(broker=runtime.broker)
    manager.send_task("long_running_task", [], {"seconds": 60, "steps": 60})
    wait_for(lambda: "Progress" in worker.log(), timeout=20)

    seconds = worker.stop(timeout=40)

    assert worker.process.returncode is not None
    assert seconds < 30
