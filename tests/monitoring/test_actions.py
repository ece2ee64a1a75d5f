"""Revoke, retry, group actions and purges: real workers, restarted in between."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import redis

from jobs.platform import keys
from jobs.platform.errors import ActionRefused, BadArguments, UnknownJob, UnknownTask
from monitoring.actions import ETA_TOLERANCE
from tests.conftest import redis_events, wait_for
from tests.monitoring.test_recorder import finished

pytestmark = pytest.mark.slow


def test_send_task_validates_before_anything_is_sent(runtime, redis_url):
    manager = runtime.manager
    cases = [
        (UnknownJob, lambda: manager.send_task("nope")),
        (BadArguments, lambda: manager.send_task("long_running_task", [], {"hours": 1})),
        (BadArguments, lambda: manager.send_task("test_task", [float("nan")])),
        (BadArguments, lambda: manager.send_task("test_task", delay=-1)),
        (BadArguments, lambda: manager.send_task("test_task", queue="nowhere")),
    ]
    for error, call in cases:
        with pytest.raises(error):
            call()
    assert runtime.monitor.get_task_history().tasks == []


def test_a_pending_task_revoked_never_runs(runtime, start_worker, redis_url):
    message = runtime.manager.send_task("flaky", ["pending"], {"failures": 0})

    outcome = runtime.manager.revoke_task(message.message_id)
    start_worker()
    marker = runtime.manager.send_task("test_task", ["after"])
    finished(runtime, marker.message_id)

    assert outcome.done and outcome.status == "REVOKED"
    assert runtime.monitor.get_task_status(message.message_id).status == "REVOKED"
    assert redis_events(redis_url, "pending") == []


def test_revocation_of_a_delayed_task_outlives_its_delay_and_worker_restarts(
    runtime, start_worker, redis_url
):
    first = start_worker()
    long_delay = runtime.manager.send_task("flaky", ["far"], {"failures": 0}, delay=3 * 3600)
    short_delay = runtime.manager.send_task("flaky", ["near"], {"failures": 0}, delay=3)

    runtime.manager.revoke_task(long_delay.message_id)
    runtime.manager.revoke_task(short_delay.message_id)
    first.stop()
    start_worker()
    time.sleep(6)

    client = redis.Redis.from_url(redis_url)
    # dramatiq-abort's cancel lasts 90 s; this one lasts the whole delay and then some.
    revoked_until = int(client.hget(keys.task(long_delay.message_id), "revoked_until"))
    assert revoked_until - time.time() * 1000 > 3 * 3600 * 1000
    assert client.pttl(keys.task(long_delay.message_id)) > 3 * 3600 * 1000
    # and workers of the previous release, still running during a deploy, see it too
    assert client.pttl(keys.revoked(long_delay.message_id)) > 3 * 3600 * 1000
    assert redis_events(redis_url, "near") == []
    assert runtime.monitor.get_task_status(short_delay.message_id).status == "REVOKED"
    assert runtime.monitor.get_task_status(long_delay.message_id).status == "REVOKED"


def test_a_running_task_revoked_is_aborted_and_not_retried(runtime, start_worker, redis_url):
    start_worker()
    message = runtime.manager.send_task("sleeper", ["running"], {"seconds": 30})
    wait_for(lambda: runtime.monitor.get_task_status(message.message_id).status == "STARTED", timeout=20)

    outcome = runtime.manager.revoke_task(message.message_id)
    record = finished(runtime, message.message_id, timeout=20)

    assert outcome.done and outcome.status == "STARTED"
    assert record.status == "REVOKED"
    assert record.retries == 0
    time.sleep(2)
    assert [event for event, _ in redis_events(redis_url, "running")] == ["started"]


def test_a_finished_task_is_not_revoked(runtime, start_worker):
    start_worker()
    message = runtime.manager.send_task("test_task", ["done"])
    finished(runtime, message.message_id)

    outcome = runtime.manager.revoke_task(message.message_id)

    assert not outcome.done
    assert outcome.detail == "not revoked: already SUCCESS"
    with pytest.raises(UnknownTask):
        runtime.manager.revoke_task("no-such-task")


def test_a_dead_lettered_failure_is_retried_from_its_original_message(runtime, start_worker, redis_url):
    start_worker()
    message = runtime.manager.send_task("flaky", ["again"], {"kind": "permanent", "failures": 1})
    assert finished(runtime, message.message_id).status == "FAILURE"
    # The broker dead-letters the message just after the failure is recorded.
    wait_for(lambda: runtime.monitor.get_task_status(message.message_id).dead_lettered, timeout=10)
    assert _dead_letters(runtime) == 1

    outcome = runtime.manager.retry_task(message.message_id)
    retried = finished(runtime, outcome.new_task_id)

    assert retried.status == "SUCCESS"
    assert retried.retry_of == message.message_id
    assert retried.args == ["again"] and retried.kwargs == {"kind": "permanent", "failures": 1}
    assert runtime.monitor.get_task_status(message.message_id).retried_as == outcome.new_task_id
    assert _dead_letters(runtime) == 0
    with pytest.raises(ActionRefused):
        runtime.manager.retry_task(outcome.new_task_id)
    with pytest.raises(ActionRefused, match="retried already"):
        runtime.manager.retry_task(message.message_id)


def test_a_failure_group_is_retried_as_one_with_a_dry_run_first(runtime, start_worker, redis_url):
    start_worker(JOBDECK_MAX_RETRIES="0")
    messages = [runtime.manager.send_task("flaky", [f"group-{n}"], {"failures": 1}) for n in range(3)]
    for message in messages:
        finished(runtime, message.message_id)
    group = runtime.monitor.get_failure_groups()[0]
    task_ids = runtime.monitor.failure_group_task_ids(group.fingerprint)

    dry = runtime.manager.retry_failure_group(group.fingerprint, dry_run=True)
    real = runtime.manager.retry_failure_group(group.fingerprint)
    again = runtime.manager.retry_many(task_ids, dry_run=True)

    assert group.count == 3
    assert dry == {"matched": 3, "done": 0, "task_ids": task_ids}
    assert real == {"matched": 3, "done": 3, "task_ids": task_ids}
    assert again == {"matched": 0, "done": 0, "task_ids": []}
    for message in messages:
        retried_as = runtime.monitor.get_task_status(message.message_id).retried_as
        assert finished(runtime, retried_as).status == "SUCCESS"


def test_purging_a_queue_revokes_what_was_waiting(runtime):
    messages = [runtime.manager.send_task("test_task", [n]) for n in range(5)]

    removed = runtime.manager.purge_queue("default")

    assert removed == 5
    assert all(runtime.monitor.get_task_status(m.message_id).status == "REVOKED" for m in messages)
    assert _queue(runtime, "default").ready == 0


def _queue(runtime, name):
    return next(queue for queue in runtime.monitor.get_queue_stats() if queue.name == name)


def _dead_letters(runtime) -> int:
    return _queue(runtime, "default").dead_lettered


def test_tasks_matching_a_history_filter_are_revoked_after_a_dry_run(runtime):
    reports = [runtime.manager.send_task("test_task", [n], queue="reports") for n in range(3)]
    other = runtime.manager.send_task("test_task", ["other"])

    dry = runtime.manager.revoke_matching(queue="reports", dry_run=True)
    real = runtime.manager.revoke_matching(queue="reports")

    sent = sorted(message.message_id for message in reports)
    assert (dry["matched"], dry["done"], sorted(dry["task_ids"])) == (3, 0, sent)
    assert (real["matched"], real["done"], sorted(real["task_ids"])) == (3, 3, sent)
    assert {runtime.monitor.get_task_status(m.message_id).status for m in reports} == {"REVOKED"}
    assert runtime.monitor.get_task_status(other.message_id).status == "PENDING"


def test_an_eta_a_moment_ago_means_now_and_one_long_past_is_refused(runtime):
    moment_ago = datetime.now(UTC) - timedelta(seconds=ETA_TOLERANCE / 2)

    sent = runtime.manager.send_task("test_task", ["now"], eta=moment_ago)

    assert runtime.monitor.get_task_status(sent.message_id).status == "PENDING"
    with pytest.raises(BadArguments, match="eta is in the past"):
        runtime.manager.send_task("test_task", ["late"], eta=moment_ago - timedelta(seconds=ETA_TOLERANCE))


def test_get_result_waits_for_the_result_or_says_not_finished(runtime, start_worker):
    waiting = runtime.manager.send_task("test_task", ["later"], delay=600)
    assert runtime.manager.get_result(waiting.message_id, wait=0.5).status == "SCHEDULED"
    start_worker(JOBDECK_MAX_RETRIES="0")

    done = runtime.manager.get_result(runtime.manager.send_task("test_task", ["now"]).message_id, wait=15)
    failed = runtime.manager.get_result(
        runtime.manager.send_task("test_task", [], {"fail": True}).message_id, wait=15
    )

    assert (done.status, done.result) == ("SUCCESS", {"echo": ["now"], "kwargs": {}})
    assert failed.status == "FAILURE" and failed.error.startswith("DiagnosticFailure")
